"""rlcore's family conformance suite on Gemma 2 and Gemma 3 (text), over their quirks."""

from rlcore.testing.families import FamilyConformance
from rlcore_plugin_gemma.family import GEMMA2, GEMMA3


class TestGemma2(FamilyConformance):
    family = GEMMA2
    variants = {
        # tiny_config: local (window 6) then global layer, attention and final soft caps,
        # query_pre_attn_scalar 24 != head_dim 16, GQA, tied embeddings
        "softcap_local_global": {},
        # no caps (explicit nulls), every layer global, untied, attention bias, MQA
        "no_caps_untied_bias": {"attn_logit_softcapping": None, "final_logit_softcapping": None,
                                "layer_types": ["full_attention"] * 2, "tie_word_embeddings": False,
                                "attention_bias": True, "num_key_value_heads": 1},
    }


class TestGemma3(FamilyConformance):
    family = GEMMA3
    variants = {
        # tiny_config: q/k norm, two local layers (theta 1e4) then a global one (theta 1e6, linear x8)
        "local_global_qk_norm": {},
        # a final-logit soft cap (transformers ignores Gemma 3's attention cap), a global layer
        # first, untied
        "softcap_global_first": {"layer_types": ["full_attention", "sliding_attention",
                                                 "sliding_attention"],
                                 "final_logit_softcapping": 3.0, "tie_word_embeddings": False},
    }
