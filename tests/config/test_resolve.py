"""Typed config resolution: precedence, coercion, errors that name the key, YAML round trip."""

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Literal

import pytest

from rlcore.config import describe_fields, resolve, to_yaml
from rlcore.errors import ConfigError


class Schedule(Enum):
    CONSTANT = "constant"
    COSINE = "cosine"


@dataclass
class Optim:
    lr: float = field(default=1e-5, metadata={"help": "peak learning rate"})
    schedule: Schedule = Schedule.CONSTANT
    betas: tuple[float, ...] = (0.9, 0.95)


@dataclass
class Model:
    path: Path | None = None
    dtype: Literal["fp32", "bf16"] = "fp32"


@dataclass
class Experiment:
    optim: Optim = field(default_factory=Optim)
    actor: Model = field(default_factory=Model)
    critic: Model | None = None
    steps: int = 10
    name: str = "run"
    gradient_checkpointing: bool = False
    tags: list[str] = field(default_factory=list)
    seed: int | None = 1

    def __post_init__(self):
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")


def test_defaults():
    assert resolve(Experiment) == Experiment()


def test_precedence_defaults_then_yaml_then_each_set_in_order(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("steps: 20\noptim:\n  lr: 0.1\n")
    cfg = resolve(Experiment, path, ["steps=30", "steps=40"])
    assert (cfg.steps, cfg.optim.lr, cfg.optim.betas) == (40, 0.1, (0.9, 0.95))


def test_coercion_of_every_supported_type():
    cfg = resolve(
        Experiment,
        sets=[
            "optim.lr=3e-4", "optim.schedule=cosine", "optim.betas=[0.8, 0.99]",
            "actor.path=/models/llama", "critic.dtype=bf16", "name=123",
            "gradient_checkpointing=yes", "tags=[a, b]", "seed=null",
        ],
    )
    assert cfg.optim.lr == pytest.approx(3e-4) and cfg.optim.schedule is Schedule.COSINE
    assert cfg.optim.betas == (0.8, 0.99)
    assert cfg.actor.path == Path("/models/llama")
    assert cfg.critic == Model(path=None, dtype="bf16")
    assert cfg.name == "123" and cfg.gradient_checkpointing is True
    assert cfg.tags == ["a", "b"] and cfg.seed is None


@pytest.mark.parametrize(
    "item, message",
    [
        ("optim.lrr=1", "unknown config key 'optim.lrr' (from --set optim.lrr=1). Did you mean 'optim.lr'?"),
        ("steps=abc", "config key 'steps': expected int, got 'abc'"),
        ("actor.dtype=fp8", "expected 'fp32' | 'bf16', got 'fp8'"),
        ("optim.schedule=linearr", "expected 'constant' | 'cosine'"),
        ("gradient_checkpointing=maybe", "expected bool"),
        ("optim.lr.x=1", "'optim.lr' is a value, not a section"),
        ("actr.path=3", "Did you mean 'actor'?"),
        ("noequals", "is not of the form key=value"),
        ("steps=0", "steps must be >= 1"),
    ],
)
def test_bad_values_name_the_key(item, message):
    with pytest.raises(ConfigError) as err:
        resolve(Experiment, sets=[item])
    assert message in str(err.value)


def test_yaml_errors_name_file_and_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("steps: 3\noptim:\n  lr: 1\n  schedul: cosine\n")
    with pytest.raises(ConfigError, match=r"'optim.schedul' \(from .*bad.yaml:4\)"):
        resolve(Experiment, path)
    with pytest.raises(ConfigError, match="does not exist"):
        resolve(Experiment, tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        resolve(Experiment, tmp_path / "list.yaml")


def test_printed_yaml_round_trips_unchanged(tmp_path):
    cfg = resolve(Experiment, sets=["optim.schedule=cosine", "actor.path=/m", "critic.dtype=bf16", "tags=[x]"])
    text = to_yaml(cfg)
    path = tmp_path / "printed.yaml"
    path.write_text(text)
    again = resolve(Experiment, path)
    assert again == cfg and to_yaml(again) == text


def test_describe_fields_flattens_sections():
    rows = {key: (tp, default, help_) for key, tp, default, help_ in describe_fields(Experiment)}
    assert rows["optim.lr"] == ("float", 1e-5, "peak learning rate")
    assert rows["critic"][0] == "Model | None"


def test_base_replaces_the_defaults_and_is_not_modified(tmp_path):
    base = Experiment(steps=5, optim=Optim(lr=0.5), critic=Model(path=Path("/c")), tags=["a"])
    cfg = resolve(Experiment, sets=["steps=7", "critic.dtype=bf16"], base=base)
    assert (cfg.steps, cfg.optim.lr, cfg.critic, cfg.tags) == (7, 0.5, Model(Path("/c"), "bf16"), ["a"])
    assert base.steps == 5 and base.critic.dtype == "fp32"
    cfg.tags.append("b")
    assert base.tags == ["a"]  # copied, not shared
    path = tmp_path / "c.yaml"
    path.write_text("optim:\n  schedule: cosine\n")
    cfg = resolve(Experiment, path, ["name=x"], base=base)  # base < file < sets
    assert (cfg.steps, cfg.optim.lr, cfg.optim.schedule, cfg.name) == (5, 0.5, Schedule.COSINE, "x")
    assert resolve(Experiment, base=base) == base


def test_base_of_the_wrong_type_or_with_bad_values_is_an_error():
    with pytest.raises(ConfigError, match="the base config is a Optim, expected a Experiment"):
        resolve(Experiment, base=Optim())
    bad = Experiment()
    bad.optim.lr = "fast"
    with pytest.raises(ConfigError, match=r"'optim.lr'.*'fast' \(from the base config\)"):
        resolve(Experiment, base=bad)
