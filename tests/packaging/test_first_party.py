"""A core without the first-party plugins names the package that provides what is missing."""

import tomllib
from importlib.metadata import PackageNotFoundError
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rlcore import first_party
from rlcore.cli.app import app
from rlcore.errors import UnknownItemError
from rlcore.models.hf_io import ModelLoadError, resolve_family
from rlcore.plugins.manager import get_manager

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]
FIRST_PARTY = {d.name for d in (ROOT / "plugins").iterdir() if (d / "pyproject.toml").is_file()}
# contrib/ packages are third-party-like; a "bare core" test hides them too.
CONTRIB = tuple(tomllib.loads(p.read_text())["project"]["name"]
                for p in sorted((ROOT / "contrib").glob("*/pyproject.toml")))


@pytest.fixture
def without(rlcore_plugins, monkeypatch):
    """Make first-party distributions look uninstalled: blocked from loading and unknown to metadata."""

    def remove(*dists: str) -> None:
        real = first_party.distribution

        def distribution(name):
            if name in dists:
                raise PackageNotFoundError(name)
            return real(name)

        monkeypatch.setattr(first_party, "distribution", distribution)
        rlcore_plugins.reload(env={"RLCORE_PLUGINS_BLOCK": ",".join(dists)})

    return remove


def test_table_matches_what_the_first_party_plugins_register(rlcore_plugins):
    manager = get_manager()
    for kind, dist in first_party.KIND_PACKAGES.items():
        providers = {manager.entry(kind, n).plugin.dist for n in manager.registries[kind]}
        first = providers & FIRST_PARTY
        assert first <= {dist}, f"{kind}: registered by {first}, table says {dist}"
    families = {n: manager.entry("families", n) for n in manager.registries["families"]}
    by_type = {t: e for e in families.values() for t in e.record.hf_model_types}
    for dist, names in first_party.FAMILY_PACKAGES.items():
        for name in names:  # a family name or an HF model_type (gemma3 reads gemma3_text)
            assert (families.get(name) or by_type[name]).plugin.dist == dist, name
    first = [(n, e) for n, e in families.items() if e.plugin.dist in FIRST_PARTY]
    listed = {n for names in first_party.FAMILY_PACKAGES.values() for n in names}
    assert listed == {n for n, _ in first} | {t for _, e in first for t in e.record.hf_model_types}


def test_no_hint_when_the_package_is_installed(rlcore_plugins):
    assert first_party.install_hint("experiments") == ""
    assert first_party.install_hint("families", "qwen2") == ""


def test_train_without_algorithms_names_the_package(without):
    without("rlcore-plugin-algorithms")
    result = runner.invoke(app, ["train", "ppo"])
    assert isinstance(result.exception, UnknownItemError), result.output
    message = str(result.exception)
    assert "named 'ppo'" in message
    assert "rlcore-plugin-algorithms" in message and "`pip install rlcore-plugin-llama`" in message


def test_list_experiments_without_algorithms_names_the_package(without):
    without("rlcore-plugin-algorithms", *CONTRIB)
    result = runner.invoke(app, ["list", "experiments"], terminal_width=300)
    assert result.exit_code == 0, result.output
    assert "No experiments registered" in result.output
    assert "rlcore-plugin-algorithms" in result.output


def test_model_type_without_its_family_names_the_package(without):
    without("rlcore-plugin-qwen2")
    with pytest.raises(ModelLoadError, match=r"'qwen2' is provided by rlcore-plugin-qwen2: `pip install rlcore-plugin-qwen2`"):
        resolve_family(None, "qwen2", " in /m/config.json")


def test_unsupported_model_type_says_what_the_core_lacks(rlcore_plugins):
    with pytest.raises(ModelLoadError, match=r"model_type 'qwen3_next' \(from /m/config.json\).*"
                                             r"lacks hybrid Gated DeltaNet linear attention"):
        resolve_family(None, "qwen3_next", " (from /m/config.json)")


def test_default_preset_without_llama_names_the_package(without):
    from rlcore_plugin_algorithms.config import ModelOptions
    from rlcore_plugin_algorithms.experiments import tiny_model_config

    without("rlcore-plugin-llama")
    with pytest.raises(UnknownItemError, match=r"actor.preset=llama: .*pip install rlcore-plugin-llama"):
        tiny_model_config(ModelOptions(), vocab_size=32, max_positions=16)


def test_list_plugins_of_a_bare_core_names_the_packages(without):
    without("rlcore-plugin-algorithms", *first_party.FAMILY_PACKAGES, *CONTRIB)
    result = runner.invoke(app, ["list-plugins"], terminal_width=300)
    assert result.exit_code == 0, result.output
    assert "No families installed. Model families come from plugins: `pip install rlcore-plugin-llama`" in result.output
    assert "No experiments installed. rlcore's standard experiments come from rlcore-plugin-algorithms" in result.output


def test_list_plugins_with_a_family_gives_no_hint(rlcore_plugins):
    result = runner.invoke(app, ["list-plugins"], terminal_width=300)
    assert result.exit_code == 0, result.output
    assert "installed." not in result.output
