"""`rlcore train` as a person runs it: bad data and bad config come back as one clear line."""

import json
import sys
from types import SimpleNamespace

import pytest

from rlcore.cli.app import main

pytest.importorskip("rlcore_plugin_algorithms")


@pytest.fixture
def rlcore(capsys, monkeypatch):
    """Run ``rlcore ARGS`` in-process through the console entry point (same error handling)."""

    def run(*args, cwd):
        monkeypatch.chdir(cwd)
        monkeypatch.setattr(sys, "argv", ["rlcore", *args])
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code or 0
        out = capsys.readouterr()
        return SimpleNamespace(returncode=code, stdout=out.out, stderr=out.err)

    return run


@pytest.mark.parametrize(
    "lines, message",
    [
        (['{"prompt": "1+1=", "answer": "2"}', '{"prompt": "2+2=", "answer": 4}'],
         "line 2, field 'answer': expected a string, got an integer"),
        (['{"prompt": "1+1=", "answer": "2"}', '{"prompt": "2+2=" "answer": "4"}'], "line 2"),
        (['{"prompt": "1+1="}'], "line 1, field 'answer'"),
        ([], "empty"),
    ],
)
def test_bad_data_is_one_clear_error(rlcore, tmp_path, lines, message):
    data = tmp_path / "data.jsonl"
    data.write_text("\n".join(lines) + ("\n" if lines else ""))
    result = rlcore("train", "sft", "--set", f"dataset.path={data}", "--set", "run.max_steps=1", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "data.jsonl" in result.stderr and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_all_rows_too_long_names_the_limit(rlcore, tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_text(json.dumps({"prompt": "1+1=", "answer": "2" * 50}) + "\n")
    result = rlcore("train", "sft", "--set", f"dataset.path={data}", "--set", "dataset.max_length=8",
                    "--set", "dataset.truncation=drop", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "data.jsonl" in result.stderr and "max_length" in result.stderr, result.stderr


def test_print_config_round_trips_and_dry_run_validates(rlcore, tmp_path):
    printed = rlcore("train", "dpo", "--set", "dpo.beta=0.2", "--print-config", cwd=tmp_path)
    assert printed.returncode == 0, printed.stderr
    (tmp_path / "dpo.yaml").write_text(printed.stdout)
    again = rlcore("train", "dpo", "--config", "dpo.yaml", "--print-config", cwd=tmp_path)
    assert again.stdout == printed.stdout
    dry = rlcore("train", "dpo", "--config", "dpo.yaml", "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0 and "ref_inference" in dry.stdout and "actor_train" in dry.stdout
    assert not (tmp_path / "runs").exists()


def test_show_exports_mermaid_and_dot(rlcore, tmp_path):
    mermaid = rlcore("show", "dpo", "--format", "mermaid", cwd=tmp_path)
    assert mermaid.returncode == 0 and mermaid.stdout.startswith("flowchart")
    assert "ref_logps" in mermaid.stdout
    dot = rlcore("show", "sft", "--format", "dot", cwd=tmp_path)
    assert dot.returncode == 0 and dot.stdout.lstrip().startswith("digraph")
