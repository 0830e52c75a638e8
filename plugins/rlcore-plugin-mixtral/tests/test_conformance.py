"""rlcore's MoE family conformance suite on Mixtral: tiny mixtures of experts against transformers."""

from rlcore.testing.families import MoEConformance
from rlcore_plugin_mixtral.family import MIXTRAL


class TestMixtral(MoEConformance):
    family = MIXTRAL
    variants = {
        # tiny_config: 4 experts, top-2, GQA (4 q / 2 kv heads)
        "top2_gqa": {},
        # top-1 of 4, MQA, a window of 6 on every layer (shorter than the test sequences)
        "top1_sliding": {"num_experts_per_tok": 1, "num_key_value_heads": 1, "sliding_window": 6},
    }
