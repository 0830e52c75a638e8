"""A plugin frozen at plugin API 1 keeps working through the deprecated aliases, or is listed
incompatible; it never fails mid-run."""

import importlib
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import rlcore
from rlcore import compat
from rlcore.cli.app import build_app
from rlcore.errors import RenamedAttributeWarning

FROZEN = Path(__file__).parent / "api1"


@pytest.fixture
def api1_plugin(monkeypatch, rlcore_plugins):
    """The frozen plugin installed (its dist-info on sys.path), with fresh warn-once state."""
    monkeypatch.syspath_prepend(str(FROZEN))
    importlib.invalidate_caches()
    monkeypatch.setattr(compat, "_warned", set())
    rlcore_plugins.reload()
    yield rlcore_plugins
    for name in [m for m in sys.modules if m.startswith("rlcore_plugin_api1")]:
        del sys.modules[name]


def test_it_is_listed_active_or_incompatible(api1_plugin):
    status = api1_plugin.status()["api1"]
    assert status.status in ("active", "incompatible")
    if status.status == "incompatible":
        assert "API" in status.reason
    else:
        assert status.provides == {"experiments": ["api1_regression"],
                                   "interfaces": ["api1_label", "api1_regression"]}
    listing = CliRunner().invoke(build_app(), ["list-plugins"]).output
    assert "api1" in listing and status.status in listing


def test_it_trains_and_warns_once_naming_the_new_attribute(api1_plugin, tmp_path):
    if api1_plugin.status()["api1"].status != "active":
        pytest.skip(f"plugin API {rlcore.API_VERSION} lists it incompatible")
    from rlcore.launch.launcher import launch
    from rlcore.plugins import registry

    config = registry.get("experiments", "api1_regression")
    cfg = importlib.import_module(config.config.split(":")[0]).ToyConfig()
    cfg.run.epochs, cfg.run.max_steps = 1, 4
    with pytest.warns(RenamedAttributeWarning) as caught:
        summary = launch("api1_regression", cfg, run_dir=tmp_path)
    assert summary["status"] == "completed" and summary["steps"] == 4
    assert summary["last"]["train/loss"] < summary["first"]["train/loss"]
    renamed = [w for w in caught if w.category is RenamedAttributeWarning]
    assert len(renamed) == 1
    assert str(renamed[0].message).startswith(
        "ModelHandle.engine was renamed ModelHandle.model in plugin API 2")
    assert renamed[0].filename.endswith("rlcore_plugin_api1/toy.py")  # the plugin's line
