"""The Python API in ChatLearn's style, over rlcore's own runtime (see docs/python-api.md).

    import rlcore
    from rlcore.api import Engine, Evaluator, Module

    rlcore.init()
    engine = Engine(policy, reference, trainer, flow=flow, max_steps=100)
    engine.set_dataset(items)
    summary = engine.learn()

``RLHFEngine(policy, reference, reward, value, ppo_policy, ppo_value)`` is ChatLearn's
PPO engine: a fixed flow over six modules, the frozen copies synced after every step.

Importing this package does not import torch; the engine loads it when it runs.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "init": "rlcore.api.context",
    "Context": "rlcore.api.context",
    "Module": "rlcore.api.module",
    "Engine": "rlcore.api.engine",
    "ExperimentEngine": "rlcore.api.engine",
    "RLHFEngine": "rlcore.api.rlhf",
    "EngineConfig": "rlcore.api.engine",
    "Evaluator": "rlcore.api.evaluator",
    "FlowError": "rlcore.api.flow",
    "SymbolicBatch": "rlcore.api.flow",
    "trace": "rlcore.api.flow",
    "ItemsDataset": "rlcore.api.dataset",
    "ModuleInterface": "rlcore.api.adapter",
    "pack_outputs": "rlcore.api.outputs",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rlcore.api' has no attribute {name!r}")
