"""Every numeric option of every experiment is range-checked at config time, and the help
texts say what the options do."""

import dataclasses
import typing

import pytest

from rlcore.cli.train_cmd import resolve_experiment
from rlcore.config import describe_fields
from rlcore.errors import ConfigError

EXPERIMENTS = ["sft", "rm", "dpo", "ppo", "grpo", "remax", "online_dpo", "distill"]
# Numbers that may take any finite value (nan is still refused).
UNBOUNDED = {"reward.scale", "reward.bias", "reward.no_eos_penalty", "reward.weights"}


def numeric_fields(cls, prefix=""):
    """``(key, field)`` of every int or float field (also inside ``X | None`` and ``list[X]``)."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            yield from numeric_fields(tp, f"{prefix}{f.name}.")
            continue
        args = set(typing.get_args(tp)) | {tp}
        args |= {a for arg in list(args) for a in typing.get_args(arg)}
        if args & {int, float} and bool not in args:
            yield f"{prefix}{f.name}", f


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_numeric_option_declares_its_range(name):
    _, cfg = resolve_experiment(name, None, [])
    missing = [key for key, f in numeric_fields(type(cfg))
               if "range" not in f.metadata and key not in UNBOUNDED]
    assert not missing, f"{name}: numeric keys without a declared range: {missing}"


@pytest.mark.parametrize("name, item, message", [
    ("sft", "train.zero_stage=4", "'train.zero_stage': expected an integer in [0, 3], got 4"),
    ("sft", "dataset.max_length=0", "'dataset.max_length': expected an integer >= 2, got 0"),
    ("sft", "train.optimizer.lr=inf", "'train.optimizer.lr': expected a finite number > 0, got inf"),
    ("dpo", "run.keep_last=-2", "'run.keep_last': expected an integer >= 0, got -2"),
    ("dpo", "dpo.beta=0", "'dpo.beta': expected a finite number > 0, got 0.0"),
    ("dpo", "dpo.label_smoothing=0.5", "'dpo.label_smoothing': expected a number in [0, 0.5), got 0.5"),
    ("ppo", "adv.discount=1.5", "'adv.discount': expected a number in [0, 1], got 1.5"),
    ("grpo", "policy.eps_clip=0", "'policy.eps_clip': expected a finite number > 0, got 0.0"),
    ("grpo", "gen.top_p=0", "'gen.top_p': expected a number in (0, 1], got 0.0"),
    ("grpo", "gen.temperature=-1", "'gen.temperature': expected a finite number > 0, got -1.0"),
    ("remax", "critic.norm_beta=1", "'critic.norm_beta': expected a number in (0, 1), got 1.0"),
    ("ppo", "reward.clip=0", "'reward.clip': expected a finite number > 0, got 0.0"),
    ("ppo", "reward.bias=nan", "'reward.bias': expected a number, got nan"),
    ("ppo", "warm_start.lr=-1", "'warm_start.lr': expected a finite number > 0, got -1.0"),
])
def test_bad_numbers_name_the_key_and_the_override(name, item, message):
    with pytest.raises(ConfigError) as err:
        resolve_experiment(name, None, [item])
    assert message in str(err.value) and f"(from --set {item})" in str(err.value), str(err.value)


def help_of(name):
    _, cfg = resolve_experiment(name, None, [])
    return {key: help_text for key, _, _, help_text in describe_fields(type(cfg))}


def test_help_texts_match_behaviour():
    sft, dpo = help_of("sft"), help_of("dpo")
    assert "run.seed" in sft["dataset.seed"] and "embedded" in sft["dataset.seed"]
    assert "run.seed" in sft["dataset.shuffle"]
    assert "pairs (rm, dpo)" in dpo["run.batch_size"] and "prompts" in dpo["run.batch_size"]
    assert "0.95" in dpo["train.optimizer.beta2"] and "0.999" in dpo["train.optimizer.beta2"]


def test_run_seed_orders_the_batches_and_dataset_seed_only_the_embedded_rows(tmp_path):
    import json

    from rlcore.runtime.experiment import build_experiment

    data = tmp_path / "sft.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"{i}+1=", "answer": str(i + 1)}) + "\n"
                            for i in range(40)))

    def first_batch(*sets):
        _, cfg = resolve_experiment("sft", None, [f"dataset.path={data}", "run.batch_size=8", *sets])
        exp = build_experiment("sft", cfg)
        return exp.build_batches(exp.build_dataset(exp.build_tokenizer())).plan(0)[0]

    assert first_batch("dataset.seed=7") == first_batch("dataset.seed=8")
    assert first_batch("run.seed=7") != first_batch("run.seed=8")


def test_the_keys_of_the_old_sections_still_work_with_a_note(tmp_path):
    from rlcore.errors import RenamedKeyWarning

    old = tmp_path / "old.yaml"
    old.write_text("ppo:\n  kl_ctl: 0.1\n  value_norm: true\ncritic_train:\n  zero_stage: 1\n")
    with pytest.warns(RenamedKeyWarning, match=r"'ppo.kl_ctl' \(from \S*old.yaml:2\) is now 'kl.coef'"):
        _, cfg = resolve_experiment("ppo", old, ["ppo.ppo_n_minibatches=4", "run.batch_size=8"])
    assert (cfg.kl.coef, cfg.critic.norm, cfg.critic.train.zero_stage) == (0.1, True, 1)
    assert cfg.policy.minibatches == 4
    with pytest.warns(RenamedKeyWarning, match="'grpo.dynamic_sampling'"):
        _, cfg = resolve_experiment("grpo", None, ["grpo.dynamic_sampling=true"])
    assert cfg.dynamic_sampling.enabled


@pytest.mark.parametrize("name, item, message", [
    ("ppo", "ppo.kl_ctll=1", r"'ppo.kl_ctll' \(from --set ppo.kl_ctll=1\): the 'ppo' section was "
                             r"split.*Did you mean 'ppo.kl_ctl'"),
    ("grpo", "ppo.kl_ctl=1", "unknown config key 'ppo'"),  # each preset keeps its own old names
])
def test_a_mistyped_old_key_is_named(name, item, message):
    with pytest.raises(ConfigError, match=message):
        resolve_experiment(name, None, [item])
