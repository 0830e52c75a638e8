"""DecoderFamily's derived behaviour: names from the core model, refusals that name the option."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from rlcore.errors import ModelLoadError
from rlcore.models.decoder_family import DecoderFamily
from rlcore.models.hf_layout import DecoderKeys
from rlcore.models.transformer import Transformer


class Fused(DecoderFamily):
    """A Llama-like family whose q/k/v are stacked in one matrix, as Phi-3 stores them."""

    name = model_type = "fused"
    architecture = "FusedForCausalLM"
    keys = DecoderKeys(fused={"self_attn.qkv.weight": tuple(f"attn.{p}_proj.weight" for p in "qkv")})
    options = {"attn_bias": "bias", "attn_out_bias": "bias"}
    tiny = {"vocab_size": 11, "hidden_size": 16, "intermediate_size": 24, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2}


FAMILY = Fused()


def test_names_follow_the_core_model_and_the_declared_tables():
    cfg = dataclasses.replace(FAMILY.tiny_config(), attn_bias=True, attn_out_bias=True)
    assert FAMILY.embedding_param_names(cfg) == ["model.embed_tokens.weight"]
    assert FAMILY.block_param_names(cfg, 1) == [f"model.layers.1.{n}" for n in (
        "input_layernorm.weight", "self_attn.qkv.weight", "self_attn.q_proj.bias",
        "self_attn.k_proj.bias", "self_attn.v_proj.bias", "self_attn.o_proj.weight",
        "self_attn.o_proj.bias", "post_attention_layernorm.weight", "mlp.gate_proj.weight",
        "mlp.up_proj.weight", "mlp.down_proj.weight")]
    assert FAMILY.head_param_names(cfg) == ["model.norm.weight", "lm_head.weight"]
    critic = dataclasses.replace(cfg, value_head=True)
    assert FAMILY.head_param_names(critic) == ["model.norm.weight", "score.weight"]


def test_fused_state_dict_round_trip_is_exact_and_names_bad_rows():
    cfg = FAMILY.tiny_config()
    core = Transformer(cfg).state_dict()
    hf = FAMILY.state_dict_to_hf(core, cfg)
    assert hf["model.layers.0.self_attn.qkv.weight"].shape == (16 + 2 * 8, 16)
    assert sorted(hf) == sorted(FAMILY.param_names(cfg))
    back = FAMILY.state_dict_from_hf(hf, cfg)
    assert sorted(back) == sorted(core) and all(torch.equal(back[k], core[k]) for k in core)
    hf["model.layers.0.self_attn.qkv.weight"] = torch.zeros(30, 16)
    with pytest.raises(ModelLoadError, match=r"qkv.weight: 30 rows, but the config implies 32"):
        FAMILY.state_dict_from_hf(hf, cfg)


@pytest.mark.parametrize("change, message", [
    ({"attn_bias": True}, r"attn_bias=True \(its config.json gives False\)"),  # one HF key
    ({"norm_type": "layernorm"}, "norm_type='layernorm'"),
    ({"rope_scaling": {"rope_type": "yarn", "factor": 2.0}}, "yarn"),
])
def test_configs_the_architecture_cannot_hold_are_refused(change, message):
    cfg = dataclasses.replace(FAMILY.tiny_config(), **change)
    with pytest.raises(ModelLoadError, match=f"cannot be saved as fused: .*{message}"):
        FAMILY.config_to_hf(cfg)


def test_config_errors_name_the_key():
    hf = FAMILY.config_to_hf(FAMILY.tiny_config())
    with pytest.raises(ModelLoadError, match="has no 'hidden_size'"):
        FAMILY.config_from_hf({k: v for k, v in hf.items() if k != "hidden_size"})
    with pytest.raises(ModelLoadError, match="hidden_act 'relu2' is not supported"):
        FAMILY.config_from_hf({**hf, "hidden_act": "relu2"})
    with pytest.raises(ModelLoadError, match="model_type is 'llama', expected 'fused'"):
        FAMILY.config_from_hf({**hf, "model_type": "llama"})
