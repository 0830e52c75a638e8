"""Fixtures for the experiment tests."""

import os
import sys
from pathlib import Path

import pytest

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:  # --import-mode=importlib: let test modules share helpers
    sys.path.insert(0, HERE)

DISTRIBUTED_VARS = {"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"}


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Tiny models on shared cores: one torch thread (fixture from rlcore.testing)."""


@pytest.fixture
def cli_env():
    """Environment for subprocess runs: one thread per rank, no stray plugin settings, and
    none of the process-group variables that an in-process run of this session has set."""
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith("RLCORE_PLUGINS_") and k not in DISTRIBUTED_VARS
    }
    env.update(OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return env


@pytest.fixture(scope="session")
def warm_start(tmp_path_factory):
    """The default RL warm start, trained once per session and copied into each run dir."""
    from rl_runs import build_warm_start

    return build_warm_start(tmp_path_factory.mktemp("rl-warm"))
