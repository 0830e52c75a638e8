"""Nox sessions: core tests, each plugin alone, all plugins together, each contrib package,
wheels, lint and docs.

Every session installs CPU torch first (an unpinned torch would pull a CUDA build).
Run `nox -l` to list them, e.g. `nox -s "plugin(name='rlcore-plugin-llama')"`.
`nox -s build` writes a wheel and an sdist of every package into dist/;
`nox -s wheels` installs those (not editable) into a fresh venv and tests them; CI (.ci/run)
runs `nox -s build wheels -- -m "not slow"` beside the README's tests.
"""

import re
import shutil
import tomllib
from pathlib import Path

import nox

ROOT = Path(__file__).parent
DIST = ROOT / "dist"
# Every package directory: the core (the repo root), then each plugins/* and contrib/* with a pyproject.
PACKAGE_DIRS = [ROOT] + sorted(p.parent for area in ("plugins", "contrib")
                               for p in (ROOT / area).glob("*/pyproject.toml"))
PLUGIN_DIRS = {p.name: p for p in PACKAGE_DIRS[1:]}
PLUGINS = sorted(p.name for p in PACKAGE_DIRS[1:] if p.parent.name == "plugins")
CONTRIB = sorted(p.name for p in PACKAGE_DIRS[1:] if p.parent.name == "contrib")
TORCH = "torch==2.13.0"

nox.options.sessions = ["tests", "plugin", "all_plugins", "contrib", "lint", "docs"]
nox.options.reuse_existing_virtualenvs = True


def requirement_names(requirements: list[str]) -> list[str]:
    """The distribution names in PEP 508 requirement strings."""
    return [re.split(r"[<>=!~ \[;]", r, maxsplit=1)[0] for r in requirements]


def first_party_needs(plugin: str) -> list[str]:
    """The plugin and every first-party package that it, its tests, or those packages depend on."""
    found: dict[str, None] = {}

    def visit(name: str, extras: tuple[str, ...]) -> None:
        if name in found:  # families and the algorithms plugin need each other (tests)
            return
        found[name] = None
        project = tomllib.loads((PLUGIN_DIRS[name] / "pyproject.toml").read_text())["project"]
        reqs = project.get("dependencies", []) + [
            r for e in extras for r in project.get("optional-dependencies", {}).get(e, [])]
        for dep in requirement_names(reqs):
            if dep in PLUGIN_DIRS:
                visit(dep, ())

    visit(plugin, ("test",))
    return list(found)


def install(session: nox.Session, *plugins: str) -> None:
    """CPU torch, then the core with test extras, then the given plugins and their first-party needs."""
    session.install(TORCH)
    session.install("-e", ".[test]")
    needed = dict.fromkeys(p for plugin in plugins for p in first_party_needs(plugin))
    session.install("--no-deps", *(a for p in needed for a in ("-e", str(PLUGIN_DIRS[p]))))


@nox.session(python="3.11")
def tests(session: nox.Session) -> None:
    """Core and integration tests, with the first-party plugins installed."""
    install(session, *PLUGINS)
    session.run("pytest", "tests", *session.posargs)


@nox.session(python="3.11")
@nox.parametrize("name", sorted(n for n, p in PLUGIN_DIRS.items() if (p / "tests").is_dir()))
def plugin(session: nox.Session, name: str) -> None:
    """One package's own tests (plugins/ or contrib/), with only the core and its dependencies."""
    install(session, name)
    session.run("pytest", str(PLUGIN_DIRS[name] / "tests"), *session.posargs)


@nox.session(python="3.11")
def plot(session: nox.Session) -> None:
    """`rlcore plot` and a run's curves.png with matplotlib (rlcore[plot]), which the other
    sessions and scripts/setup.sh leave out: they get the text chart, and runs skip the PNG."""
    install(session, *PLUGINS)
    session.install("-e", ".[plot]")
    session.run("pytest", "tests/cli/test_plot_cmd.py", *session.posargs)


@nox.session(python="3.11")
def all_plugins(session: nox.Session) -> None:
    """All plugins installed together against the core tests and every plugin's tests."""
    install(session, *PLUGINS)
    session.run("rlcore", "list-plugins")
    session.run("pytest", "tests", "plugins", *session.posargs)


@nox.session(python="3.11")
def build(session: nox.Session) -> None:
    """A wheel and an sdist of every package into a clean dist/, then check them against the tree."""
    session.install("build>=1", "setuptools>=77")
    shutil.rmtree(DIST, ignore_errors=True)
    for pkg in PACKAGE_DIRS:  # the wheel is built from the sdist, so both are checked
        session.run("python", "-m", "build", "--no-isolation", "--outdir", str(DIST), str(pkg))
    session.run("python", "scripts/check_dist.py", str(DIST))


@nox.session(python="3.11", reuse_venv=False)
def wheels(session: nox.Session) -> None:
    """dist/'s wheels, not editable, in a fresh venv: a user's install path, then the plugins' tests.

    First-party packages come from dist/ (`--find-links`), third-party ones from the index.
    """
    names = [tomllib.loads((p / "pyproject.toml").read_text())["project"]["name"] for p in PACKAGE_DIRS]
    if not all(any(DIST.glob(f"{re.sub(r'[-_.]+', '_', n)}-*.whl")) for n in names):
        session.error("dist/ lacks a wheel of some package; run `nox -s build` first")
    # DeepSpeed's JIT ops of this venv, kept apart from the dev venv's (same name, other sources)
    session.env["TORCH_EXTENSIONS_DIR"] = str(Path(session.virtualenv.location) / "torch_extensions")
    session.install(TORCH)
    user_install(session)
    session.install("--find-links", str(DIST), "rlcore[test]", *(f"{n}[test]" for n in names[1:]))
    session.run("python", "scripts/check_dist.py", "--installed")
    session.run("rlcore", "list-plugins")
    tests = [str(p / "tests") for p in PACKAGE_DIRS[1:] if (p / "tests").is_dir()]
    session.run("pytest", *tests, *session.posargs)


def user_install(session: nox.Session) -> None:
    """`pip install rlcore` alone says what to add; `pip install rlcore-plugin-llama` then trains
    every standard experiment on a local Llama directory saved by transformers."""
    session.install("--find-links", str(DIST), "rlcore")
    missing = session.run("rlcore", "train", "ppo", success_codes=[2], silent=True) or ""
    if "pip install rlcore-plugin-llama" not in missing:
        session.error(f"`rlcore train ppo` with rlcore alone does not say what to install:\n{missing}")
    session.install("--find-links", str(DIST), "rlcore-plugin-llama")
    session.run("rlcore", "list-plugins")
    tmp = Path(session.create_tmp()).resolve()
    shutil.rmtree(tmp / "runs", ignore_errors=True)  # train from scratch, never resume
    session.run("python", "scripts/tiny_llama.py", str(tmp / "llama"))
    for experiment in ("sft", "rm", "dpo", "ppo", "grpo"):
        session.run("rlcore", "train", experiment, "--set", f"actor.path={tmp / 'llama'}",
                    "--profile", "tiny", "--set", "run.max_steps=2",  # a tiny Llama: tiny values "--run-dir", str(tmp / "runs" / experiment),
                    env={"OMP_NUM_THREADS": "1"})


@nox.session(python="3.11")
@nox.parametrize("name", CONTRIB)
def contrib(session: nox.Session, name: str) -> None:
    """One contrib package's tests, installed like a third-party package next to every plugin."""
    install(session, *PLUGINS)
    project = tomllib.loads((PLUGIN_DIRS[name] / "pyproject.toml").read_text())["project"]
    third_party = [r for r, n in zip(project.get("dependencies", []),
                                     requirement_names(project.get("dependencies", [])), strict=True)
                   if n != "rlcore" and n not in PLUGIN_DIRS]  # e.g. the http agent's httpx
    if third_party:
        session.install(*third_party)
    session.install("--no-deps", "-e", f"contrib/{name}")
    session.run("pytest", f"contrib/{name}/tests", *session.posargs)


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """ruff over the whole tree."""
    session.install("ruff>=0.5")
    session.run("ruff", "check", ".")


@nox.session(python="3.11")
def docs(session: nox.Session) -> None:
    """Check the generated references, build the site with --strict, and run every docs example."""
    install(session, *PLUGINS)
    session.install("--no-deps", "-e", "contrib/rlcore-contrib-raft")  # the new-dataflow guide runs it
    session.install("--no-deps", "-e", "contrib/rlcore-contrib-units")  # docs/plugins.md shows it
    session.install("mkdocs-material>=9.5", "mkdocstrings[python]>=0.26")
    session.run("python", "scripts/gen_docs.py", "--check")
    session.run("mkdocs", "build", "--strict", "--site-dir", f"{session.create_tmp()}/site")
    session.run("pytest", "tests/docs", "--deselect",  # the strict build just ran
                "tests/docs/test_docs_examples.py::test_mkdocs_build_strict", *session.posargs)
