"""rlcore model family for GLM-4 dense models (Glm4ForCausalLM).

Importing this module is cheap: the records name their implementation lazily,
so ``rlcore list-plugins`` never imports torch through it.
"""

import rlcore
from rlcore.plugins.records import ModelFamilyRecord

__version__ = "0.1.0"


@rlcore.hookimpl
def rlcore_model_families() -> list[ModelFamilyRecord]:
    """Register the ``glm4`` family."""
    return [
        ModelFamilyRecord(
            name="glm4",
            impl="rlcore_plugin_glm.family:GLM4",
            hf_model_types=("glm4",),
            doc="GLM-4 (dense): partial interleaved RoPE, fused gate_up, sandwich norms, qkv bias.",
        ),
    ]
