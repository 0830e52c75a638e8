"""Mixtral conversion beyond the conformance suite: refusals, per-expert files, a cheap import."""

import subprocess
import sys

import pytest
import torch

from rlcore.errors import ModelLoadError
from rlcore.testing.families import hf_causal_lm
from rlcore_plugin_mixtral.family import MIXTRAL


def hf_dict(**overrides):
    return {**MIXTRAL.config_to_hf(MIXTRAL.tiny_config()), **overrides}


def test_router_jitter_noise_is_refused_naming_the_key():
    with pytest.raises(ModelLoadError, match=r"mixtral config.json: router_jitter_noise=0.1"):
        MIXTRAL.config_from_hf(hf_dict(router_jitter_noise=0.1))


def test_missing_expert_count_is_an_error():
    with pytest.raises(ModelLoadError, match="num_local_experts must be > 0"):
        MIXTRAL.config_from_hf({k: v for k, v in hf_dict().items() if k != "num_local_experts"})


def test_per_expert_files_stack_into_the_core_layout():
    """block_sparse_moe.experts.{j}.w1/w3/w2 (what transformers writes) equal the stacked tensors."""
    hf = hf_causal_lm(MIXTRAL)
    cfg = MIXTRAL.config_from_hf(hf.config.to_dict())
    sd = dict(hf.state_dict())
    files = {k.replace(".mlp.", ".block_sparse_moe."): v for k, v in sd.items()
             if "experts" not in k}
    for i in range(cfg.n_layers):
        gate_up, down = (sd[f"model.layers.{i}.mlp.experts.{n}"] for n in ("gate_up_proj", "down_proj"))
        for j in range(cfg.n_experts):
            gate, up = gate_up[j].chunk(2)
            p = f"model.layers.{i}.block_sparse_moe.experts.{j}"
            files.update({f"{p}.w1.weight": gate, f"{p}.w3.weight": up, f"{p}.w2.weight": down[j]})
    core = MIXTRAL.state_dict_from_hf(files, cfg)
    expected = MIXTRAL.state_dict_from_hf(sd, cfg)
    assert core.keys() == expected.keys()
    assert all(torch.equal(core[k], expected[k]) for k in core)
    del files["model.layers.1.block_sparse_moe.experts.2.w3.weight"]
    with pytest.raises(ModelLoadError, match=r"lacks model\.layers\.1\.mlp\.experts\.2\.w3\.weight"):
        MIXTRAL.state_dict_from_hf(files, cfg)


def test_importing_the_plugin_does_not_import_torch():
    code = ("import sys, rlcore_plugin_mixtral as p; p.rlcore_model_families(); "
            "assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
