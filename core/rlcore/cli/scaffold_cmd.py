"""``rlcore new-plugin NAME``: scaffold an installable plugin package with a passing test."""

from __future__ import annotations

import re
from pathlib import Path

import typer
from rich.console import Console

import rlcore
from rlcore.errors import RlcoreError

console = Console()

PYPROJECT = '''\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "rlcore-plugin-{name}"
version = "0.1.0"
description = "An rlcore plugin: {name}."
requires-python = ">=3.11"
dependencies = ["rlcore>={core_version},<{core_next}"]

[project.optional-dependencies]
test = ["pytest>=8"]

[project.entry-points.rlcore]
{name} = "rlcore_plugin_{module}"

[tool.setuptools.packages.find]
where = ["src"]
'''

INIT = '''\
"""rlcore plugin {name}: registers its items through rlcore's hooks.

Records name implementations lazily ("module:attr"), so `rlcore list-plugins`
stays fast and never imports your code's heavy dependencies.
"""

import rlcore
from rlcore.plugins.records import RewardFunctionRecord


@rlcore.hookimpl
def rlcore_reward_functions():
    """Register this plugin's reward functions."""
    return [
        RewardFunctionRecord(
            name="{name}_keyword",
            impl="rlcore_plugin_{module}.rewards:keyword_reward",
            doc="1.0 when the completion contains the sample's `keyword` field, else 0.0.",
        )
    ]
'''

REWARDS = '''\
"""Reward functions of the {name} plugin."""


def keyword_reward(completions: list[str], samples: list[dict]) -> list[float]:
    """1.0 for each completion that contains its sample's ``keyword``, else 0.0."""
    return [float(s.get("keyword", "") in c) for c, s in zip(completions, samples, strict=True)]
'''

TEST = '''\
"""The plugin loads through its entry point and its reward works."""

from rlcore.plugins import registry
from rlcore.plugins.manager import get_manager


def test_plugin_is_active():
    status = {{p.name: p.status for p in get_manager().plugins}}
    assert status.get("{name}") == "active", status


def test_reward_is_registered_and_scores():
    reward = registry.load("rewards", "{name}_keyword")
    assert reward(["the cat sat", "a dog"], [{{"keyword": "cat"}}, {{"keyword": "cat"}}]) == [1.0, 0.0]
'''

README = '''\
# rlcore-plugin-{name}

An [rlcore](https://pypi.org/project/rlcore/) plugin.

    pip install -e .
    rlcore list-plugins        # shows "{name}" as active
    rlcore list rewards        # shows {name}_keyword
    pytest tests

Add datasets, model families, interfaces, experiments, reward functions or
backends by implementing more `rlcore_*` hooks in `src/rlcore_plugin_{module}/__init__.py`
(see rlcore's docs/plugins.md and docs/hooks.md).
'''


def new_plugin(
    name: str = typer.Argument(..., help="Plugin name: lowercase letters, digits and '-', e.g. `demo`."),
    directory: Path = typer.Option(Path("."), "--dir", "-d", help="Parent directory for the new package."),
) -> None:
    """Create `rlcore-plugin-NAME/`, an installable plugin with a reward function and a passing test.

    Then: `pip install -e rlcore-plugin-NAME` and `rlcore list-plugins`.
    """
    if not re.fullmatch(r"[a-z][a-z0-9-]*", name):
        raise RlcoreError(f"plugin name {name!r} must start with a letter and use only a-z, 0-9 and '-'")
    module = name.replace("-", "_")
    root = directory / f"rlcore-plugin-{name}"
    if root.exists():
        raise RlcoreError(f"{root} already exists; choose another name or --dir")
    major, minor = (int(x) for x in rlcore.__version__.split(".")[:2])
    values = {
        "name": name,
        "module": module,
        "core_version": f"{major}.{minor}",
        "core_next": f"{major}.{minor + 1}" if major == 0 else f"{major + 1}",
    }
    files = {
        "pyproject.toml": PYPROJECT,
        "README.md": README,
        f"src/rlcore_plugin_{module}/__init__.py": INIT,
        f"src/rlcore_plugin_{module}/rewards.py": REWARDS,
        "tests/test_plugin.py": TEST,
    }
    for rel, template in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(**values))
    console.print(f"Created {root}/. Next:\n  pip install -e {root}\n  rlcore list-plugins\n  pytest {root}/tests")


def register(app: typer.Typer) -> None:
    """Attach this command to the root app."""
    app.command("new-plugin")(new_plugin)
