"""`rlcore train dpo` with the kto, orpo and simpo losses: a few steps on small files."""

import json
import math
import sys
from types import SimpleNamespace

import pytest

from rlcore.cli.app import main

pytest.importorskip("rlcore_plugin_algorithms")

PAIRS = [{"prompt": f"{i}+1=", "chosen": str(i + 1), "rejected": str(i + 2)} for i in range(8)]
LABELLED = [{"prompt": f"{i}+1=", "completion": str(i + 1 + i % 2), "label": i % 2 == 0}
            for i in range(8)]
FEW_STEPS = ["run.max_steps=3", "run.batch_size=4", "run.eval_every=3", "run.progress=false"]


@pytest.fixture
def rlcore(capsys, monkeypatch):
    """Run ``rlcore ARGS`` in-process through the console entry point."""

    def run(*args, cwd):
        monkeypatch.chdir(cwd)
        monkeypatch.setattr(sys, "argv", ["rlcore", *args])
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code or 0
        out = capsys.readouterr()
        return SimpleNamespace(returncode=code, stdout=out.out, stderr=out.err)

    return run


def write_rows(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path.name


def sets(*items):
    return [a for s in items for a in ("--set", s)]


@pytest.mark.parametrize("loss_type", ["kto", "orpo", "simpo"])
def test_train_a_few_steps(rlcore, tmp_path, loss_type):
    rows = LABELLED if loss_type == "kto" else PAIRS
    data = write_rows(tmp_path / "train.jsonl", rows)
    held_out = write_rows(tmp_path / "eval.jsonl", rows[:4])
    result = rlcore("train", "dpo", "--run-dir", "run",
                    *sets(f"dpo.loss_type={loss_type}", f"dataset.path={data}",
                          f"eval.path={held_out}", *FEW_STEPS), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [m["actor_train/loss"] for m in metrics if "actor_train/loss" in m]
    assert len(losses) == 3 and all(math.isfinite(v) for v in losses), losses
    assert [m["step"] for m in metrics if "eval/reward_accuracy" in m] == [0, 3]
    uses_ref = any("time/ref_inference" in m for m in metrics)
    assert uses_ref == (loss_type == "kto")
    if loss_type == "kto":
        assert all(m["actor_train/kl"] >= 0 for m in metrics if "actor_train/kl" in m)
    if loss_type == "orpo":  # the NLL half of ORPO is SFT: it falls from the first step
        nll = [m["actor_train/nll"] for m in metrics if "actor_train/nll" in m]
        assert nll[-1] < nll[0], nll


@pytest.mark.parametrize("loss_type", ["orpo", "simpo"])
def test_reference_free_losses_have_no_ref_role(rlcore, tmp_path, loss_type):
    shown = rlcore("show", "dpo", "--set", f"dpo.loss_type={loss_type}", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    graph = shown.stdout.split("resolved config")[0]
    assert "actor_train" in graph and "ref" not in graph, graph


def test_info_lists_the_loss_types(rlcore, tmp_path):
    info = rlcore("info", "experiments", "dpo", cwd=tmp_path)
    assert "'sigmoid' | 'ipo' | 'kto' | 'orpo' | 'simpo'" in info.stdout, info.stdout
    assert "dpo.gamma" in info.stdout and "dpo.desirable_weight" in info.stdout


@pytest.mark.parametrize("name, extra, message", [
    ("dpo", ["dpo.loss_type=ipo", "dpo.label_smoothing=0.1"],
     "dpo.label_smoothing=0.1 has no meaning for dpo.loss_type=ipo"),
    ("dpo", ["dataset.unpaired=true"], "dataset.unpaired=true gives labelled completions"),
    ("rm", ["dataset.unpaired=true"], "a reward model needs pairs"),
])
def test_mismatched_settings_are_config_errors(rlcore, tmp_path, name, extra, message):
    result = rlcore("train", name, "--dry-run", *sets(*extra), cwd=tmp_path)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_labelled_rows_need_kto(rlcore, tmp_path):
    data = write_rows(tmp_path / "train.jsonl", LABELLED)
    result = rlcore("train", "dpo", "--dry-run", *sets(f"dataset.path={data}"), cwd=tmp_path)
    assert result.returncode == 2 and "train.jsonl" in result.stderr, result.stderr
    assert "line 1, field 'completion'" in result.stderr and "dpo.loss_type=kto" in result.stderr
