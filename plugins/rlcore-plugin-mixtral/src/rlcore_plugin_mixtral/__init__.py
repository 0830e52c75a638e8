"""rlcore model family for Mixtral (sparse mixture of experts).

Importing this module is cheap: the record names its implementation lazily,
so ``rlcore list-plugins`` never imports torch through it.
"""

import rlcore
from rlcore.plugins.records import ModelFamilyRecord

__version__ = "0.1.0"


@rlcore.hookimpl
def rlcore_model_families() -> list[ModelFamilyRecord]:
    """Register the ``mixtral`` family."""
    return [
        ModelFamilyRecord(
            name="mixtral",
            impl="rlcore_plugin_mixtral.family:MIXTRAL",
            hf_model_types=("mixtral",),
            doc="Mixtral: Mistral attention with a top-k softmax mixture of experts on every layer.",
        ),
    ]
