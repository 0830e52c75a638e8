"""rlcore's family conformance suite on Qwen2/2.5 and Qwen3, over the quirks each family has."""

from rlcore.testing.families import FamilyConformance
from rlcore_plugin_qwen2.family import QWEN2, QWEN3


class TestQwen2(FamilyConformance):
    family = QWEN2
    variants = {
        # tiny_config: GQA (4 q / 2 kv heads), qkv bias, tied embeddings (Qwen2.5-0.5B style)
        "gqa_tied": {},
        "untied_mqa": {"tie_word_embeddings": False, "num_key_value_heads": 1},
        # every layer slides, window shorter than the test sequences (up to 30 tokens)
        "sliding_window": {"use_sliding_window": True, "sliding_window": 6, "max_window_layers": 0},
        # only layers >= max_window_layers slide (HF's layer_types from max_window_layers)
        "sliding_upper_layers": {"use_sliding_window": True, "sliding_window": 6,
                                 "max_window_layers": 1, "layer_types": None},
        "rope_linear": {"rope_parameters": {"rope_theta": 1e6, "rope_type": "linear", "factor": 4.0}},
        # Qwen2.5's long-context setting (factor 4 over the original context), scaled down
        "rope_yarn": {"rope_parameters": {"rope_theta": 1e6, "rope_type": "yarn", "factor": 4.0,
                                          "original_max_position_embeddings": 16}},
    }


class TestQwen3(FamilyConformance):
    family = QWEN3
    variants = {
        # tiny_config: q/k norm, head_dim 32 != hidden 64 / 4 heads, GQA, untied
        "qk_norm": {},
        # attention_bias puts a bias on q/k/v *and* o_proj
        "tied_attention_bias": {"tie_word_embeddings": True, "attention_bias": True},
    }
