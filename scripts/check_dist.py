"""Check built and installed packages against the source tree (run by `nox -s build` / `wheels`).

    python scripts/check_dist.py dist/          # wheels + sdists of every package are complete
    python scripts/check_dist.py --installed    # entry points load from site-packages, not the tree,
                                                # and `rlcore list families` shows each family

A wheel is complete when it holds every tracked file of its package sources, every
declared package-data pattern matches a file, and every entry point names a module in it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKIP = re.compile(r"(^|/)(__pycache__/|[^/]*\.egg-info/)|\.py[co]$")


def package_dirs(root: Path = ROOT) -> list[Path]:
    """The core (the repo root), then every plugins/* and contrib/* directory with a pyproject."""
    return [root] + sorted(p.parent for area in ("plugins", "contrib")
                           for p in (root / area).glob("*/pyproject.toml"))


def dist_stem(name: str) -> str:
    """How a distribution name starts its wheel and sdist file names (PEP 427/625)."""
    return re.sub(r"[-_.]+", "_", name).lower()


def source_files(pkg: Path) -> dict[str, Path]:
    """Wheel path -> source file, for every file git tracks under the package's source root."""
    meta = tomllib.loads((pkg / "pyproject.toml").read_text())
    where = meta.get("tool", {}).get("setuptools", {}).get("packages", {}).get("find", {}).get("where", ["."])
    files = {}
    for base in (pkg / w for w in where):
        tracked = subprocess.run(["git", "ls-files", "-z", "--", "."], cwd=base, check=True,
                                 capture_output=True, text=True).stdout.split("\0")
        for rel in filter(None, tracked):
            if "/" in rel and not SKIP.search(rel) and (base / rel).is_file():
                files[rel] = base / rel
    return files


def missing_package_data(pkg: Path) -> list[str]:
    """Declared ``[tool.setuptools.package-data]`` patterns that match no file."""
    meta = tomllib.loads((pkg / "pyproject.toml").read_text())
    declared = meta.get("tool", {}).get("setuptools", {}).get("package-data", {})
    where = meta.get("tool", {}).get("setuptools", {}).get("packages", {}).get("find", {}).get("where", ["."])
    problems = []
    for package, patterns in declared.items():
        roots = [pkg / w / package.replace(".", "/") for w in where]
        for pattern in patterns:
            if not any(f.is_file() for r in roots for f in r.glob(pattern)):
                problems.append(f"{pkg / 'pyproject.toml'}: [tool.setuptools.package-data] {package} = "
                                f"{pattern!r} matches no file under {', '.join(map(str, roots))}")
    return problems


def entry_point_modules(entry_points_txt: str) -> list[tuple[str, str]]:
    """``(group, module)`` of every entry point in an ``entry_points.txt``."""
    group, found = "", []
    for line in entry_points_txt.splitlines():
        line = line.strip()
        if line.startswith("["):
            group = line.strip("[]")
        elif "=" in line:
            found.append((group, line.split("=", 1)[1].strip().split(":")[0]))
    return found


def wheel_problems(wheel: Path, expected: dict[str, Path]) -> list[str]:
    """Source files missing from the wheel, and entry points whose module the wheel lacks."""
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        eps = next((zf.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt")), "")
    problems = [f"{wheel.name}: lacks {rel} (source: {src})" for rel, src in sorted(expected.items())
                if rel not in names]
    for group, module in entry_point_modules(eps):
        path = module.replace(".", "/")
        if f"{path}.py" not in names and f"{path}/__init__.py" not in names:
            problems.append(f"{wheel.name}: entry point [{group}] names module {module!r}, not in the wheel")
    return problems


def check_dist(dist: Path, root: Path = ROOT) -> list[str]:
    """Everything wrong with dist/: missing wheels or sdists, missing files, broken entry points."""
    problems = []
    for pkg in package_dirs(root):
        meta = tomllib.loads((pkg / "pyproject.toml").read_text())["project"]
        stem = f"{dist_stem(meta['name'])}-{meta['version']}"
        problems += missing_package_data(pkg)
        if not (dist / f"{stem}.tar.gz").is_file():
            problems.append(f"{dist}: no sdist {stem}.tar.gz for {pkg}")
        wheels = sorted(w for w in dist.glob(f"{stem}-*.whl") if w.name.count("-") == 4)
        if not wheels:
            problems.append(f"{dist}: no wheel {stem}-*.whl for {pkg}")
        for wheel in wheels:
            problems += wheel_problems(wheel, source_files(pkg))
    return problems


def check_installed() -> list[str]:
    """Entry points of installed rlcore distributions that fail to import or import from outside
    site-packages (an editable install or the source tree on sys.path)."""
    from importlib import import_module
    from importlib.metadata import distributions

    problems = []
    for dist in distributions():
        name = dist.metadata["Name"] or ""
        if not (name == "rlcore" or name.startswith("rlcore-plugin-")):
            continue
        for ep in dist.entry_points:
            module = ep.value.split(":")[0]
            try:
                file = Path(import_module(module).__file__ or "").resolve()
            except Exception as err:  # report every broken entry point, not just the first
                problems.append(f"{name}: entry point {ep.group}:{ep.name} = {ep.value} fails: {err!r}")
                continue
            if "site-packages" not in file.parts:
                problems.append(f"{name}: {module} loads from {file}, not from an installed package")
    return problems


def check_families() -> list[str]:
    """Each family that ``rlcore.first_party`` says an installed package provides is registered
    by that package and shown by ``rlcore list families`` (a name or an HF model_type it reads)."""
    from importlib.metadata import PackageNotFoundError, distribution

    from rlcore.first_party import FAMILY_PACKAGES
    from rlcore.plugins.manager import get_manager

    manager = get_manager()
    entries = {n: manager.entry("families", n) for n in manager.registries["families"]}
    by_type = {t: n for n, e in entries.items() for t in e.record.hf_model_types}
    rlcore = str(Path(sys.executable).parent / "rlcore")
    shown = subprocess.run([rlcore, "list", "families"], capture_output=True, text=True,
                           env={**os.environ, "COLUMNS": "200"}).stdout
    problems = []
    for dist, names in FAMILY_PACKAGES.items():
        try:
            distribution(dist)
        except PackageNotFoundError:
            continue
        for name in names:
            family = name if name in entries else by_type.get(name)
            if family is None or entries[family].plugin.dist != dist:
                problems.append(f"{dist}: installed, but family {name} is not registered by it")
            elif f"│ {family} " not in shown:
                problems.append(f"{dist}: `rlcore list families` does not show {family}")
    return problems


def main(argv: list[str]) -> int:
    """Print each problem; exit 1 if there is any."""
    installed = argv == ["--installed"]
    if not installed and len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    problems = check_installed() + check_families() if installed else check_dist(Path(argv[0]))
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"check_dist: {len(problems)} problem(s)", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
