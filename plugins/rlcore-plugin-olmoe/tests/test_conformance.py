"""rlcore's MoE family conformance suite on OLMoE against transformers."""

import pytest
import torch

from rlcore.sdk import Transformer, load_pretrained, save_pretrained
from rlcore.testing.families import MoEConformance, randomize_
from rlcore_plugin_olmoe.family import OLMOE


class TestOlmoe(MoEConformance):
    family = OLMOE
    variants = {
        # tiny_config: 4 experts, top-2 not renormalised, q/k norm over all heads, GQA
        "top2_gqa": {},
        # renormalised top-3, MHA, attention bias on all four projections, q/k/v clipped at 0.5
        "top3_bias_clip": {"norm_topk_prob": True, "num_experts_per_tok": 3,
                           "num_key_value_heads": 4, "attention_bias": True, "clip_qkv": 0.5},
    }

    def test_value_head_saves_as_sequence_classifier(self, fam, variant, tmp_path):
        pytest.skip("transformers has no OlmoeForSequenceClassification")


def test_value_head_round_trips_through_rlcore(tmp_path):
    """Without an HF class to check against, a critic saves and reloads with the same values."""
    import dataclasses

    critic = randomize_(Transformer(dataclasses.replace(OLMOE.tiny_config(), value_head=True))).eval()
    save_pretrained(critic, "olmoe", tmp_path, family=OLMOE)
    reloaded, _ = load_pretrained(tmp_path, value_head=True, family=OLMOE)
    ids, cu = torch.arange(20) % 128, torch.tensor([0, 7, 20])
    with torch.no_grad():
        assert torch.equal(reloaded.eval()(ids, cu), critic(ids, cu))
