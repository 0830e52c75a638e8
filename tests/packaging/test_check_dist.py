"""scripts/check_dist.py: declared package data exists, and an incomplete wheel is caught."""

import importlib.util
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("check_dist", ROOT / "scripts" / "check_dist.py")
check_dist = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_dist)


def test_every_package_is_found():
    names = {p.name for p in check_dist.package_dirs()}
    assert {ROOT.name, "rlcore-plugin-llama", "rlcore-plugin-algorithms", "rlcore-plugin-example"} <= names


def test_declared_package_data_exists_in_every_package():
    problems = [p for pkg in check_dist.package_dirs() for p in check_dist.missing_package_data(pkg)]
    assert problems == []


def test_core_sources_include_package_data():
    files = check_dist.source_files(ROOT)
    assert "rlcore/cli/app.py" in files and "rlcore/py.typed" in files
    assert not any("__pycache__" in f or ".egg-info" in f for f in files)


def make_wheel(path: Path, files: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return path


def test_wheel_lacking_a_file_or_an_entry_point_module_is_reported(tmp_path):
    entry_points = "[console_scripts]\ndemo = demo.cli:main\n\n[rlcore]\ndemo = demo_missing\n"
    wheel = make_wheel(tmp_path / "demo-0.1.0-py3-none-any.whl", {
        "demo/__init__.py": "", "demo/cli.py": "",
        "demo-0.1.0.dist-info/entry_points.txt": entry_points,
    })
    expected = {"demo/__init__.py": Path("src/demo/__init__.py"), "demo/cli.py": Path("src/demo/cli.py"),
                "demo/templates/plugin.toml": Path("src/demo/templates/plugin.toml")}
    problems = check_dist.wheel_problems(wheel, expected)
    assert len(problems) == 2, problems
    assert "lacks demo/templates/plugin.toml" in problems[0]
    assert "[rlcore] names module 'demo_missing'" in problems[1]


def test_complete_wheel_has_no_problems(tmp_path):
    wheel = make_wheel(tmp_path / "demo-0.1.0-py3-none-any.whl", {
        "demo/__init__.py": "", "demo-0.1.0.dist-info/entry_points.txt": "[rlcore]\ndemo = demo\n",
    })
    assert check_dist.wheel_problems(wheel, {"demo/__init__.py": Path("x")}) == []


def test_missing_wheel_and_sdist_are_reported(tmp_path):
    problems = check_dist.check_dist(tmp_path)
    assert any("no wheel rlcore-0.1.0" in p or "no wheel rlcore_plugin" in p for p in problems)
    assert any("no sdist rlcore-0.1.0.tar.gz" in p for p in problems)


def test_every_installed_family_package_lists_its_families(monkeypatch):
    """`rlcore list families` shows each family of every installed first-party package; a
    family missing from the listing is reported naming its package."""
    assert check_dist.check_families() == []
    real = check_dist.subprocess.run

    def without_gemma3(*args, **kwargs):
        done = real(*args, **kwargs)
        done.stdout = done.stdout.replace("│ gemma3 ", "│ gemma9 ")
        return done

    monkeypatch.setattr(check_dist.subprocess, "run", without_gemma3)
    problems = check_dist.check_families()
    assert problems and all(p.startswith("rlcore-plugin-gemma: `rlcore list families` does not "
                                         "show gemma3") for p in problems), problems
