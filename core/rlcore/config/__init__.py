"""Typed experiment configs: defaults < YAML file < each ``--set``, validated before anything heavy."""

from rlcore.config.experiments import experiment_config
from rlcore.config.resolve import resolve, to_plain, to_yaml
from rlcore.config.schema import describe_fields

__all__ = ["describe_fields", "experiment_config", "resolve", "to_plain", "to_yaml"]
