"""Profiles: with ``actor.path`` set, a real model's defaults fill the keys the user left
alone (never the tiny task's 6 new tokens); ``--set`` and config files win; ``--profile
tiny`` keeps the old values; the printed block names each value's source."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rlcore.cli.app import app
from rlcore.config import experiment_config
from rlcore.config.profiles import describe, source_of
from rlcore.errors import ConfigError
from rlcore_plugin_algorithms.profiles import REAL

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENTS = ["sft", "rm", "dpo", "ppo", "grpo", "remax", "online_dpo", "distill"]


def value(config, key):
    for part in key.split("."):
        config = getattr(config, part)
    return config


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A tiny random Llama saved as an HF model directory, with the embedded tokenizer."""
    from rlcore.data.embedded import embedded_tokenizer, save_embedded_tokenizer
    from rlcore.models.hf_io import save_pretrained
    from rlcore.testing.interfaces import tiny_model

    path = tmp_path_factory.mktemp("models") / "my-model"
    tok = embedded_tokenizer()
    save_pretrained(tiny_model(tok).eval(), "llama", path, tokenizer=tok)
    save_embedded_tokenizer(path)
    return path


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_a_model_dir_gets_the_real_values(name, model_dir):
    cfg = experiment_config(name, sets=[f"actor.path={model_dir}"])[1]
    assert REAL[name], name
    for key, want in REAL[name].items():
        assert value(cfg, key) == want, key
        assert source_of(cfg, key) == "profile real", key
    assert source_of(cfg, "actor.path") == "--set"


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_without_a_model_or_with_profile_tiny_the_values_stay(name, model_dir):
    preset = experiment_config(name, profile="tiny")[1]
    for cfg in (experiment_config(name)[1],
                experiment_config(name, sets=[f"actor.path={model_dir}"], profile="tiny")[1]):
        for key in REAL[name]:
            assert value(cfg, key) == value(preset, key), key
            assert source_of(cfg, key) == "preset default", key


def test_the_tiny_values_are_what_they_were():
    cfg = experiment_config("grpo", sets=["actor.path=m"], profile="tiny")[1]
    assert (cfg.gen.max_new_tokens, cfg.eval.max_new_tokens, cfg.train.optimizer.lr) == (6, 8, 2e-4)
    assert (cfg.train.dtype, cfg.warm_start.sft_steps, cfg.run.max_steps) == ("fp32", 400, 300)


def test_your_values_win_even_when_they_equal_the_tiny_default(tmp_path):
    config = tmp_path / "my.yaml"
    config.write_text("actor:\n  path: m\ntrain:\n  optimizer:\n    lr: 3.0e-6\n")
    cfg = experiment_config("grpo", config_file=config,
                            sets=["gen.max_new_tokens=6", "train.dtype=fp32"])[1]
    assert (cfg.gen.max_new_tokens, cfg.train.dtype, cfg.train.optimizer.lr) == (6, "fp32", 3e-6)
    assert source_of(cfg, "gen.max_new_tokens") == "--set"
    assert source_of(cfg, "train.optimizer.lr") == f"config {config}:5"
    assert cfg.eval.max_new_tokens == 1024  # left alone: the profile's


def test_profile_real_without_a_model_and_unknown_profiles():
    cfg = experiment_config("sft", profile="real")[1]
    assert cfg.train.optimizer.lr == 1e-5 and cfg.actor.path is None
    with pytest.raises(ConfigError, match="expected one of auto, real, tiny"):
        experiment_config("sft", profile="huge")


def test_a_base_config_keeps_its_own_values():
    """The Python API: a base config's values that differ from the defaults are the user's."""
    base = experiment_config("grpo", profile="tiny")[1]
    base.actor.path, base.gen.max_new_tokens = "m", 256
    cfg = experiment_config("grpo", base=base)[1]
    assert (cfg.gen.max_new_tokens, cfg.train.optimizer.lr) == (256, 1e-6)
    assert source_of(cfg, "gen.max_new_tokens") == "the base config"


def test_an_environment_default_wins_over_the_profile_but_not_over_you():
    cfg = experiment_config("grpo", sets=["actor.path=m", "env.name=calculator",
                                          "run.batch_size=8"])[1]
    assert (cfg.gen.max_new_tokens, source_of(cfg, "gen.max_new_tokens")) == (96, "env calculator")
    assert (cfg.run.batch_size, source_of(cfg, "run.batch_size")) == (8, "--set")
    assert source_of(cfg, "train.optimizer.lr") == "profile real"


def test_a_resolved_config_read_back_keeps_every_value(tmp_path):
    """What the ranks do: the resolved YAML, read back, is the same config (every key the
    file's, so no profile changes it again)."""
    from rlcore.config import to_yaml

    cfg = experiment_config("grpo", sets=["actor.path=m", "gen.max_new_tokens=6"])[1]
    (tmp_path / "run.yaml").write_text(to_yaml(cfg))
    again = experiment_config("grpo", config_file=tmp_path / "run.yaml")[1]
    assert to_yaml(again) == to_yaml(cfg)


def test_dry_run_prints_each_value_and_its_source(model_dir, tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_text("".join(f'{{"prompt": "{a}+{a}=", "answer": "{2 * a}"}}\n' for a in range(40)))
    args = ["train", "grpo", "--set", f"actor.path={model_dir}", "--set", f"dataset.path={data}",
            "--set", "reward.functions=[math_answer]", "--set", "gen.max_new_tokens=512",
            "--dry-run"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = {m.group(1): (m.group(2), m.group(3)) for m in
            re.finditer(r"^  (\S+)\s+(\S+)\s+(.+?)\s*$", result.stderr, re.M)}
    assert result.stderr.startswith("settings, profile real (auto: actor.path is set;")
    assert rows["actor.path"] == (str(model_dir), "--set")
    assert rows["gen.max_new_tokens"] == ("512", "--set")
    assert rows["eval.max_new_tokens"] == ("1024", "profile real")
    assert rows["train.optimizer.lr"] == ("1e-06", "profile real")
    assert rows["train.dtype"] == ("bf16", "profile real")
    assert rows["run.batch_size"] == ("32", "preset default")
    assert "dry run: grpo would start" in result.stdout

    tiny = CliRunner().invoke(app, [*args[:-1], "--profile", "tiny", "--print-config"])
    assert tiny.exit_code == 0, tiny.output
    assert tiny.stderr.startswith("settings, profile tiny (--profile tiny):")
    assert re.search(r"^  eval.max_new_tokens\s+8\s+preset default$", tiny.stderr, re.M)
    assert "settings" not in tiny.stdout and "max_new_tokens: 8" in tiny.stdout


def test_the_docs_table_shows_the_real_values():
    """docs/real-run.md's table of the real profile is the table in the code."""
    page = (ROOT / "docs" / "real-run.md").read_text()
    header = next(line for line in page.splitlines() if line.startswith("| key | sft |"))
    columns = [c.strip() for c in header.strip("|").split("|")]
    for key in {k for table in REAL.values() for k in table}:
        row = next(line for line in page.splitlines() if line.startswith(f"| `{key}` |"))
        cells = dict(zip(columns, (c.strip() for c in row.strip("|").split("|")), strict=True))
        for name in EXPERIMENTS:
            column = next(c for c in columns if name in c.split(", "))
            want = REAL[name].get(key)
            shown = cells[column]
            assert shown == ("" if want is None else f"{want:g}" if isinstance(want, float)
                             else str(want)), (key, name, shown)


def test_the_docs_block_is_what_a_run_prints():
    """docs/real-run.md shows the block that its second dry run prints."""
    page = (ROOT / "docs" / "real-run.md").read_text()
    shown = page.split("The second prints")[1].split("```text\n")[1].split("```")[0]
    cfg = experiment_config("grpo", sets=[
        "actor.path=my-model", "dataset.path=data/train.parquet", "eval.path=data/test.jsonl",
        "reward.functions=[math_answer]", "gen.max_new_tokens=512"])[1]
    assert shown.rstrip("\n") == describe(cfg)


def test_a_profile_value_is_not_a_setting_of_yours():
    """ppo's real profile sets critic keys; a critic-free estimator drops them without the
    error that your own critic settings would get."""
    cfg = experiment_config("ppo", sets=["actor.path=m", "adv.estimator=grpo"])[1]
    assert cfg.critic is None
    with pytest.raises(ConfigError, match="critic.train.optimizer.lr is set, but adv.estimator"):
        experiment_config("ppo", sets=["actor.path=m", "adv.estimator=grpo",
                                       "critic.train.optimizer.lr=2e-5"])
