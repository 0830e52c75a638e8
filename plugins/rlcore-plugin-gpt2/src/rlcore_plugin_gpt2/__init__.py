"""rlcore model family for GPT-2.

Importing this module is cheap: the record names its implementation lazily,
so ``rlcore list-plugins`` never imports torch through it.
"""

import rlcore
from rlcore.plugins.records import ModelFamilyRecord

__version__ = "0.1.0"


@rlcore.hookimpl
def rlcore_model_families() -> list[ModelFamilyRecord]:
    """Register the ``gpt2`` family."""
    return [
        ModelFamilyRecord(
            name="gpt2",
            impl="rlcore_plugin_gpt2.family:GPT2",
            hf_model_types=("gpt2",),
            doc="GPT-2: learned positions, Conv1D weights (fused c_attn), gelu_new, LayerNorm, tied embeddings.",
        ),
    ]
