"""API 1's attribute names still answer, each warning once with its new name."""

import warnings

import pytest
import torch

from rlcore import compat
from rlcore.api.module import Module
from rlcore.errors import RenamedAttributeWarning
from rlcore.runtime.interface import ModelHandle


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    monkeypatch.setattr(compat, "_warned", set())


def accesses(get, times=3):
    """The values ``get`` returns ``times`` times, and the messages of the warnings it raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        values = [get() for _ in range(times)]
    return values, [str(w.message) for w in caught if w.category is RenamedAttributeWarning]


def test_model_handle_engine_is_model():
    wrapped = object()
    handle = ModelHandle("actor", torch.nn.Linear(2, 2), wrapped)
    values, messages = accesses(lambda: handle.engine)
    assert all(v is wrapped for v in values)
    assert messages == ["ModelHandle.engine was renamed ModelHandle.model in plugin API 2; use "
                        "ModelHandle.model (the old name still works for now and goes away in "
                        "a later release)"]


class Scorer(Module):
    def setup(self):
        self.model = torch.nn.Linear(2, 1)


def test_module_engine_is_wrapped_model():
    module = Scorer("scorer")
    values, messages = accesses(lambda: module.engine)
    assert all(v is module.wrapped_model for v in values)
    assert len(messages) == 1 and messages[0].startswith(
        "Module.engine was renamed Module.wrapped_model in plugin API 2")
