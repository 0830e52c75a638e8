"""rlcore model families for Llama 2 / 3 / 3.1, Mistral and SmolLM3.

Importing this module is cheap: the records name their implementation lazily,
so ``rlcore list-plugins`` never imports torch through it.
"""

import rlcore
from rlcore.plugins.records import ModelFamilyRecord

__version__ = "0.1.0"


@rlcore.hookimpl
def rlcore_model_families() -> list[ModelFamilyRecord]:
    """Register the ``llama``, ``mistral`` and ``smollm3`` families."""
    return [
        ModelFamilyRecord(
            name="llama",
            impl="rlcore_plugin_llama.family:LLAMA",
            hf_model_types=("llama",),
            doc="Llama 2 / 3 / 3.1: GQA, linear and Llama-3 RoPE scaling, optional tied embeddings.",
        ),
        ModelFamilyRecord(
            name="mistral",
            impl="rlcore_plugin_llama.family:MISTRAL",
            hf_model_types=("mistral",),
            doc="Mistral: Llama layout with GQA and a sliding attention window.",
        ),
        ModelFamilyRecord(
            name="smollm3",
            impl="rlcore_plugin_llama.family:SMOLLM3",
            hf_model_types=("smollm3",),
            doc="SmolLM3: Llama layout with RoPE left out of every 4th layer (NoPE).",
        ),
    ]
