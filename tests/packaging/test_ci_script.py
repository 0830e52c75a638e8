""".ci/run runs the README's test command and the wheel path; a failure of either fails CI, named."""

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

FAKE = """#!/usr/bin/env bash
# Stands in for .venv/bin/{name}: records its arguments, prints a line, exits with ${var}.
echo "{name} $*" >> calls.txt
echo "{name} output line"
exit "${{{var}:-0}}"
"""


def run_ci(tmp_path: Path, tests_rc: int = 0, wheels_rc: int = 0) -> subprocess.CompletedProcess:
    """Run a copy of .ci/run in a tree whose setup.sh, python and nox are fakes."""
    (tmp_path / ".ci").mkdir()
    shutil.copy(ROOT / ".ci" / "run", tmp_path / ".ci" / "run")
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "setup.sh").write_text("echo setup >> calls.txt\n")
    bin_ = tmp_path / ".venv" / "bin"
    bin_.mkdir(parents=True)
    for name, var in (("python", "TESTS_RC"), ("nox", "WHEELS_RC")):
        (bin_ / name).write_text(FAKE.format(name=name, var=var))
        (bin_ / name).chmod(0o755)
    env = {**os.environ, "TESTS_RC": str(tests_rc), "WHEELS_RC": str(wheels_rc)}
    return subprocess.run(["bash", ".ci/run"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)


def test_ci_runs_the_readme_command_and_the_wheel_path(tmp_path):
    result = run_ci(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    calls = (tmp_path / "calls.txt").read_text().splitlines()
    assert calls[0] == "setup"
    readme = (ROOT / "README.md").read_text()
    command = "python -m pytest -q -n 2 --dist loadfile"
    assert f"bash scripts/setup.sh && .venv/bin/{command}" in readme  # the README's command
    assert command in calls
    assert 'nox -s build wheels -- -q -m not slow' in calls


def test_a_failed_wheel_path_fails_ci_and_shows_its_log(tmp_path):
    result = run_ci(tmp_path, wheels_rc=3)
    assert result.returncode != 0
    assert "CI FAILED: the wheel path (nox -s build wheels) exited 3" in result.stderr
    assert "nox output line" in result.stdout  # the end of its log


def test_failed_readme_tests_fail_ci(tmp_path):
    result = run_ci(tmp_path, tests_rc=1)
    assert result.returncode != 0
    assert "CI FAILED: the README's tests" in result.stderr
