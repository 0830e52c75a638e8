"""Make the test modules here importable (``api_modules``, ``api_experiment``), and run
these tests' torch ops on one thread: tiny models gain nothing from more, and on a
shared machine oversubscribed threads make each step 10-50x slower."""

import sys
from pathlib import Path

import pytest

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)


@pytest.fixture(autouse=True)
def one_torch_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
