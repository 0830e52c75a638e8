"""Core transformer: packing, position restarts, options vs. transformers' layers, checkpointing."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
import torch

from rlcore.errors import ConfigError
from rlcore.models import attention
from rlcore.models.attention import (
    PackedContext,
    check_cu_seqlens,
    sdpa_auto,
    sdpa_loop,
    sdpa_padded,
)
from rlcore.models.config import TransformerConfig
from rlcore.models.transformer import RMSNorm, Transformer, rope_attention_factor, rope_inv_freq
from rlcore.testing.families import pack, random_sequences, randomize_

LENS = (6, 19, 1, 11)


def model_for(cfg: TransformerConfig, seed: int = 0) -> Transformer:
    torch.manual_seed(seed)
    return randomize_(Transformer(cfg), seed).eval()


def test_packed_equals_each_sequence_alone(config):
    """Positions restart per sequence and no token attends across sequences."""
    model = model_for(config)
    seqs = random_sequences(config.vocab_size, LENS)
    ids, cu = pack(seqs)
    with torch.no_grad():
        packed = model(ids, cu)
        alone = torch.cat([model(s, torch.tensor([0, len(s)])) for s in seqs])
    assert packed.shape == (sum(LENS), config.vocab_size)
    torch.testing.assert_close(packed, alone, atol=1e-5, rtol=0)


def test_sequence_order_does_not_matter(config):
    model = model_for(config)
    seqs = random_sequences(config.vocab_size, LENS)
    with torch.no_grad():
        fwd = model(*pack(seqs))
        rev = model(*pack(seqs[::-1]))
    chunks = list(rev.split(list(LENS[::-1])))[::-1]
    torch.testing.assert_close(fwd, torch.cat(chunks), atol=1e-5, rtol=0)


def test_value_head_gives_one_value_per_token(config):
    model = model_for(dataclasses.replace(config, value_head=True))
    assert not hasattr(model, "lm_head")
    assert model.value_head.weight.shape == (1, config.hidden_size)
    values = model(*pack(random_sequences(config.vocab_size, LENS)))
    assert values.shape == (sum(LENS),)


def test_state_dict_uses_contract_names(config):
    names = set(Transformer(config).state_dict())
    assert "embed.weight" in names and "blocks.1.mlp.down_proj.weight" in names
    assert ("lm_head.weight" in names) == (not config.tie_embeddings)
    assert ("pos_embed.weight" in names) == (config.position == "learned")
    assert ("blocks.0.attn.q_norm.weight" in names) == config.qk_norm
    assert ("blocks.0.mlp.gate_proj.weight" in names) == config.gated_mlp
    assert ("blocks.0.attn.q_proj.bias" in names) == config.attn_bias
    assert ("final_norm.bias" in names) == (config.norm_type == "layernorm")


def test_gradient_checkpointing_gives_same_grads(config):
    seqs = random_sequences(config.vocab_size, LENS)
    ids, cu = pack(seqs)
    grads = []
    for ckpt in (False, True):
        model = model_for(config).train()
        model.gradient_checkpointing = ckpt
        model(ids, cu).logsumexp(-1).sum().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], atol=1e-6, rtol=0, msg=name)


def test_sliding_window_limits_context():
    """With a window of w, logits at position p ignore tokens before p - w + 1."""
    cfg = dataclasses.replace(TransformerConfig(vocab_size=50, hidden_size=32, n_q_heads=4),
                              sliding_window=4)
    model = model_for(cfg)
    a = torch.randint(0, 50, (12,), generator=torch.Generator().manual_seed(0))
    b = a.clone()
    b[:2] = (a[:2] + 1) % 50  # differs only at positions 0 and 1
    with torch.no_grad():
        la, lb = model(a, torch.tensor([0, 12])), model(b, torch.tensor([0, 12]))
    # Position p sees p-3..p in layer 1; two layers reach back 6 tokens: p >= 8 is unaffected.
    torch.testing.assert_close(la[8:], lb[8:], atol=1e-6, rtol=0)
    assert (la[2:5] - lb[2:5]).abs().max() > 1e-3


def test_bf16_forward_runs_and_stays_close():
    cfg = TransformerConfig(vocab_size=64, hidden_size=32, n_q_heads=4, n_kv_heads=2)
    model = model_for(cfg)
    ids, cu = pack(random_sequences(64, LENS))
    with torch.no_grad():
        ref = model(ids, cu)
        low = model.to(torch.bfloat16)(ids, cu)
    assert low.dtype == torch.bfloat16
    assert (low.float() - ref).abs().max() < 0.1 * ref.abs().max()


YARN = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 64}


@pytest.mark.parametrize("scaling", [
    None, {"rope_type": "linear", "factor": 4.0},
    {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
     "original_max_position_embeddings": 64},
    YARN,  # Qwen2.5 / Qwen3 long-context style
    {**YARN, "beta_fast": 16, "beta_slow": 2, "truncate": False},
    {**YARN, "mscale": 0.707, "mscale_all_dim": 1.0},  # DeepSeek style attention factor
    {**YARN, "attention_factor": 1.3},
])
def test_rope_frequencies_match_transformers(scaling):
    import transformers
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    cfg = TransformerConfig(hidden_size=128, n_q_heads=2, rope_theta=500000.0, rope_scaling=scaling)
    params = {"rope_theta": 500000.0, **(scaling or {"rope_type": "default"})}
    hf = transformers.LlamaConfig(hidden_size=128, num_attention_heads=2, rope_parameters=params)
    if scaling is None:
        expected, factor = transformers.models.llama.modeling_llama.LlamaRotaryEmbedding(hf).inv_freq, 1.0
    else:
        expected, factor = ROPE_INIT_FUNCTIONS[scaling["rope_type"]](hf)
    torch.testing.assert_close(rope_inv_freq(cfg), expected, atol=0, rtol=1e-6)
    assert rope_attention_factor(cfg) == pytest.approx(factor, rel=1e-9)


LONGROPE = {"rope_type": "longrope", "original_max_position_embeddings": 64,
            "short_factor": [1.0 + 0.1 * i for i in range(32)], "long_factor": [1.0 + i for i in range(32)]}


@pytest.mark.parametrize("scaling, seq_len", [
    ({"rope_type": "dynamic", "factor": 4.0}, None),  # within max_positions: plain frequencies
    ({"rope_type": "dynamic", "factor": 4.0}, 700),  # past it: theta grows
    (LONGROPE, 64), (LONGROPE, 65), ({**LONGROPE, "attention_factor": 1.1}, 500),
])
def test_length_dependent_rope_matches_transformers(scaling, seq_len):
    from transformers import LlamaConfig
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    cfg = TransformerConfig(hidden_size=128, n_q_heads=2, rope_theta=500000.0, rope_scaling=scaling,
                            max_positions=512)
    hf = LlamaConfig(hidden_size=128, num_attention_heads=2, max_position_embeddings=512,
                     rope_parameters={"rope_theta": 500000.0, **scaling})
    expected, factor = ROPE_INIT_FUNCTIONS[scaling["rope_type"]](hf, seq_len=seq_len)
    torch.testing.assert_close(rope_inv_freq(cfg, seq_len), expected, atol=0, rtol=1e-6)
    assert rope_attention_factor(cfg) == pytest.approx(factor, rel=1e-9)


def test_gemma_unit_offset_norm_matches_transformers():
    from transformers.models.gemma.modeling_gemma import GemmaRMSNorm

    ours, theirs = RMSNorm(16, 1e-6, unit_offset=True), GemmaRMSNorm(16, eps=1e-6)
    with torch.no_grad():
        ours.weight.normal_()
        theirs.weight.copy_(ours.weight)
    x = torch.randn(5, 16)
    torch.testing.assert_close(ours(x), theirs(x), atol=1e-6, rtol=0)


@pytest.mark.parametrize("window, softcap", [(None, None), (3, None), (None, 0.5), (3, 0.5)])
@pytest.mark.parametrize("kv_heads", [4, 2, 1])
def test_attention_fallbacks_agree(window, softcap, kv_heads, packed_qkv):
    q, k, v, seqlens = packed_qkv(kv_heads)
    ref = sdpa_loop(q, k, v, seqlens, 0.35, window, softcap)
    # Naive reference for the first sequence: softmax over allowed keys only.
    kk = k[:5].repeat_interleave(4 // kv_heads, 1)
    scores = torch.einsum("qhd,khd->hqk", q[:5], kk) * 0.35
    if softcap:  # Gemma 2: scores -> cap * tanh(scores / cap)
        scores = softcap * torch.tanh(scores / softcap)
    i, j = torch.arange(5)[:, None], torch.arange(5)[None, :]
    allowed = (j <= i) & ((i - j < window) if window else True)
    naive = torch.einsum("hqk,khd->qhd", scores.masked_fill(~allowed, float("-inf")).softmax(-1),
                         v[:5].repeat_interleave(4 // kv_heads, 1))
    torch.testing.assert_close(ref[:5], naive, atol=1e-5, rtol=0)
    for fn in (sdpa_padded, sdpa_auto):
        torch.testing.assert_close(fn(q, k, v, seqlens, 0.35, window, softcap), ref, atol=1e-5, rtol=0)
    if softcap:  # the cap changes the result: the test would see it ignored
        assert (sdpa_loop(q, k, v, seqlens, 0.35, window) - ref).abs().max() > 1e-2


def test_bad_cu_seqlens_is_an_error():
    model = model_for(TransformerConfig(vocab_size=20, hidden_size=16, n_q_heads=2))
    with pytest.raises(ValueError, match="cu_seqlens"):
        model(torch.zeros(5, dtype=torch.long), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="cu_seqlens"):
        model(torch.zeros(5, dtype=torch.long), torch.tensor([0, 3, 3, 5]))


def test_check_cu_seqlens():
    assert check_cu_seqlens(torch.tensor([0, 3, 5]), 5) == [3, 2]
    for bad in ([0, 3], [1, 5], [0, 3, 3, 5], [0]):
        with pytest.raises(ValueError, match=r"cu_seqlens must start at 0.*len\(input_ids\)=5"):
            check_cu_seqlens(torch.tensor(bad), 5)


def test_flash_path_reads_only_the_longest_length(monkeypatch):
    """Where flash-attn runs (CUDA), a forward reads max_seqlen once, never every length."""
    seen = []

    def fake_flash(q, k, v, cu, cu_k, max_q, max_k, softmax_scale, causal, window_size):
        seen.append(max_q)
        return sdpa_loop(q, k, v, (cu[1:] - cu[:-1]).tolist(), softmax_scale)

    model = model_for(TransformerConfig(vocab_size=20, hidden_size=16, n_q_heads=2, n_layers=2))
    ids, cu = torch.randint(0, 20, (9,)), torch.tensor([0, 2, 7, 9])
    expected = model(ids, cu)
    monkeypatch.setattr(attention, "_flash_for", lambda q: fake_flash)
    ctx = PackedContext(cu, None)
    positions = torch.tensor([0, 1, 0, 1, 2, 3, 4, 0, 1])
    torch.testing.assert_close(model.head(model._trunk(ids, positions, ctx)), expected)
    assert seen == [5, 5] and ctx._seqlens is None


def test_learned_positions_beyond_max_is_an_error():
    cfg = TransformerConfig(vocab_size=20, hidden_size=16, n_q_heads=2, position="learned",
                            max_positions=8)
    with pytest.raises(ValueError, match="max_positions=8"):
        Transformer(cfg)(torch.zeros(9, dtype=torch.long), torch.tensor([0, 9]))


@pytest.mark.parametrize("change, message", [
    ({"n_q_heads": 6, "n_kv_heads": 4}, "multiple of n_kv_heads"),
    ({"norm_type": "batchnorm"}, "norm_type"),
    ({"activation": "relu2"}, "activation"),
    ({"rope_scaling": {"rope_type": "yarn", "factor": 2.0}}, "yarn"),
    ({"rope_scaling": {"rope_type": "llama3", "factor": 8.0}}, "low_freq_factor"),
    ({"position": "learned", "rope_scaling": {"rope_type": "linear", "factor": 2.0}}, "learned"),
    ({"sliding_window": 0}, "sliding_window"),
    ({"head_dim": 7}, "even"),
    ({"norm_type": "layernorm", "norm_unit_offset": True}, "rmsnorm"),
    ({"n_layers": 2, "sliding_layers": [True]}, "sliding_layers must be None or 2 bools"),
    ({"attn_softcap": 0.0}, "attn_softcap must be > 0"),
    ({"rope_scaling": {"rope_type": "longrope", "short_factor": [1.0], "long_factor": [1.0],
                       "original_max_position_embeddings": 8}}, "short_factor has 1 values"),
])
def test_config_validate_names_the_field(change, message):
    with pytest.raises(ConfigError, match=message):
        TransformerConfig(**change).validate()


def test_config_dict_round_trip_and_unknown_keys():
    cfg = TransformerConfig(n_q_heads=8, n_kv_heads=2, rope_scaling={"rope_type": "linear", "factor": 2})
    assert TransformerConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.head_dim == 8 and TransformerConfig(n_q_heads=4).n_kv_heads == 4
    with pytest.raises(ConfigError, match="n_head"):
        TransformerConfig.from_dict({"n_head": 4})


def test_importing_config_does_not_import_torch():
    code = "import sys, rlcore, rlcore.models.config; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_auto_fallback_pads_similar_lengths_and_loops_over_uneven_ones(monkeypatch):
    """sdpa_auto picks one padded call for similar lengths, one call per sequence otherwise."""
    calls = []
    for fn in ("sdpa_padded", "sdpa_loop"):
        real = getattr(attention, fn)
        monkeypatch.setattr(attention, fn, lambda *a, _r=real, _n=fn, **kw: calls.append(_n) or _r(*a, **kw))
    q = torch.randn(40, 2, 8)
    attention.sdpa_auto(q, q[:, :1], q[:, :1], [10, 10, 11, 9], 0.3)
    attention.sdpa_auto(q, q[:, :1], q[:, :1], [37, 1, 1, 1], 0.3)
    assert calls == ["sdpa_padded", "sdpa_loop"]


def test_fallback_gradients_agree():
    gen = torch.Generator().manual_seed(0)
    seqlens = [5, 1, 9, 3]
    q, k, v = (torch.randn(18, 4, 8, generator=gen, requires_grad=True) for _ in range(3))
    weights = torch.randn(18, 4, 8, generator=gen)
    grads = []
    for fn in (sdpa_loop, sdpa_padded):
        (fn(q, k, v, seqlens, 0.3, None) * weights).sum().backward()
        grads.append([t.grad.clone() for t in (q, k, v)])
        for t in (q, k, v):
            t.grad = None
    for other in grads[1:]:
        for a, b in zip(grads[0], other, strict=True):
            torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
