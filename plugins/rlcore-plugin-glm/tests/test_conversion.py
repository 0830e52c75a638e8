"""GLM-4 config reading against transformers' own config class; the plugin imports no torch."""

import subprocess
import sys

import transformers

from rlcore_plugin_glm.family import GLM4


def test_defaults_match_transformers():
    cfg = GLM4.config_from_hf(transformers.Glm4Config(num_hidden_layers=2).to_dict())
    assert (cfg.rope_fraction, cfg.rope_interleaved, cfg.sandwich_norms) == (0.5, True, True)
    assert (cfg.attn_bias, cfg.attn_out_bias, cfg.head_dim) == (True, False, 128)


def test_importing_the_plugin_does_not_import_torch():
    code = "import sys, rlcore_plugin_glm as p; p.rlcore_model_families(); assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
