"""rlcore model families for Gemma 2 and Gemma 3 (text).

Importing this module is cheap: the records name their implementation lazily,
so ``rlcore list-plugins`` never imports torch through it.
"""

import rlcore
from rlcore.plugins.records import ModelFamilyRecord

__version__ = "0.1.0"


@rlcore.hookimpl
def rlcore_model_families() -> list[ModelFamilyRecord]:
    """Register the ``gemma2`` and ``gemma3`` families."""
    return [
        ModelFamilyRecord(
            name="gemma2",
            impl="rlcore_plugin_gemma.family:GEMMA2",
            hf_model_types=("gemma2",),
            doc="Gemma 2: soft-capped attention and logits, alternating local/global layers, "
                "sandwich norms.",
        ),
        ModelFamilyRecord(
            name="gemma3",
            impl="rlcore_plugin_gemma.family:GEMMA3",
            hf_model_types=("gemma3_text",),
            doc="Gemma 3 text (Gemma3ForCausalLM): q/k norm, 5:1 local/global layers, local RoPE theta.",
        ),
    ]
