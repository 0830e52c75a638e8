"""The core decoder-only transformer, on packed (padding-free) batches.

One model serves every HF family: a family plugin maps its config and weights onto
:class:`~rlcore.models.config.TransformerConfig` and the parameter names below.
Input is flat token ids ``[T]`` plus ``cu_seqlens`` ``[B+1]``; positions restart at each sequence.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from rlcore.models.attention import KVCache, PackedContext, check_cu_seqlens
from rlcore.models.config import TransformerConfig, rope_scaling_type
from rlcore.models.moe import MoE
from rlcore.models.token_logprobs import TokenQuery, score_tokens

# ----------------------------------------------------------------------------- building blocks


class RMSNorm(nn.Module):
    """RMSNorm computed in fp32; ``unit_offset`` scales by (1 + weight) like Gemma."""

    def __init__(self, dim: int, eps: float, unit_offset: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(dim) if unit_offset else torch.ones(dim))
        self.eps, self.unit_offset = eps, unit_offset

    def forward(self, x):
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        if self.unit_offset:
            return (h * (1.0 + self.weight.float())).type_as(x)
        return self.weight * h.to(x.dtype)


def make_norm(cfg: TransformerConfig, dim: int) -> nn.Module:
    """The configured normalisation layer over ``dim`` features."""
    if cfg.norm_type == "layernorm":
        return nn.LayerNorm(dim, eps=cfg.norm_eps)
    return RMSNorm(dim, cfg.norm_eps, cfg.norm_unit_offset)


ACTIVATIONS = {
    "gelu": F.gelu,
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "silu": F.silu,
    "relu": F.relu,
    "quick_gelu": lambda x: x * torch.sigmoid(1.702 * x),
}


def rope_inv_freq(cfg: TransformerConfig, seq_len: int | None = None) -> torch.Tensor:
    """RoPE inverse frequencies ``[head_dim/2]`` in fp32, with linear, Llama-3, YaRN, dynamic NTK
    or LongRoPE scaling; the last two depend on ``seq_len``, the longest sequence of the forward."""
    d, rs = cfg.rotary_dim, cfg.rope_scaling
    exponents = torch.arange(0, d, 2, dtype=torch.int64, device="cpu").float() / d
    kind = rope_scaling_type(rs) if rs else "default"
    if kind == "longrope":  # Phi-3: per-frequency divisors, the long set past the original context
        long = seq_len is not None and seq_len > rs["original_max_position_embeddings"]
        ext = torch.tensor(rs["long_factor" if long else "short_factor"], dtype=torch.float32, device="cpu")
        return 1.0 / (ext * cfg.rope_theta**exponents)
    if kind == "dynamic":  # NTK: theta grows with sequences longer than max_positions
        native, factor = cfg.max_positions, float(rs["factor"])
        grown = factor * max(seq_len or 0, native) / native - (factor - 1)
        return 1.0 / ((cfg.rope_theta * grown ** (d / (d - 2))) ** exponents)
    inv_freq = 1.0 / (cfg.rope_theta**exponents)
    if not rs:
        return inv_freq
    factor = float(rs["factor"])
    if kind == "linear":
        return inv_freq / factor
    if kind == "yarn":
        return _yarn_inv_freq(inv_freq, rs, d, cfg.rope_theta)
    # Llama 3.1: keep high frequencies, divide low ones by factor, interpolate in between.
    old_len = rs["original_max_position_embeddings"]
    low, high = rs["low_freq_factor"], rs["high_freq_factor"]
    wavelen = 2 * math.pi / inv_freq
    scaled = torch.where(wavelen > old_len / low, inv_freq / factor, inv_freq)
    smooth = (old_len / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    is_medium = ~(wavelen < old_len / high) * ~(wavelen > old_len / low)
    return torch.where(is_medium, smoothed, scaled)


def _yarn_inv_freq(inv_freq: torch.Tensor, rs: dict, d: int, theta: float) -> torch.Tensor:
    """YaRN: frequencies turning more than ``beta_fast`` times over the original context are kept,
    those turning fewer than ``beta_slow`` times are divided by ``factor``; a linear ramp between."""
    old_len = rs["original_max_position_embeddings"]

    def dim_turning(turns: float) -> float:  # the rotary dim that turns `turns` times in old_len
        return d * math.log(old_len / (turns * 2 * math.pi)) / (2 * math.log(theta))

    low, high = dim_turning(rs.get("beta_fast") or 32), dim_turning(rs.get("beta_slow") or 1)
    if rs.get("truncate", True):
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, d - 1)
    dims = torch.arange(d // 2, dtype=torch.float32, device="cpu")
    ramp = ((dims - low) / max(high - low, 1e-3)).clamp(0, 1)
    return inv_freq / float(rs["factor"]) * ramp + inv_freq * (1 - ramp)


def rope_attention_factor(cfg: TransformerConfig) -> float:
    """The factor on cos/sin: YaRN's or LongRoPE's ``attention_factor`` (given, or derived), else 1."""
    rs = cfg.rope_scaling
    if rs and rope_scaling_type(rs) == "longrope":
        if rs.get("attention_factor") is not None:
            return float(rs["attention_factor"])
        old_len = rs["original_max_position_embeddings"]
        factor = float(rs.get("factor") or cfg.max_positions / old_len)
        return math.sqrt(1 + math.log(factor) / math.log(old_len)) if factor > 1 else 1.0
    if not rs or rope_scaling_type(rs) != "yarn":
        return 1.0
    if rs.get("attention_factor") is not None:
        return float(rs["attention_factor"])
    factor = float(rs["factor"])

    def mscale(m: float = 1.0) -> float:
        return 1.0 if factor <= 1 else 0.1 * m * math.log(factor) + 1.0

    m, m_all = rs.get("mscale"), rs.get("mscale_all_dim")
    return mscale(m) / mscale(m_all) if m and m_all else mscale()


def apply_rope(x, cos, sin, interleaved: bool = False):
    """Rotate ``x [T, H, D]`` by per-token angles (HF's rotate-half convention, or pairs of
    neighbours when ``interleaved``); with partial rotary, only the first ``cos.shape[-1]`` dims
    turn and the rest pass through."""
    rot = cos.shape[-1]
    if rot < x.shape[-1]:
        return torch.cat((apply_rope(x[..., :rot], cos, sin, interleaved), x[..., rot:]), dim=-1)
    if interleaved:
        return x * cos + torch.stack((-x[..., 1::2], x[..., 0::2]), dim=-1).flatten(-2) * sin
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat((-x2, x1), dim=-1) * sin


# ----------------------------------------------------------------------------- the layers


class Attention(nn.Module):
    """Multi-head attention with GQA/MQA, optional q/k norm, RoPE and sliding window."""

    def __init__(self, cfg: TransformerConfig, layer_idx: int):
        super().__init__()
        self.layer_idx, self.head_dim = layer_idx, cfg.head_dim
        self.scale = (cfg.attn_scale_base or cfg.head_dim) ** -0.5
        self.window = cfg.sliding_window if cfg.layer_slides(layer_idx) else None
        self.softcap, self.rope_interleaved = cfg.attn_softcap, cfg.rope_interleaved
        self.q_proj = nn.Linear(cfg.hidden_size, cfg.n_q_heads * cfg.head_dim, bias=cfg.attn_bias)
        self.k_proj = nn.Linear(cfg.hidden_size, cfg.n_kv_heads * cfg.head_dim, bias=cfg.attn_bias)
        self.v_proj = nn.Linear(cfg.hidden_size, cfg.n_kv_heads * cfg.head_dim, bias=cfg.attn_bias)
        self.o_proj = nn.Linear(cfg.n_q_heads * cfg.head_dim, cfg.hidden_size, bias=cfg.attn_out_bias)
        if cfg.qk_norm:  # over each head, or over all heads at once (OLMoE)
            heads = (cfg.n_q_heads, cfg.n_kv_heads) if cfg.qk_norm_all_heads else (1, 1)
            self.q_norm = RMSNorm(cfg.head_dim * heads[0], cfg.norm_eps, cfg.norm_unit_offset)
            self.k_norm = RMSNorm(cfg.head_dim * heads[1], cfg.norm_eps, cfg.norm_unit_offset)
        self.qk_norm = ("all" if cfg.qk_norm_all_heads else "head") if cfg.qk_norm else None
        self.clip = cfg.qkv_clip

    def forward(self, x, rope, ctx):
        """``x [T, C]`` -> ``[T, C]``; ``ctx`` (packed batch or KV cache) does the attending."""
        t = x.shape[0]
        q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)
        if self.qk_norm == "all":
            q, k = self.q_norm(q), self.k_norm(k)
        if self.clip is not None:
            q, k, v = (z.clamp(-self.clip, self.clip) for z in (q, k, v))
        q, k, v = (z.view(t, -1, self.head_dim) for z in (q, k, v))
        if self.qk_norm == "head":
            q, k = self.q_norm(q), self.k_norm(k)
        if rope is not None:
            q, k = (apply_rope(z, *rope, self.rope_interleaved) for z in (q, k))
        o = ctx.attend(self.layer_idx, q, k, v, self.scale, self.window, self.softcap)
        return self.o_proj(o.reshape(t, -1))


class MLP(nn.Module):
    """Feed-forward: ``down(act(gate(x)) * up(x))`` when gated, else ``down(act(up(x)))``."""

    def __init__(self, cfg: TransformerConfig, size: int | None = None):
        super().__init__()
        size = size or cfg.intermediate_size
        if cfg.gated_mlp:
            self.gate_proj = nn.Linear(cfg.hidden_size, size, bias=cfg.mlp_bias)
        self.up_proj = nn.Linear(cfg.hidden_size, size, bias=cfg.mlp_bias)
        self.down_proj = nn.Linear(size, cfg.hidden_size, bias=cfg.mlp_bias)
        self.act, self.gated = ACTIVATIONS[cfg.activation], cfg.gated_mlp

    def forward(self, x):
        if self.gated:
            return self.down_proj(self.act(self.gate_proj(x)) * self.up_proj(x))
        return self.down_proj(self.act(self.up_proj(x)))


class Block(nn.Module):
    """Pre-norm residual block: attention, then MLP (or mixture of experts); with
    ``sandwich_norms`` each output is normed too."""

    def __init__(self, cfg: TransformerConfig, layer_idx: int):
        super().__init__()
        self.attn_norm = make_norm(cfg, cfg.hidden_size)
        self.attn = Attention(cfg, layer_idx)
        self.mlp_norm = make_norm(cfg, cfg.hidden_size)
        if cfg.is_moe_layer(layer_idx):
            shared = MLP(cfg, cfg.shared_expert_size) if cfg.shared_expert_size else None
            self.mlp = MoE(cfg, ACTIVATIONS[cfg.activation], shared)
        else:
            self.mlp = MLP(cfg)
        post_norm = (lambda: make_norm(cfg, cfg.hidden_size)) if cfg.sandwich_norms else nn.Identity
        self.attn_post_norm, self.mlp_post_norm = post_norm(), post_norm()

    def forward(self, x, rope, ctx):
        x = x + self.attn_post_norm(self.attn(self.attn_norm(x), rope, ctx))
        return x + self.mlp_post_norm(self.mlp(self.mlp_norm(x)))


# ----------------------------------------------------------------------------- the model


class Transformer(nn.Module):
    """Decoder-only transformer: ``forward(input_ids [T], cu_seqlens [B+1])`` -> logits or values."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.config = cfg = config.validate()
        self.embed = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        if cfg.position == "learned":
            self.pos_embed = nn.Embedding(cfg.max_positions, cfg.hidden_size)
        self.blocks = nn.ModuleList(Block(cfg, i) for i in range(cfg.n_layers))
        self.final_norm = make_norm(cfg, cfg.hidden_size)
        if cfg.value_head:
            self.value_head = nn.Linear(cfg.hidden_size, 1, bias=False)
        elif not cfg.tie_embeddings:
            self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        # RoPE frequencies by cfg.layer_rope kind. Plain attributes, not buffers: they stay fp32
        # when the model is cast to bf16.
        self._inv_freqs = {"global": rope_inv_freq(cfg)} if cfg.position == "rotary" else {}
        if cfg.rope_local_theta:  # Gemma 3's sliding layers: plain RoPE with their own theta
            local = dataclasses.replace(cfg, rope_theta=cfg.rope_local_theta, rope_scaling=None)
            self._inv_freqs["local"] = rope_inv_freq(local)
        self._rope_scale = rope_attention_factor(cfg)
        self._rope_per_forward = rope_scaling_type(cfg.rope_scaling or {}) in ("dynamic", "longrope")
        self.gradient_checkpointing = False
        self.loss_kernel = "chunked"  # of token log-probs: chunked | liger | auto (models/loss_kernel.py)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, input_ids, cu_seqlens, query: TokenQuery | None = None):
        """Logits ``[T, vocab]`` (or values ``[T]`` with a value head) of a packed batch.

        With ``query``: ``(logprobs [N], entropy [N] or None)`` of the queried positions only,
        computed in chunks without ever holding ``[T, vocab]`` logits (see ``token_logprobs``).
        """
        h = self.hidden_states(input_ids, cu_seqlens)
        if query is None:
            return self.head(h)
        if self.config.value_head:
            raise ValueError("a value-head model has no token log-probs; call it without a query")
        return score_tokens(h, self.head_weight(), query, self.loss_kernel, self.config.final_softcap)

    def hidden_states(self, input_ids, cu_seqlens, cache: KVCache | None = None):
        """Final-normed hidden states ``[T, C]``; with ``cache``, also stores the prompt K/V."""
        n = input_ids.shape[0]
        # Checked on the host only off-GPU: on CUDA that would sync every forward, and the
        # offsets come from PackedBatch.cu_seqlens or generate(), which build them valid.
        seqlens = None if input_ids.is_cuda else check_cu_seqlens(cu_seqlens, n)
        starts = torch.repeat_interleave(cu_seqlens[:-1], cu_seqlens[1:] - cu_seqlens[:-1],
                                         output_size=n)
        positions = torch.arange(n, device=input_ids.device) - starts
        ctx = PackedContext(cu_seqlens, seqlens, cache)
        return self._trunk(input_ids, positions, ctx)

    def decode(self, input_ids, cache: KVCache):
        """One decode step for every row of ``cache``: ``input_ids [B]`` -> logits ``[B, vocab]``."""
        cache.begin_step()
        h = self._trunk(input_ids, cache.positions, cache)
        cache.advance()
        return self.head(h)

    def head(self, h):
        """LM head (tied or not) or scalar value head on final hidden states."""
        if self.config.value_head:
            return self.value_head(h).squeeze(-1)
        logits, cap = F.linear(h, self.head_weight()), self.config.final_softcap
        return logits if cap is None else cap * torch.tanh(logits / cap)

    def head_weight(self) -> torch.Tensor:
        """The LM head's ``[vocab, C]`` weight (the embedding when tied)."""
        return self.embed.weight if self.config.tie_embeddings else self.lm_head.weight

    def new_cache(self, prompt_lens: list[int], max_new_tokens: int) -> KVCache:
        """An empty KV cache for prompts of these lengths plus ``max_new_tokens`` steps."""
        cfg, w = self.config, self.embed.weight
        return KVCache(cfg.n_layers, prompt_lens, max_new_tokens, cfg.n_kv_heads, cfg.head_dim,
                       w.dtype, w.device)

    def _trunk(self, input_ids, positions, ctx):
        """Embed, run every block (checkpointed if asked), final norm."""
        x = self.embed(input_ids)
        if self.config.embed_scale:  # Gemma: sqrt(hidden) rounded to the embedding dtype, as HF does
            x = x * torch.tensor(self.config.hidden_size**0.5, dtype=x.dtype)
        if self.config.position == "learned":
            if int(positions.max()) >= self.config.max_positions:
                raise ValueError(f"a sequence is longer than max_positions={self.config.max_positions}")
            x = x + self.pos_embed(positions)
        ropes = self._layer_ropes(positions, x.dtype)
        for block, rope in zip(self.blocks, ropes, strict=True):
            if self.gradient_checkpointing and torch.is_grad_enabled():
                x = checkpoint(block, x, rope, ctx, use_reentrant=False)
            else:
                x = block(x, rope, ctx)
        return self.final_norm(x)

    def _layer_ropes(self, positions, dtype) -> list:
        """Each block's cos/sin: the global RoPE, the local one (Gemma 3 sliding layers) or None."""
        kinds = [self.config.layer_rope(i) for i in range(self.config.n_layers)]
        ropes = {kind: self._rope(positions, dtype, kind) for kind in set(kinds) - {None}}
        return [ropes.get(kind) for kind in kinds]

    def _rope(self, positions, dtype, kind: str = "global"):
        """cos/sin ``[T, 1, head_dim]`` for these positions, computed in fp32."""
        if self._rope_per_forward and kind == "global":  # the longest position picks them (syncs CUDA)
            self._inv_freqs[kind] = rope_inv_freq(self.config, int(positions.max()) + 1)
        inv_freq = self._inv_freqs[kind] = self._inv_freqs[kind].to(positions.device)
        freqs = positions.float()[:, None] * inv_freq[None, :]
        if self.config.rope_interleaved:  # angles for dim pairs (0, 1), (2, 3), ...
            emb = freqs.repeat_interleave(2, dim=-1)[:, None, :]
        else:
            emb = torch.cat((freqs, freqs), dim=-1)[:, None, :]
        cos, sin = emb.cos(), emb.sin()
        scale = self._rope_scale if kind == "global" else 1.0
        if scale != 1.0:
            cos, sin = cos * scale, sin * scale
        return cos.to(dtype), sin.to(dtype)
