"""Find the code examples of the docs: fenced blocks and indented command blocks, with their markers.

A block may be preceded by a marker comment that tells the docs test what to do with it:

    <!-- docs-test: not run: REASON -->     python: compiled and its rlcore imports run, no more;
                                            shell: `rlcore` commands that train may appear
                                            (their config is still checked)
    <!-- docs-test: skip: REASON -->        shell: nothing in the block runs (it needs what the
                                            test lacks, e.g. your plugin installed)
    <!-- docs-test: no main: REASON -->     python: run, but not as ``__main__`` (skips the
                                            ``if __name__ == "__main__":`` part)
    <!-- docs-test: fails: REASON -->       shell: each `rlcore` command must fail (an error
                                            shown on purpose), checked with --print-config
    <!-- docs-test: synopsis: REASON -->    a signature listing, not code: neither compiled nor run
    <!-- docs-test: setup
    python lines run (hidden) before the block; before a shell block, in the folder its
    commands run in (to write the model directory or data file they read)
    -->

Python blocks of one page run in order in one namespace, as a reader would run them.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Where ``--8<-- "file"`` includes are looked up: mkdocs.yml's pymdownx.snippets base_path.
SNIPPET_BASES = (ROOT / "docs" / "examples", ROOT / "contrib", ROOT / "plugins")
DOC_FILES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])

_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>```+|~~~+)\s*(?P<lang>[\w+-]*)")
_MARKER = re.compile(r"<!--\s*docs-test:\s*(?P<body>.*?)\s*-->", re.S)
PYTHON = {"python", "py"}
SHELL = {"bash", "sh", "shell", "console"}
# First words of a line in an indented block that make it a command block.
_COMMANDS = {"rlcore", ".venv/bin/rlcore", "bash", "nox", "pip", "python", "torchrun", "."}


@dataclass
class Block:
    """One code block: where it is, its language, its code and its marker (if any)."""

    path: Path
    line: int  # 1-based line of the block's first code line
    lang: str
    code: str
    marker: str = ""  # the text after "docs-test:", e.g. "not run: trains for minutes"

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def kind(self) -> str:
        """``run`` or the marker's verb (``not run``, ``no main``, ``fails``, ...)."""
        for verb in ("not run", "skip", "no main", "fails", "synopsis", "setup"):
            if self.marker.startswith(verb):
                return verb
        return "run"

    @property
    def reason(self) -> str:
        return self.marker.partition(":")[2].strip()

    @property
    def setup_code(self) -> str:
        return self.marker[len("setup"):].strip("\n") if self.kind == "setup" else ""


def blocks(path: Path) -> list[Block]:
    """Every fenced block and every indented command block of a markdown file."""
    lines = path.read_text().splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if m:
            fence, start = m.group("fence"), i + 1
            i += 1
            while i < len(lines) and not lines[i].strip().startswith(fence):
                i += 1
            body = [ln[len(m.group("indent")):] for ln in lines[start:i]]
            out.append(Block(path, start + 1, m.group("lang").lower(), "\n".join(body) + "\n",
                             _marker_before(lines, start - 1)))
        elif lines[i].startswith("    ") and (i == 0 or not lines[i - 1].strip()) \
                and lines[i].split()[0] in _COMMANDS:
            start = i
            while i < len(lines) and (lines[i].startswith("    ") or not lines[i].strip()):
                i += 1
            body = [ln[4:] for ln in lines[start:i]]
            out.append(Block(path, start + 1, "sh", "\n".join(body).strip("\n") + "\n",
                             _marker_before(lines, start)))
            continue
        i += 1
    return out


def _marker_before(lines: list[str], index: int) -> str:
    """The docs-test marker that ends on the last non-blank line before ``lines[index]``."""
    j = index - 1
    while j >= 0 and not lines[j].strip():
        j -= 1
    if j < 0 or not lines[j].rstrip().endswith("-->"):
        return ""
    k = j
    while k >= 0 and "<!--" not in lines[k]:
        k -= 1
    m = _MARKER.search("\n".join(lines[k : j + 1]))
    return m.group("body") if m else ""


def snippet_includes(block: Block) -> list[str]:
    """Files a block includes with ``--8<-- "file"`` (pymdownx.snippets)."""
    return re.findall(r'^\s*--8<--\s+"([^"]+)"', block.code, re.M)


# ------------------------------------------------------------------ shell commands

# `rlcore` subcommands that are cheap enough to run for every docs build.
CHEAP = {"list-plugins", "list", "info", "show", "new-plugin", "--help", "--version"}
CHEAP_FLAGS = {"--print-config", "--dry-run", "--help"}


@dataclass
class Command:
    """One ``rlcore`` command of a shell block, with an optional ``> file`` redirect."""

    argv: list[str]  # after "rlcore"
    stdout_to: str | None = None
    shown: list[str] = field(default_factory=list)  # output lines the docs print after it

    @property
    def cheap(self) -> bool:
        return bool(self.argv) and (self.argv[0] in CHEAP or bool(CHEAP_FLAGS & set(self.argv)))

    def __str__(self) -> str:
        return shlex.join(["rlcore", *self.argv]) + (f" > {self.stdout_to}" if self.stdout_to else "")


def rlcore_commands(code: str) -> list[Command]:
    """The ``rlcore ...`` commands of a shell block (``$`` prompts, ``&&`` chains, ``>``
    redirects and trailing comments understood; pipes end a command)."""
    out: list[Command] = []
    prompted = False  # the last command was written as `$ rlcore ...`: output lines follow
    for raw in code.replace("\\\n", " ").splitlines():
        if prompted and raw.strip() and not raw.lstrip().startswith("$"):
            out[-1].shown.append(raw.strip())  # what the docs show the command printing
            continue
        prompted = raw.lstrip().startswith("$ ")
        line = raw.strip().removeprefix("$ ")
        if not line or line.startswith("#"):
            continue
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            continue
        for part in _split(words, "&&"):
            part = _split(part, "|")[0]
            while part and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", part[0]):
                part = part[1:]  # OMP_NUM_THREADS=1 rlcore ...
            if not part or part[0] not in ("rlcore", ".venv/bin/rlcore"):
                continue
            argv, target = part[1:], None
            if ">" in argv:
                k = argv.index(">")
                argv, target = argv[:k], argv[k + 1]
            out.append(Command(argv, target))
        prompted = prompted and bool(out) and len(words) > 0
    return out


def _split(words: list[str], sep: str) -> list[list[str]]:
    parts: list[list[str]] = [[]]
    for w in words:
        if w == sep:
            parts.append([])
        else:
            parts[-1].append(w)
    return parts
