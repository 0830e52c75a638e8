"""Declared ranges: every numeric value is checked at config time, named by its key and source."""

from dataclasses import dataclass, field

import pytest

from rlcore.config import describe_fields, resolve
from rlcore.config.ranges import check_ranges, parse_range
from rlcore.errors import ConfigError
from rlcore.runtime.options import DeepSpeedOptions, RunOptions, validate_deepspeed


@dataclass
class Section:
    rate: float = field(default=0.5, metadata={"range": "(0, 1]"})
    weights: list[float] = field(default_factory=lambda: [1.0], metadata={"range": "[0, inf)"})
    bias: float = 0.0  # no range: any number but nan


@dataclass
class Config:
    train: DeepSpeedOptions = field(default_factory=DeepSpeedOptions)
    run: RunOptions = field(default_factory=RunOptions)
    section: Section = field(default_factory=Section)


@pytest.mark.parametrize("spec, inside, outside", [
    ("(0, inf)", [1e-12, 3.0], [0.0, -1.0, float("inf")]),
    ("[0, inf)", [0, 7], [-1]),
    ("[0, 3]", [0, 3], [-1, 4]),
    ("[0, 0.5)", [0.0, 0.49], [0.5, -0.1]),
    ("(1, inf]", [1.5, float("inf")], [1.0]),
])
def test_interval_notation(spec, inside, outside):
    rng = parse_range(spec)
    assert all(x in rng for x in inside) and not any(x in rng for x in outside)


@pytest.mark.parametrize("spec", ["0..1", "[1, 0]", "(a, 1)", "[0, 1"])
def test_a_bad_range_spec_is_an_error_for_the_author(spec):
    with pytest.raises(ConfigError, match="is not an interval"):
        parse_range(spec)


@pytest.mark.parametrize("value", ["0", "-1e-5", "nan", "inf", "-inf"])
def test_learning_rate_must_be_a_finite_positive_number(value):
    with pytest.raises(ConfigError) as err:
        resolve(Config, sets=[f"train.optimizer.lr={value}"])
    assert str(err.value).startswith("config key 'train.optimizer.lr': expected a finite number > 0, "
                                     f"got {float(value)!r} (from --set train.optimizer.lr={value})")


@pytest.mark.parametrize("key", ["run.max_steps", "run.save_every", "run.keep_last", "run.eval_every"])
def test_negative_counts_are_rejected(key):
    with pytest.raises(ConfigError, match=rf"^config key '{key}': expected an integer >= 0, got -1 "
                                          rf"\(from --set {key}=-1\)"):
        resolve(Config, sets=[f"{key}=-1"])


def test_zero_stage_is_named_by_its_key_and_file_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("run:\n  max_steps: 3\ntrain:\n  grad_clip: 1.0\n  zero_stage: 4\n")
    with pytest.raises(ConfigError) as err:
        resolve(Config, path)
    assert str(err.value) == (f"config key 'train.zero_stage': expected an integer in [0, 3], got 4 "
                              f"(from {path}:5)")


def test_lists_probabilities_and_nan_without_a_range():
    with pytest.raises(ConfigError, match=r"'section.weights\[1\]': expected a finite number >= 0, got -2.0"):
        resolve(Config, sets=["section.weights=[1, -2]"])
    with pytest.raises(ConfigError, match=r"'section.rate': expected a number in \(0, 1\], got 1.5"):
        resolve(Config, sets=["section.rate=1.5"])
    with pytest.raises(ConfigError, match=r"'section.bias': expected a number, got nan"):
        resolve(Config, sets=["section.bias=nan"])
    assert resolve(Config, sets=["section.bias=-3", "section.rate=1"]).section.rate == 1.0


def test_a_bad_default_is_reported_as_such():
    @dataclass
    class Bad:
        run: RunOptions = field(default_factory=lambda: RunOptions(epochs=0))

    with pytest.raises(ConfigError, match=r"'run.epochs': expected an integer >= 1, got 0 \(from defaults\)"):
        resolve(Bad)


def test_options_built_in_code_are_checked_by_the_same_mechanism():
    with pytest.raises(ConfigError, match=r"'backend.grad_clip': expected a finite number >= 0, got -1.0"):
        validate_deepspeed(DeepSpeedOptions(grad_clip=-1.0))
    opts = DeepSpeedOptions()
    opts.optimizer.lr = float("nan")
    with pytest.raises(ConfigError, match="'actor.optimizer.lr'"):
        check_ranges(opts, "actor.", default_source="code")


def test_rlcore_info_shows_each_range_with_the_type():
    rows = {key: tp for key, tp, _, _ in describe_fields(Config)}
    assert rows["train.zero_stage"] == "int in [0, 3]"
    assert rows["train.optimizer.lr"] == "float > 0"
    assert rows["run.batch_size"] == "int | None >= 1"
    assert rows["section.bias"] == "float"


def test_a_config_built_in_code_is_checked_when_its_experiment_is_built():
    from rlcore.runtime.experiment import Experiment, build_experiment

    class Toy(Experiment):
        config_class = Config

    cfg = Config()
    cfg.run.max_steps = -3
    with pytest.raises(ConfigError, match=r"'run.max_steps': expected an integer >= 0, got -3 "
                                          r"\(from the config given\)"):
        build_experiment(Toy, cfg)
    assert build_experiment(Toy, Config()).config.run.max_steps == 0
