"""The author SDK: every name it offers resolves, lazily, and the packages under plugins/ and
contrib/ reach the core only through rlcore, rlcore.sdk, rlcore.plugins.records and
rlcore.testing (so the core can move its internals without breaking them)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import rlcore.sdk

ROOT = Path(__file__).resolve().parents[1]
ALLOWED = {"rlcore", "rlcore.sdk", "rlcore.plugins.records", "rlcore.testing"}
PACKAGES = sorted(p for area in ("plugins", "contrib") for p in (ROOT / area).glob("*/src"))


def core_imports(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every ``rlcore...`` module a file imports."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, a.name) for a in node.names)
    return [(line, m) for line, m in found if m == "rlcore" or m.startswith("rlcore.")]


def allowed(module: str) -> bool:
    return any(module == a or module.startswith(a + ".") for a in ALLOWED - {"rlcore"}) \
        or module == "rlcore"


@pytest.mark.parametrize("src", PACKAGES, ids=lambda p: p.parent.name)
def test_plugins_import_the_core_only_through_the_sdk(src):
    bad = [f"{f.relative_to(ROOT)}:{line}: {m}" for f in sorted(src.rglob("*.py"))
           for line, m in core_imports(f) if not allowed(m)]
    assert not bad, "import these names from rlcore.sdk instead:\n" + "\n".join(bad)


def test_the_imports_plugins_use(capsys):
    """Report which SDK names the shipped packages use (pytest -s shows it)."""
    used: dict[str, set[str]] = {}
    for src in PACKAGES:
        for f in src.rglob("*.py"):
            for node in ast.walk(ast.parse(f.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module and allowed(node.module):
                    for a in node.names:
                        used.setdefault(f"{node.module}.{a.name}", set()).add(src.parent.name)
    assert {n.split(".")[-1] for n in used if n.startswith("rlcore.sdk.")} <= set(rlcore.sdk.__all__)
    print("\n".join(f"{name}: {len(pkgs)}" for name, pkgs in sorted(used.items())))


def test_every_sdk_name_resolves_and_none_imports_torch_early():
    for name in rlcore.sdk.__all__:
        assert getattr(rlcore.sdk, name) is not None, name
    with pytest.raises(AttributeError, match="rlcore.sdk has no 'Nope'"):
        rlcore.sdk.Nope  # noqa: B018
    code = "import sys; from rlcore.sdk import RunOptions, MFC, RlcoreError; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
