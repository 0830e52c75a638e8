"""rlcore's family conformance suite on GLM-4 (dense)."""

from rlcore.testing.families import FamilyConformance
from rlcore_plugin_glm.family import GLM4


class TestGlm4(FamilyConformance):
    family = GLM4
    variants = {
        # tiny_config: half of each head rotated in neighbour pairs, qkv bias, GQA, untied
        "partial_interleaved": {},
        # every dim rotated, no bias, tied
        "full_rotary_tied": {"rope_parameters": {"rope_type": "default", "rope_theta": 10000.0,
                                                 "partial_rotary_factor": 1.0},
                             "partial_rotary_factor": 1.0, "attention_bias": False,
                             "tie_word_embeddings": True},
    }
