"""The ``real`` profile of each standard experiment: one table of defaults for a real model.

The configs' own defaults train a tiny model on the embedded task (6 new tokens, learning
rates for a 64-wide model, an SFT warm start). With ``actor.path`` set (``--profile auto``)
or ``--profile real``, these values replace them for every key the user left alone
(``rlcore.config.profiles``). They follow the usual TRL, OpenRLHF and verl recipes:
learning rates of 1e-5 (SFT, RM), 5e-7 (DPO), 1e-6 (RL policy) and 1e-5 (critic), bf16
(on CPUs and Ampere or newer GPUs), one epoch over the data, 1024 new tokens.
"""

from __future__ import annotations

from typing import Any

_ONE_EPOCH = {"run.epochs": 1, "run.max_steps": 0}
_COSINE = {"train.scheduler.kind": "cosine", "train.scheduler.warmup_ratio": 0.03}

REAL: dict[str, dict[str, Any]] = {
    "sft": {"train.optimizer.lr": 1e-5, "eval.max_new_tokens": 1024, "train.dtype": "bf16",
            **_COSINE, **_ONE_EPOCH},
    "rm": {"train.optimizer.lr": 1e-5, "train.dtype": "bf16", **_COSINE, **_ONE_EPOCH},
    "dpo": {"train.optimizer.lr": 5e-7, "train.dtype": "bf16", "ref.dtype": "bf16",
            **_COSINE, **_ONE_EPOCH},
    "ppo": {"train.optimizer.lr": 1e-6, "critic.train.optimizer.lr": 1e-5,
            "gen.max_new_tokens": 1024, "eval.max_new_tokens": 1024,
            "train.dtype": "bf16", "ref.dtype": "bf16", "critic.train.dtype": "bf16",
            "warm_start.sft_steps": 0, **_ONE_EPOCH},
    "grpo": {"train.optimizer.lr": 1e-6, "gen.max_new_tokens": 1024,
             "eval.max_new_tokens": 1024, "gen.n_samples": 8, "train.dtype": "bf16",
             "ref.dtype": "bf16", "warm_start.sft_steps": 0, **_ONE_EPOCH},
}
REAL["remax"] = REAL["grpo"]
REAL["distill"] = {**REAL["grpo"], "gen.n_samples": 4, "teacher.inference.dtype": "bf16"}
REAL["online_dpo"] = {"train.optimizer.lr": 5e-7, "gen.max_new_tokens": 1024,
                      "eval.max_new_tokens": 1024, "train.dtype": "bf16", "ref.dtype": "bf16",
                      "warm_start.sft_steps": 0, **_ONE_EPOCH}


def profiles(experiment: str) -> dict[str, dict[str, Any]]:
    """The profiles of ``experiment``'s config class (its ``profiles`` class attribute)."""
    return {"real": REAL[experiment]}
