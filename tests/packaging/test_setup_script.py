"""scripts/setup.sh stops on a failed pip install and shows pip's error, but hides pip's harmless noise."""

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

FAKE_PYTHON = """#!/usr/bin/env bash
# Stands in for .venv/bin/python: torch imports, the final check prints READY,
# and pip prints what PIP_OUT says and exits with PIP_RC.
if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then printf '%b' "$PIP_OUT"; exit "$PIP_RC"; fi
if [ "$1" = "-c" ]; then case "$2" in *ready*) echo "READY" ;; esac; exit 0; fi
exit 3
"""


def run_setup(tmp_path: Path, pip_out: str, pip_rc: int) -> subprocess.CompletedProcess:
    """Run a copy of setup.sh in a tree whose .venv/bin/python is a fake with a scripted pip."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "setup.sh", tmp_path / "scripts" / "setup.sh")
    (tmp_path / "plugins" / "rlcore-plugin-x").mkdir(parents=True)
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    env = {**os.environ, "PIP_OUT": pip_out, "PIP_RC": str(pip_rc)}
    return subprocess.run(["bash", "scripts/setup.sh"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)


def test_failed_install_stops_setup_with_pips_error(tmp_path):
    result = run_setup(tmp_path, "ERROR: No matching distribution found for nosuchpkg\\n", 1)
    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    assert "No matching distribution found for nosuchpkg" in out
    assert "'pip install -e .[dev]" in out  # says which install failed
    assert "READY" not in result.stdout  # the final readiness check never ran


def test_successful_install_hides_location_warning(tmp_path):
    result = run_setup(tmp_path, "WARNING: Location 'x' is ignored\\nkept line\\n", 0)
    assert result.returncode == 0, result.stderr
    assert "kept line" in result.stdout
    assert "WARNING: Location" not in result.stdout + result.stderr
    assert result.stdout.rstrip().endswith("READY")
