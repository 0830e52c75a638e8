"""rlcore's family conformance suite on GPT-2."""

from rlcore.testing.families import FamilyConformance
from rlcore_plugin_gpt2.family import GPT2


class TestGPT2(FamilyConformance):
    family = GPT2
    variants = {
        # tiny_config: learned positions, Conv1D, fused c_attn, gelu_new, tied embeddings
        "tied": {},
        "untied_n_inner_gelu": {"tie_word_embeddings": False, "n_inner": 96,
                                "activation_function": "gelu"},
        "relu": {"activation_function": "relu"},
        "quick_gelu": {"activation_function": "quick_gelu"},
    }
