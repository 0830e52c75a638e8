"""Gemma config reading and refusals, against transformers' own config classes."""

from __future__ import annotations

import subprocess
import sys

import pytest
import transformers

from rlcore.errors import ModelLoadError
from rlcore_plugin_gemma.family import GEMMA2, GEMMA3


def test_gemma2_defaults_match_transformers():
    """A config.json that leaves keys out reads as transformers reads it (caps on, 1:1 layers)."""
    hf = transformers.Gemma2Config(num_hidden_layers=4).to_dict()
    cfg = GEMMA2.config_from_hf({k: v for k, v in hf.items() if k not in (
        "attn_logit_softcapping", "final_logit_softcapping", "layer_types", "sliding_window")})
    assert (cfg.attn_softcap, cfg.final_softcap, cfg.sliding_window) == (50.0, 30.0, 4096)
    assert cfg.sliding_layers == [True, False, True, False] and cfg.attn_scale_base == 256
    assert cfg.norm_unit_offset and cfg.sandwich_norms and cfg.embed_scale and cfg.activation == "gelu_new"
    off = GEMMA2.config_from_hf({**hf, "attn_logit_softcapping": None, "final_logit_softcapping": None})
    assert off.attn_softcap is None and off.final_softcap is None


def test_gemma3_pattern_and_local_rope():
    cfg = GEMMA3.config_from_hf(transformers.Gemma3TextConfig(num_hidden_layers=7).to_dict())
    assert cfg.sliding_layers == [True] * 5 + [False, True] and cfg.qk_norm
    assert (cfg.rope_theta, cfg.rope_local_theta) == (1e6, 1e4)
    legacy = {"model_type": "gemma3_text", **GEMMA3.tiny, "rope_theta": 5e5,
              "rope_scaling": {"rope_type": "linear", "factor": 8.0}, "rope_local_base_freq": 2e4,
              "sliding_window_pattern": 3}
    del legacy["rope_parameters"], legacy["layer_types"]
    cfg = GEMMA3.config_from_hf(legacy)
    assert cfg.rope_scaling == {"rope_type": "linear", "factor": 8.0}
    assert (cfg.rope_theta, cfg.rope_local_theta, cfg.sliding_layers) == (5e5, 2e4, [True, True, False])


def test_refusals_name_config_json_and_the_key():
    hf = GEMMA3.config_to_hf(GEMMA3.tiny_config())
    with pytest.raises(ModelLoadError, match="config.json.*use_bidirectional_attention"):
        GEMMA3.config_from_hf({**hf, "use_bidirectional_attention": True})
    scaled_local = {**hf["rope_parameters"], "sliding_attention": {
        "rope_type": "linear", "factor": 2.0, "rope_theta": 1e4}}
    with pytest.raises(ModelLoadError, match="config.json.*sliding_attention"):
        GEMMA3.config_from_hf({**hf, "rope_parameters": scaled_local})
    with pytest.raises(ModelLoadError, match="config.json.*layer_types.*chunked_attention"):
        GEMMA2.config_from_hf({**GEMMA2.config_to_hf(GEMMA2.tiny_config()),
                               "layer_types": ["chunked_attention", "full_attention"]})


def test_importing_the_plugin_does_not_import_torch():
    code = "import sys, rlcore_plugin_gemma as p; p.rlcore_model_families(); assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_records_load_the_families():
    import rlcore_plugin_gemma

    records = {r.name: r for r in rlcore_plugin_gemma.rlcore_model_families()}
    assert records["gemma2"].load() is GEMMA2 and records["gemma3"].load() is GEMMA3
    assert records["gemma3"].hf_model_types == ("gemma3_text",)


def test_bf16_embeddings_scale_like_transformers():
    """sqrt(hidden) is rounded to bf16 before the product, as HF does (sqrt(48) is not a bf16)."""
    import torch

    from rlcore.testing.families import core_from_hf, hf_causal_lm

    hf = hf_causal_lm(GEMMA2, {"hidden_size": 48, "head_dim": 12}).to(torch.bfloat16)
    core = core_from_hf(GEMMA2, hf).to(torch.bfloat16)
    seen = {}
    hf.model.layers[0].register_forward_pre_hook(
        lambda m, args, kw: seen.update(hf=args[0] if args else kw["hidden_states"]), with_kwargs=True)
    core.blocks[0].register_forward_pre_hook(lambda m, args: seen.update(core=args[0]))
    ids = torch.arange(1, 9)
    with torch.no_grad():
        hf(input_ids=ids[None])
        core(ids, torch.tensor([0, 8]))
    assert torch.equal(seen["core"], seen["hf"][0])


# config.json of google/gemma-2-2b and google/gemma-3-1b-pt as released (transformers 4 keys).
GEMMA2_2B = {"model_type": "gemma2", "attn_logit_softcapping": 50.0, "final_logit_softcapping": 30.0,
             "head_dim": 256, "hidden_act": "gelu_pytorch_tanh", "hidden_activation": "gelu_pytorch_tanh",
             "hidden_size": 2304, "intermediate_size": 9216, "max_position_embeddings": 8192,
             "num_attention_heads": 8, "num_hidden_layers": 26, "num_key_value_heads": 4,
             "query_pre_attn_scalar": 256, "rms_norm_eps": 1e-06, "rope_theta": 10000.0,
             "sliding_window": 4096, "vocab_size": 256000, "cache_implementation": "hybrid"}
GEMMA3_1B = {"model_type": "gemma3_text", "attn_logit_softcapping": None, "final_logit_softcapping": None,
             "head_dim": 256, "hidden_activation": "gelu_pytorch_tanh", "hidden_size": 1152,
             "intermediate_size": 6912, "max_position_embeddings": 32768, "num_attention_heads": 4,
             "num_hidden_layers": 26, "num_key_value_heads": 1, "query_pre_attn_scalar": 256,
             "rms_norm_eps": 1e-06, "rope_local_base_freq": 10000, "rope_scaling": None,
             "rope_theta": 1000000, "sliding_window": 512, "sliding_window_pattern": 6,
             "vocab_size": 262144}


@pytest.mark.parametrize("family, hf", [(GEMMA2, GEMMA2_2B), (GEMMA3, GEMMA3_1B)], ids=["gemma2", "gemma3"])
def test_released_configs_read_as_transformers_reads_them(family, hf):
    cfg = family.config_from_hf(hf)
    ref = transformers.AutoConfig.for_model(**hf)
    assert [cfg.layer_slides(i) for i in range(26)] == [t == "sliding_attention" for t in ref.layer_types]
    assert (cfg.sliding_window, cfg.head_dim, cfg.activation) == (hf["sliding_window"], 256, "gelu_new")
    assert (cfg.attn_softcap, cfg.final_softcap) == (hf["attn_logit_softcapping"], hf["final_logit_softcapping"])
    if family is GEMMA3:
        assert (cfg.rope_theta, cfg.rope_local_theta, cfg.rope_scaling) == (1e6, 1e4, None)
    assert family.config_from_hf(family.config_to_hf(cfg)) == cfg
