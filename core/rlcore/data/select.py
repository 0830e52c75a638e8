"""Choosing a dataset by name: ``dataset.name`` picks a registered dataset for an experiment.

The experiment's ``dataset`` section is a :class:`~rlcore.data.config.DatasetConfig`
(or a subclass). :func:`dataset_config_for` turns it into the config class the named
dataset registers: shared fields are copied, ``dataset.options`` sets the fields only
that class has. No torch import here; the dataset itself is built by :func:`build_named`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from rlcore.errors import ConfigError
from rlcore.plugins.lookup import did_you_mean


def dataset_name(config: Any, default: str) -> str:
    """``config.name`` when set, else the experiment's ``default``."""
    return getattr(config, "name", None) or default


def dataset_config_for(name: str, config: Any, where: str = "dataset", **overrides: Any) -> Any:
    """``config`` (plus ``overrides``) as an instance of dataset ``name``'s config class.

    Fields both classes share are copied; ``config.options`` fills the rest and is
    checked like any config key (``dataset.options.question_field``).
    """
    from rlcore.config.schema import build, field_types
    from rlcore.plugins import registry

    record = registry.get("datasets", name)  # unknown names: an error listing what exists
    config = dataclasses.replace(config, **overrides) if overrides else config
    if record.config is None:
        target: type = type(config)
    else:
        from rlcore.plugins.records import load_object

        target = load_object(record.config)
    options = dict(getattr(config, "options", None) or {})
    if type(config) is target and not options:
        return config
    wanted = field_types(target)
    tree = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)
            if f.init and f.name in wanted and f.name != "options"}
    own = [k for k in wanted if k not in field_types(type(config))]
    for key in map(str, options):
        if key in tree:
            raise ConfigError(f"{where}.options.{key} repeats {where}.{key}; set it once, as "
                              f"{where}.{key}")
        if key not in own:
            raise ConfigError(
                f"unknown config key '{where}.options.{key}': dataset {name!r} has no such "
                f"setting.{did_you_mean(key, own, where + '.options.')} Its own settings: "
                f"{', '.join(own) or 'none'}.")
    tree.update(options)
    if "options" in wanted:
        tree["options"] = {}
    return build(target, tree, f"{where}.options.", {}, f"{where}.options")


def build_named(name: str, config: Any, tokenizer: Any, where: str = "dataset",
                **overrides: Any) -> Any:
    """The registered dataset ``name`` built over ``config`` converted for it."""
    from rlcore.plugins import registry

    cls = registry.load("datasets", name)
    return cls(dataset_config_for(name, config, where, **overrides), tokenizer)
