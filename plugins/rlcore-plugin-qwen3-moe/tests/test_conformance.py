"""rlcore's MoE family conformance suite on Qwen3-MoE and Qwen2-MoE against transformers."""

from rlcore.testing.families import MoEConformance
from rlcore_plugin_qwen3_moe.family import QWEN2_MOE, QWEN3_MOE


class TestQwen3Moe(MoEConformance):
    family = QWEN3_MOE
    variants = {
        # tiny_config: 4 experts, top-2 renormalised, q/k norm, head_dim 16 != 32 / 4, GQA
        "top2_norm": {},
        # weights not renormalised, top-3, tied, attention bias, layer 0 dense (mlp_only_layers)
        "top3_dense_layer0": {"norm_topk_prob": False, "num_experts_per_tok": 3,
                              "tie_word_embeddings": True, "attention_bias": True,
                              "mlp_only_layers": [0]},
    }


class TestQwen2Moe(MoEConformance):
    family = QWEN2_MOE
    variants = {
        # tiny_config: 4 experts, top-2 not renormalised, sigmoid-gated shared expert, qkv bias
        "shared_expert": {},
        # decoder_sparse_step 2: layer 0 dense, layer 1 MoE; renormalised top-1; no qkv bias
        "sparse_step2": {"decoder_sparse_step": 2, "norm_topk_prob": True,
                         "num_experts_per_tok": 1, "qkv_bias": False},
    }
