"""rlcore model families for Qwen2 / Qwen2.5 and Qwen3.

Importing this module is cheap: the records name their implementation lazily,
so ``rlcore list-plugins`` never imports torch through it.
"""

import rlcore
from rlcore.plugins.records import ModelFamilyRecord

__version__ = "0.1.0"


@rlcore.hookimpl
def rlcore_model_families() -> list[ModelFamilyRecord]:
    """Register the ``qwen2`` and ``qwen3`` families."""
    return [
        ModelFamilyRecord(
            name="qwen2",
            impl="rlcore_plugin_qwen2.family:QWEN2",
            hf_model_types=("qwen2",),
            doc="Qwen2 / Qwen2.5: GQA, qkv bias, optional tied embeddings, sliding window.",
        ),
        ModelFamilyRecord(
            name="qwen3",
            impl="rlcore_plugin_qwen2.family:QWEN3",
            hf_model_types=("qwen3",),
            doc="Qwen3 (dense): GQA, q/k RMSNorm per head, explicit head_dim, optional attention bias.",
        ),
    ]
