"""Nox sessions: core tests, each plugin alone, all plugins together, each contrib package,
lint and docs.

Every session installs CPU torch first (an unpinned torch would pull a CUDA build).
Run `nox -l` to list them, e.g. `nox -s "plugin(name='rlcore-plugin-llama')"`.
"""

import re
import tomllib
from pathlib import Path

import nox

ROOT = Path(__file__).parent
PLUGINS = sorted(p.name for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").is_file())
CONTRIB = sorted(p.name for p in (ROOT / "contrib").iterdir() if (p / "pyproject.toml").is_file())
TORCH = "torch==2.13.0"

nox.options.sessions = ["tests", "plugin", "all_plugins", "contrib", "lint", "docs"]
nox.options.reuse_existing_virtualenvs = True


def first_party_needs(plugin: str) -> list[str]:
    """The plugin and the first-party plugins it depends on, dependencies first."""
    meta = tomllib.loads((ROOT / "plugins" / plugin / "pyproject.toml").read_text())
    needs = [re.split(r"[<>=!~ \[;]", d, maxsplit=1)[0] for d in meta["project"].get("dependencies", [])]
    found = [n for n in needs if n in PLUGINS]
    return [p for dep in found for p in first_party_needs(dep)] + [plugin]


def install(session: nox.Session, *plugins: str) -> None:
    """CPU torch, then the core with test extras, then the given plugins and their first-party needs."""
    session.install(TORCH)
    session.install("-e", ".[test]")
    ordered = dict.fromkeys(p for plugin in plugins for p in first_party_needs(plugin))
    for plugin in ordered:
        session.install("--no-deps", "-e", f"plugins/{plugin}")


@nox.session(python="3.11")
def tests(session: nox.Session) -> None:
    """Core and integration tests, with the first-party plugins installed."""
    install(session, *PLUGINS)
    session.run("pytest", "tests", *session.posargs)


@nox.session(python="3.11")
@nox.parametrize("name", PLUGINS)
def plugin(session: nox.Session, name: str) -> None:
    """One plugin's own tests, with only the core (and that plugin's dependencies) installed."""
    install(session, name)
    session.run("pytest", f"plugins/{name}/tests", *session.posargs)


@nox.session(python="3.11")
def all_plugins(session: nox.Session) -> None:
    """All plugins installed together against the core tests and every plugin's tests."""
    install(session, *PLUGINS)
    session.run("rlcore", "list-plugins")
    session.run("pytest", "tests", "plugins", *session.posargs)


@nox.session(python="3.11")
@nox.parametrize("name", CONTRIB)
def contrib(session: nox.Session, name: str) -> None:
    """One contrib package's tests, installed like a third-party package next to every plugin."""
    install(session, *PLUGINS)
    session.install("--no-deps", "-e", f"contrib/{name}")
    session.run("pytest", f"contrib/{name}/tests", *session.posargs)


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """ruff over the whole tree."""
    session.install("ruff>=0.5")
    session.run("ruff", "check", ".")


@nox.session(python="3.11")
def docs(session: nox.Session) -> None:
    """Regenerate the hook and CLI references and fail if docs/ is out of date."""
    install(session, *PLUGINS)
    session.run("python", "scripts/gen_docs.py", "--check")
