"""Experiments whose config classes agree, or not, with their records (for test_experiment_config)."""

from __future__ import annotations

from dataclasses import dataclass, field

import rlcore
from rlcore.plugins.records import ExperimentRecord
from rlcore.runtime.experiment import Experiment
from rlcore.runtime.options import RunOptions


@dataclass
class Inner:
    lr: float = 1e-3
    tags: list[str] = field(default_factory=list)


@dataclass
class ConfigA:
    run: RunOptions = field(default_factory=RunOptions)
    inner: Inner = field(default_factory=Inner)
    size: int = 4


@dataclass
class ConfigB:
    size: int = 4


class Declared(Experiment):
    """Not registered: its config class is its own ``config_class``."""

    config_class = ConfigA


class Bare(Experiment):
    """Not registered and no config class."""


class RecordOnly(Experiment):
    """Registered; the record names the config class, the class does not."""


class Agrees(Experiment):
    config_class = ConfigA


class Mismatch(Experiment):
    config_class = ConfigB


class Plugin:
    @rlcore.hookimpl
    def rlcore_experiments(self):
        here = "config_experiments"
        return [
            ExperimentRecord("record-only", impl=f"{here}:RecordOnly", config=f"{here}:ConfigA"),
            ExperimentRecord("agrees", impl=f"{here}:Agrees", config=f"{here}:ConfigA"),
            ExperimentRecord("mismatch", impl=f"{here}:Mismatch", config=f"{here}:ConfigA"),
        ]
