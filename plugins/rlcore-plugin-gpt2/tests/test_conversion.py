"""GPT-2 conversion against real transformers models built from tiny configs."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import transformers

from rlcore.errors import ModelLoadError
from rlcore_plugin_gpt2.family import GPT2


def hf_model(cls=transformers.GPT2LMHeadModel, **overrides):
    config = transformers.GPT2Config(**{**GPT2.config_to_hf(GPT2.tiny_config()), **overrides})
    torch.manual_seed(0)
    model = cls(config)
    with torch.no_grad():  # non-trivial norms and biases, so a swapped tensor shows
        for p in model.parameters():
            p.normal_(0, 0.1)
    return model


def assert_same_state_dict(a, b):
    assert sorted(a) == sorted(b), set(a) ^ set(b)
    for k in a:
        assert a[k].shape == b[k].shape, k
        assert torch.equal(a[k], b[k]), k


def test_conv1d_is_transposed_and_c_attn_split():
    model = hf_model()
    cfg = GPT2.config_from_hf(model.config.to_dict())
    core = GPT2.state_dict_from_hf(model.state_dict(), cfg)
    attn = model.transformer.h[1].attn
    x = torch.randn(3, cfg.hidden_size)
    q, k, v = attn.c_attn(x).split(cfg.hidden_size, dim=-1)
    for name, ref in zip("qkv", (q, k, v), strict=True):
        w, b = core[f"blocks.1.attn.{name}_proj.weight"], core[f"blocks.1.attn.{name}_proj.bias"]
        assert w.shape == (cfg.hidden_size, cfg.hidden_size)
        torch.testing.assert_close(torch.nn.functional.linear(x, w, b), ref)
    mlp = model.transformer.h[0].mlp
    up = torch.nn.functional.linear(x, core["blocks.0.mlp.up_proj.weight"], core["blocks.0.mlp.up_proj.bias"])
    torch.testing.assert_close(up, mlp.c_fc(x))
    assert core["blocks.0.mlp.down_proj.weight"].shape == (cfg.hidden_size, cfg.intermediate_size)


def test_unprefixed_gpt2model_checkpoint_with_mask_buffers():
    """Hub GPT-2 files come from GPT2Model (no 'transformer.') and may hold attn.bias buffers."""
    model = hf_model()
    cfg = GPT2.config_from_hf(model.config.to_dict())
    sd = {k.removeprefix("transformer."): v for k, v in model.state_dict().items() if k != "lm_head.weight"}
    n = cfg.max_positions
    for i in range(cfg.n_layers):
        sd[f"h.{i}.attn.bias"] = torch.tril(torch.ones(n, n, dtype=torch.bool))[None, None]
        sd[f"h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
    core = GPT2.state_dict_from_hf(sd, cfg)
    assert_same_state_dict(GPT2.state_dict_to_hf(core, cfg), model.state_dict())


def test_config_round_trip_through_transformers():
    cfg = GPT2.tiny_config()
    assert (cfg.position, cfg.norm_type, cfg.activation, cfg.gated_mlp) == (
        "learned", "layernorm", "gelu_new", False)
    assert cfg.attn_bias and cfg.attn_out_bias and cfg.mlp_bias and cfg.tie_embeddings
    hf = transformers.GPT2Config(**GPT2.config_to_hf(cfg)).to_dict()
    assert GPT2.config_from_hf(hf) == cfg
    custom = GPT2.config_from_hf({**hf, "n_inner": 96})
    assert custom.intermediate_size == 96 and GPT2.config_to_hf(custom)["n_inner"] == 96


@pytest.mark.parametrize("key,value", [
    ("scale_attn_by_inverse_layer_idx", True),
    ("scale_attn_weights", False),
    ("add_cross_attention", True),
    ("activation_function", "relu2"),
])
def test_unsupported_options_are_clear_errors(key, value):
    hf = GPT2.config_to_hf(GPT2.tiny_config())
    with pytest.raises(ModelLoadError, match=key):
        GPT2.config_from_hf({**hf, key: value})


def test_value_head_maps_to_sequence_classification_score():
    model = hf_model(transformers.GPT2ForSequenceClassification, num_labels=1)
    cfg = GPT2.config_from_hf(model.config.to_dict())
    cfg.value_head = True
    sd = model.state_dict()
    core = GPT2.state_dict_from_hf(sd, cfg)
    assert core["value_head.weight"].shape == (1, cfg.hidden_size)
    assert_same_state_dict(GPT2.state_dict_to_hf(core, cfg), sd)


def test_importing_the_plugin_does_not_import_torch():
    code = "import sys, rlcore_plugin_gpt2 as p; p.rlcore_model_families(); assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_record_loads_the_family():
    import rlcore_plugin_gpt2

    (record,) = rlcore_plugin_gpt2.rlcore_model_families()
    assert record.name == "gpt2" and record.hf_model_types == ("gpt2",)
    assert record.load() is GPT2
