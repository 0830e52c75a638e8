"""The generated config reference shows what a run uses: the values `--print-config` prints."""

from __future__ import annotations

import importlib.util

from doc_blocks import ROOT

from rlcore.config import describe_fields, experiment_config
from rlcore.config.experiments import config_class_of
from rlcore.plugins import registry


def _hook():
    spec = importlib.util.spec_from_file_location(
        "mkdocs_config_reference", ROOT / "scripts" / "mkdocs_config_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_experiment_has_a_page_with_every_key_and_its_run_default() -> None:
    hook = _hook()
    names = hook.experiment_names()
    assert set(names) == set(registry.items("experiments"))
    for name in names:
        page = hook.config_page(name)
        _, resolved = experiment_config(name)
        for key, *_ in describe_fields(config_class_of(name)):
            value = resolved
            for part in key.split("."):
                value = getattr(value, part)
            assert f"| `{key}` |" in page, (name, key)
            row = next(line for line in page.splitlines() if line.startswith(f"| `{key}` |"))
            assert repr(value) in row, (name, key, row)
    index = hook.index_page()
    assert all(f"]({n}.md)" in index for n in names)


def test_nav_entry_expands_to_one_page_per_experiment() -> None:
    hook = _hook()
    nav = hook.on_config({"nav": [{"Reference": [{"Experiment configs": hook.INDEX}]}]})["nav"]
    pages = nav[0]["Reference"][0]["Experiment configs"]
    assert pages[0] == hook.INDEX
    assert pages[1:] == [f"reference/config/{n}.md" for n in hook.experiment_names()]
