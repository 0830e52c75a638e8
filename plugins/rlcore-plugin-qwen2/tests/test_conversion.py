"""Qwen2/Qwen3 conversion against real transformers models built from tiny configs."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import transformers

from rlcore.errors import ModelLoadError
from rlcore_plugin_qwen2.family import QWEN2, QWEN3


def assert_same_state_dict(a, b):
    assert sorted(a) == sorted(b), set(a) ^ set(b)
    for k in a:
        assert a[k].shape == b[k].shape, k
        assert torch.equal(a[k], b[k]), k


def test_qwen2_quirks_in_core_config():
    cfg = QWEN2.tiny_config()
    assert (cfg.attn_bias, cfg.attn_out_bias, cfg.qk_norm) == (True, False, False)
    assert cfg.n_kv_heads < cfg.n_q_heads and cfg.tie_embeddings
    cfg3 = QWEN3.tiny_config()
    assert cfg3.qk_norm and cfg3.head_dim * cfg3.n_q_heads != cfg3.hidden_size


def test_legacy_transformers4_rope_keys():
    hf = QWEN2.config_to_hf(QWEN2.tiny_config())
    del hf["rope_parameters"]
    hf.update(rope_theta=500000.0, rope_scaling={"type": "linear", "factor": 2.0})
    cfg = QWEN2.config_from_hf(hf)
    assert cfg.rope_theta == 500000.0
    assert cfg.rope_scaling == {"rope_type": "linear", "factor": 2.0}


def test_unsupported_rope_scaling_is_a_clear_error():
    hf = QWEN2.config_to_hf(QWEN2.tiny_config())
    hf["rope_parameters"] = {"rope_theta": 1e6, "rope_type": "yarn", "factor": 4.0}
    with pytest.raises(ModelLoadError, match="yarn"):
        QWEN2.config_from_hf(hf)


def test_sliding_window():
    hf = QWEN2.config_to_hf(QWEN2.tiny_config())
    # Disabled (the Qwen2/2.5 release default): the window size is ignored, as HF does.
    assert QWEN2.config_from_hf({**hf, "use_sliding_window": False, "sliding_window": 4}).sliding_window is None
    on = {**hf, "use_sliding_window": True, "sliding_window": 4, "max_window_layers": 0}
    on.pop("layer_types", None)
    assert QWEN2.config_from_hf(on).sliding_window == 4
    # HF slides only layers >= max_window_layers: the core's per-layer windows follow it.
    mixed = QWEN2.config_from_hf({**on, "max_window_layers": 1})
    assert mixed.sliding_window == 4 and mixed.sliding_layers == [False, True]
    hf_back = QWEN2.config_to_hf(QWEN2.config_from_hf(on))
    assert transformers.AutoConfig.for_model(**hf_back).layer_types == ["sliding_attention"] * 2
    assert QWEN2.config_to_hf(mixed)["max_window_layers"] == 1


def test_unexpected_key_names_the_parameter():
    cfg = QWEN2.tiny_config()
    with pytest.raises(ModelLoadError, match="model.layers.0.self_attn.extra"):
        QWEN2.state_dict_from_hf({"model.layers.0.self_attn.extra": torch.zeros(1)}, cfg)


def test_value_head_maps_to_sequence_classification_score():
    family = QWEN2
    hf_cfg = transformers.AutoConfig.for_model(**family.config_to_hf(family.tiny_config()), num_labels=1)
    model = transformers.AutoModelForSequenceClassification.from_config(hf_cfg)
    cfg = family.config_from_hf(hf_cfg.to_dict())
    cfg.value_head = True
    sd = model.state_dict()
    core = family.state_dict_from_hf(sd, cfg)
    assert core["value_head.weight"].shape == (1, cfg.hidden_size) and "lm_head.weight" not in core
    assert_same_state_dict(family.state_dict_to_hf(core, cfg), sd)
    with pytest.raises(ModelLoadError, match="value_head.bias"):
        family.state_dict_to_hf({**core, "value_head.bias": torch.ones(1)}, cfg)


def test_importing_the_plugin_does_not_import_torch():
    code = "import sys, rlcore_plugin_qwen2 as p; p.rlcore_model_families(); assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_records_load_the_families():
    import rlcore_plugin_qwen2

    records = {r.name: r for r in rlcore_plugin_qwen2.rlcore_model_families()}
    assert records["qwen2"].load() is QWEN2 and records["qwen3"].load() is QWEN3
    assert records["qwen2"].hf_model_types == ("qwen2",)
