"""Helpers for the experiment tests: short runs on the embedded task, read back from metrics.jsonl."""

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

RLCORE = shutil.which("rlcore") or str(Path(sys.executable).parent / "rlcore")
QUICK = ["run.progress=false", "dataset.embedded_size=512"]


def read_metrics(run_dir: Path) -> list[dict]:
    """Every step's metrics, in order."""
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def series(rows: list[dict], key: str) -> list[float]:
    """One metric over the steps that logged it."""
    return [r[key] for r in rows if key in r]


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


@pytest.fixture
def cli_env():
    """Environment for subprocess runs: one thread per rank, no stray plugin settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RLCORE_PLUGINS_")}
    env.update(OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return env
