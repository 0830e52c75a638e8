"""rlcore model family for OLMoE (AllenAI's open mixture of experts).

Importing this module is cheap: the record names its implementation lazily,
so ``rlcore list-plugins`` never imports torch through it.
"""

import rlcore
from rlcore.plugins.records import ModelFamilyRecord

__version__ = "0.1.0"


@rlcore.hookimpl
def rlcore_model_families() -> list[ModelFamilyRecord]:
    """Register the ``olmoe`` family."""
    return [
        ModelFamilyRecord(
            name="olmoe",
            impl="rlcore_plugin_olmoe.family:OLMOE",
            hf_model_types=("olmoe",),
            doc="OLMoE: q/k RMSNorm over all heads, optional qkv clipping, top-k softmax experts.",
        ),
    ]
