"""Fixtures for the experiment tests."""

import os

import pytest


@pytest.fixture
def cli_env():
    """Environment for subprocess runs: one thread per rank, no stray plugin settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RLCORE_PLUGINS_")}
    env.update(OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return env
