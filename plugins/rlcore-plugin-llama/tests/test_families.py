"""Llama and Mistral families through the rlcore conformance suite (parity with transformers)."""

from rlcore.testing.families import FamilyConformance
from rlcore_plugin_llama.family import LLAMA, MISTRAL


class TestLlama(FamilyConformance):
    family = LLAMA
    variants = {
        "llama3.1-rope": {},  # GQA + Llama-3 RoPE scaling (tiny_config)
        "llama2-mha": {"num_key_value_heads": 4, "rope_parameters": {"rope_type": "default",
                                                                    "rope_theta": 10000.0}},
        "linear-rope-tied-bias": {"rope_parameters": {"rope_type": "linear", "rope_theta": 10000.0,
                                                      "factor": 4.0},
                                  "tie_word_embeddings": True, "attention_bias": True,
                                  "mlp_bias": True, "head_dim": 8, "num_key_value_heads": 1},
        # YaRN with an original context shorter than the test sequences, and an attention factor
        "yarn": {"rope_parameters": {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0,
                                     "original_max_position_embeddings": 16}},
    }


class TestMistral(FamilyConformance):
    family = MISTRAL
