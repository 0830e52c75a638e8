"""One path from an experiment to its config: registered names, ``module:Class``, config objects."""

from __future__ import annotations

import subprocess
import sys
import tempfile

import pytest
from config_experiments import (
    Agrees,
    ConfigA,
    ConfigB,
    Declared,
    Inner,
    Mismatch,
    Plugin,
    RecordOnly,
)

from rlcore.config import experiment_config
from rlcore.config.experiments import config_class_of, experiment_class
from rlcore.errors import ConfigError


@pytest.fixture
def registered(rlcore_plugins):
    rlcore_plugins.register(Plugin(), name="config-experiments")
    return rlcore_plugins


@pytest.fixture
def no_temp_files(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("config resolution wrote a temporary file")

    for name in ("TemporaryDirectory", "NamedTemporaryFile", "mkstemp", "mkdtemp"):
        monkeypatch.setattr(tempfile, name, refuse)


def test_a_config_object_under_a_file_and_overrides_writes_no_temp_file(tmp_path, no_temp_files):
    base = ConfigA(inner=Inner(lr=0.5, tags=["x"]), size=9)
    path = tmp_path / "c.yaml"
    path.write_text("inner:\n  tags: [y]\n")
    name, cfg = experiment_config("config_experiments:Declared", base=base, config_file=path,
                                  sets=["run.max_steps=3"])
    assert name == "Declared" and isinstance(cfg, ConfigA)
    assert (cfg.size, cfg.inner.lr, cfg.inner.tags, cfg.run.max_steps) == (9, 0.5, ["y"], 3)
    assert base.run.max_steps != 3 and base.inner.tags == ["x"]
    assert experiment_config(Declared) == ("Declared", ConfigA())


def test_module_class_and_class_use_config_class(registered):
    assert config_class_of("config_experiments:Declared") is ConfigA
    assert config_class_of(Declared) is ConfigA
    with pytest.raises(ConfigError, match=r"'siz'.*Did you mean 'size'"):
        experiment_config(Declared, sets=["siz=3"])
    with pytest.raises(ConfigError, match="expects a ConfigA"):
        experiment_config(Declared, base=ConfigB())


def test_an_experiment_without_a_config_class(registered):
    assert experiment_config("config_experiments:Bare") == ("Bare", None)
    with pytest.raises(ConfigError, match="'Bare' declares no config class"):
        experiment_config("config_experiments:Bare", sets=["size=1"])


def test_a_registered_name_takes_its_records_config_class(registered):
    name, cfg = experiment_config("record-only", sets=["size=2"])
    assert name == "record-only" and cfg == ConfigA(size=2)
    # The class does not repeat it: the record is found from the class too.
    assert config_class_of(RecordOnly) is ConfigA
    assert config_class_of("config_experiments:RecordOnly") is ConfigA
    assert experiment_class("record-only") is RecordOnly
    assert experiment_class("agrees") is Agrees and config_class_of(Agrees) is ConfigA


def test_a_class_and_its_record_that_disagree_is_an_error_naming_both(registered):
    with pytest.raises(ConfigError) as err:
        experiment_class("mismatch")
    message = str(err.value)
    assert "'mismatch'" in message and "'config_experiments:ConfigA'" in message
    assert "Mismatch.config_class is 'config_experiments:ConfigB'" in message
    with pytest.raises(ConfigError, match="Mismatch.config_class"):
        config_class_of(Mismatch)
    # Resolving by name reads the record alone (no import); building checks the class.
    from rlcore.api import Engine

    engine = Engine.from_experiment("mismatch", overrides=["size=3"])
    assert engine.config == ConfigA(size=3) and engine.name == "mismatch"
    with pytest.raises(ConfigError, match="Mismatch.config_class"):
        engine.graph()


def test_print_config_resolves_without_importing_torch():
    code = (
        "import sys; sys.argv = ['rlcore', 'train', 'sft', '--set', 'run.max_steps=3', "
        "'--print-config']\n"
        "from rlcore.cli.app import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "max_steps: 3" in result.stdout
