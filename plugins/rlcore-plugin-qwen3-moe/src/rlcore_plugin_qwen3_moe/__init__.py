"""rlcore model families for Qwen3-MoE and Qwen2-MoE.

Importing this module is cheap: the records name their implementation lazily,
so ``rlcore list-plugins`` never imports torch through it.
"""

import rlcore
from rlcore.plugins.records import ModelFamilyRecord

__version__ = "0.1.0"


@rlcore.hookimpl
def rlcore_model_families() -> list[ModelFamilyRecord]:
    """Register the ``qwen3_moe`` and ``qwen2_moe`` families."""
    return [
        ModelFamilyRecord(
            name="qwen3_moe",
            impl="rlcore_plugin_qwen3_moe.family:QWEN3_MOE",
            hf_model_types=("qwen3_moe",),
            doc="Qwen3-MoE: Qwen3 attention (q/k norm) with a top-k softmax mixture of experts.",
        ),
        ModelFamilyRecord(
            name="qwen2_moe",
            impl="rlcore_plugin_qwen3_moe.family:QWEN2_MOE",
            hf_model_types=("qwen2_moe",),
            doc="Qwen1.5-MoE / Qwen2-MoE: qkv bias, routed experts plus a sigmoid-gated shared expert.",
        ),
    ]
