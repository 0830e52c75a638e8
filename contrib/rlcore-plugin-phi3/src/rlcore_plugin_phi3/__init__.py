"""rlcore-plugin-phi3: the Phi-3 family (``model_type: phi3``) for rlcore. No torch import here."""

import rlcore
from rlcore.plugins.records import ModelFamilyRecord

__version__ = "0.1.0"


# --8<-- [start:register]
@rlcore.hookimpl
def rlcore_model_families():
    """The phi3 family; ``load_pretrained`` finds it from config.json's ``model_type``."""
    return [ModelFamilyRecord("phi3", impl="rlcore_plugin_phi3.family:PHI3", hf_model_types=("phi3",),
                              doc="Phi-3 mini/small/medium: fused qkv and gate_up, optional "
                                  "sliding window.")]
# --8<-- [end:register]
