"""OLMoE conversion beyond the conformance suite: refusals, a cheap import."""

import subprocess
import sys

import pytest

from rlcore.errors import ModelLoadError
from rlcore_plugin_olmoe.family import OLMOE


def test_head_dim_other_than_hidden_over_heads_is_refused():
    hf = {**OLMOE.config_to_hf(OLMOE.tiny_config()), "head_dim": 16}
    with pytest.raises(ModelLoadError, match=r"olmoe config.json: head_dim 16"):
        OLMOE.config_from_hf(hf)


def test_clip_qkv_round_trips():
    cfg = OLMOE.config_from_hf({**OLMOE.config_to_hf(OLMOE.tiny_config()), "clip_qkv": 8})
    assert cfg.qkv_clip == 8.0 and OLMOE.config_to_hf(cfg)["clip_qkv"] == 8.0


def test_importing_the_plugin_does_not_import_torch():
    code = ("import sys, rlcore_plugin_olmoe as p; p.rlcore_model_families(); "
            "assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
