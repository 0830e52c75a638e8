"""Qwen-MoE conversion beyond the conformance suite: dense layers, refusals, a cheap import."""

import subprocess
import sys

import pytest

from rlcore.errors import ModelLoadError
from rlcore_plugin_qwen3_moe.family import QWEN2_MOE, QWEN3_MOE


def hf_dict(family, **overrides):
    return {**family.config_to_hf(family.tiny_config()), **overrides}


@pytest.mark.parametrize("step,only,dense", [(1, [], []), (2, [], [0, 2]), (3, [], [0, 1, 3]),
                                             (2, [1], [0, 1, 2])])
def test_dense_layers_from_sparse_step_and_mlp_only_layers(step, only, dense):
    cfg = QWEN3_MOE.config_from_hf(hf_dict(QWEN3_MOE, num_hidden_layers=4, decoder_sparse_step=step,
                                           mlp_only_layers=only))
    assert cfg.dense_layers == dense
    assert QWEN3_MOE.config_to_hf(cfg)["mlp_only_layers"] == dense


@pytest.mark.parametrize("family", [QWEN3_MOE, QWEN2_MOE])
def test_sliding_window_is_refused_naming_the_key(family):
    with pytest.raises(ModelLoadError, match=rf"{family.model_type} config.json: use_sliding_window"):
        family.config_from_hf(hf_dict(family, use_sliding_window=True, sliding_window=8))


def test_qwen2_moe_defaults_match_transformers():
    """A config.json without the MoE keys reads as transformers' Qwen2MoeConfig defaults."""
    import transformers

    hf = hf_dict(QWEN2_MOE)
    for key in ("num_experts_per_tok", "norm_topk_prob", "moe_intermediate_size",
                "shared_expert_intermediate_size", "qkv_bias", "decoder_sparse_step"):
        hf.pop(key)
    cfg = QWEN2_MOE.config_from_hf(hf)
    ref = transformers.Qwen2MoeConfig()
    assert (cfg.n_experts_per_token, cfg.router_norm_topk, cfg.moe_intermediate_size,
            cfg.shared_expert_size, cfg.attn_bias) == (
        ref.num_experts_per_tok, ref.norm_topk_prob, ref.moe_intermediate_size,
        ref.shared_expert_intermediate_size, ref.qkv_bias)


def test_importing_the_plugin_does_not_import_torch():
    code = ("import sys, rlcore_plugin_qwen3_moe as p; p.rlcore_model_families(); "
            "assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
