"""Fixtures of the RAFT tests."""

import pytest


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Tiny models on shared cores: one torch thread (fixture from rlcore.testing)."""
