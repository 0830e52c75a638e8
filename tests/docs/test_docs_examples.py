"""Every code example in README.md and docs/ runs, so no example can name what does not exist.

- python blocks of each page run in order in one process (``run_page.py``);
- ``rlcore`` commands in shell blocks run when cheap (list, info, show, ``--print-config``,
  ...); a command that trains must sit in a block marked ``<!-- docs-test: not run: why -->``,
  and even then its config (``--set`` keys, ``--config`` file) is checked with
  ``--print-config``; commands shown failing (``fails``) must fail, without a traceback;
  a block marked ``skip`` (it needs your installed plugin) runs nothing;
- the guides' examples under docs/examples/ run as scripts (and their tests under pytest);
- ``mkdocs build --strict`` succeeds when mkdocs is installed (the ``dev`` extra).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from doc_blocks import (
    DOC_FILES,
    PYTHON,
    ROOT,
    SHELL,
    SNIPPET_BASES,
    blocks,
    rlcore_commands,
    snippet_includes,
)

HERE = Path(__file__).resolve().parent
EXAMPLES = ROOT / "docs" / "examples"
RLCORE = str(Path(sys.executable).parent / "rlcore")
ALL_BLOCKS = [b for path in DOC_FILES for b in blocks(path)]


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(EXAMPLES), env.get("PYTHONPATH")]))
    return env


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _check(proc: subprocess.CompletedProcess, what: str) -> None:
    if proc.returncode != 0:
        pytest.fail(f"{what} failed (exit {proc.returncode}):\n{(proc.stdout or '')[-4000:]}"
                    f"\n{(proc.stderr or '')[-4000:]}", pytrace=False)


PY_PAGES = sorted({b.path for b in ALL_BLOCKS if b.lang in PYTHON and b.kind != "synopsis"})
SHELL_PAGES = sorted({b.path for b in ALL_BLOCKS if rlcore_commands(b.code)})


@pytest.mark.parametrize("page", PY_PAGES, ids=_rel)
def test_python_examples_run(page: Path, tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(HERE / "run_page.py"), str(page)], cwd=tmp_path,
                          env=_env(), capture_output=True, text=True, timeout=600)
    _check(proc, f"python examples of {_rel(page)}")


@pytest.mark.parametrize("page", SHELL_PAGES, ids=_rel)
def test_rlcore_commands_run(page: Path, tmp_path: Path) -> None:
    """Cheap commands run; training commands need a `not run` marker and get their config checked."""
    for block in blocks(page):
        if block.kind == "skip":
            continue
        if block.setup_code:  # files the block's commands read (a model directory, data)
            _check(subprocess.run([sys.executable, "-c", block.setup_code], cwd=tmp_path,
                                  env=_env(), capture_output=True, text=True, timeout=300),
                   f"{block.where}: its docs-test setup")
        for cmd in rlcore_commands(block.code):
            argv = cmd.argv
            if block.kind == "fails":
                argv = argv if cmd.cheap or argv[:1] != ["train"] else [*argv, "--print-config"]
                proc = subprocess.run([RLCORE, *argv], cwd=tmp_path, env=_env(),
                                      capture_output=True, text=True, timeout=300)
                assert proc.returncode != 0, f"{block.where}: `{cmd}` was shown failing but ran"
                assert "Traceback" not in proc.stderr, f"{block.where}: `{cmd}`: {proc.stderr}"
                printed = " ".join((proc.stdout + proc.stderr).split())
                for line in cmd.shown:
                    assert " ".join(line.split()) in printed, (
                        f"{block.where}: `{cmd}` no longer prints what the docs show:\n"
                        f"  docs:   {line}\n  prints: {printed}")
                continue
            if not cmd.cheap:
                if block.kind != "not run":
                    pytest.fail(f"{block.where}: `{cmd}` is too slow for the docs test; put "
                                "`<!-- docs-test: not run: REASON -->` before its block",
                                pytrace=False)
                if argv[:1] != ["train"] or _missing_config_file(argv, tmp_path):
                    continue
                argv = [*argv, "--print-config"]
            proc = subprocess.run([RLCORE, *argv], cwd=tmp_path, env=_env(), capture_output=True,
                                  text=True, timeout=300)
            _check(proc, f"{block.where}: `rlcore {' '.join(argv)}`")
            if cmd.stdout_to:
                (tmp_path / cmd.stdout_to).write_text(proc.stdout)


def _missing_config_file(argv: list[str], cwd: Path) -> bool:
    """True when the command reads a ``--config`` file that the reader supplies (``my.yaml``)."""
    return "--config" in argv and not (cwd / argv[argv.index("--config") + 1]).is_file()


def test_markers_name_a_reason_and_a_block() -> None:
    bad = [b.where for b in ALL_BLOCKS
           if b.kind in ("not run", "skip", "no main", "fails", "synopsis") and not b.reason]
    assert not bad, f"docs-test markers without a reason: {bad}"
    marked = sum(1 for b in ALL_BLOCKS if b.marker)
    written = sum(p.read_text().count("<!-- docs-test:") for p in DOC_FILES)
    assert marked == written, "a docs-test marker is not directly followed by a code block"


def test_shell_blocks_with_python_are_python() -> None:
    """A block tagged as a shell language holds commands, never a python example."""
    bad = [b.where for b in ALL_BLOCKS if b.lang in SHELL and b.code.lstrip().startswith(
        ("import ", "from ", "def ", "class "))]
    assert not bad, f"python code in shell blocks: {bad}"


def test_snippets_name_existing_examples() -> None:
    included = [(b, name) for b in ALL_BLOCKS for name in snippet_includes(b)]
    assert included, "the guides include their examples with --8<--"
    bases = ", ".join(str(p.relative_to(ROOT)) for p in SNIPPET_BASES)
    assert f"base_path: [{bases}]" in (ROOT / "mkdocs.yml").read_text(), \
        f"mkdocs.yml's snippets base_path is not [{bases}] (doc_blocks.SNIPPET_BASES)"
    missing = []
    for block, name in included:
        file, _, section = name.partition(":")
        path = next((base / file for base in SNIPPET_BASES if (base / file).is_file()), None)
        if path is None or (section and f"--8<-- [start:{section}]" not in path.read_text()):
            missing.append(f"{block.where}: {name}")
    assert not missing, f"snippets name missing files or sections: {missing}"


EXAMPLE_SCRIPTS = sorted(p for p in EXAMPLES.glob("*.py")
                         if not p.name.startswith("test_") and p.name != "conftest.py")
EXAMPLE_TESTS = sorted(EXAMPLES.glob("test_*.py"))


@pytest.mark.parametrize("script", EXAMPLE_SCRIPTS, ids=lambda p: p.name)
def test_guide_example_runs(script: Path, tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=_env(),
                          capture_output=True, text=True, timeout=600)
    _check(proc, f"python {_rel(script)}")


@pytest.mark.parametrize("test_file", EXAMPLE_TESTS, ids=lambda p: p.name)
def test_guide_example_tests_pass(test_file: Path, tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "--rootdir", str(EXAMPLES), str(test_file)], cwd=tmp_path, env=_env(),
                          capture_output=True, text=True, timeout=600)
    _check(proc, f"pytest {_rel(test_file)}")


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs", reason="mkdocs is in the dev extra")
    pytest.importorskip("mkdocstrings", reason="mkdocstrings is in the dev extra")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                           str(tmp_path / "site")], cwd=ROOT, env=_env(), capture_output=True,
                          text=True, timeout=600)
    _check(proc, "mkdocs build --strict")
    for page in ("index.html", "reference/config/sft/index.html", "reference/api/batch/index.html",
                 "guides/new-family/index.html"):
        assert (tmp_path / "site" / page).is_file(), page
    assert "split_balanced" in (tmp_path / "site/reference/api/batch/index.html").read_text()
