"""Batched KV-cache generation for the core transformer: greedy, temperature, top-k, top-p.

Prompts of different lengths are prefilled as one packed batch, then decoded in lockstep
from a preallocated cache; rows that hit EOS leave the batch. Sampling uses the Gumbel-max
trick with noise from ``generator``, so a seed fixes the output. ``record_routing`` keeps
each token's experts per MoE layer (prefill and decode steps) for routing replay at train time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from rlcore.errors import ConfigError
from rlcore.models.kept_tokens import KeptTokens
from rlcore.models.moe import moe_layers


@dataclass
class GenerationConfig:
    """How to pick new tokens; ``top_k=0`` and ``top_p=1.0`` switch those filters off."""

    max_new_tokens: int = 64
    min_new_tokens: int = 0  # EOS is forbidden before this many new tokens
    greedy: bool = False
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    eos_token_ids: list[int] = field(default_factory=list)
    record_routing: bool = False  # keep each token's experts (MoE models; routing replay)

    def validate(self) -> GenerationConfig:
        """Raise ConfigError naming the first bad field; return self."""
        if self.max_new_tokens < 1:
            raise ConfigError(f"GenerationConfig.max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if not 0 <= self.min_new_tokens <= self.max_new_tokens:
            raise ConfigError(f"GenerationConfig.min_new_tokens must be in [0, max_new_tokens="
                              f"{self.max_new_tokens}], got {self.min_new_tokens}")
        if not self.greedy and self.temperature <= 0:
            raise ConfigError(f"GenerationConfig.temperature must be > 0 when sampling, got "
                              f"{self.temperature}; use greedy=True for argmax decoding")
        if self.top_k < 0:
            raise ConfigError(f"GenerationConfig.top_k must be >= 0 (0 = off), got {self.top_k}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"GenerationConfig.top_p must be in (0, 1], got {self.top_p}")
        return self


@dataclass
class GenerationOutput:
    """Per prompt: new ``tokens`` [n], their ``logprobs`` [n] and the ``kept`` tokens or None.

    ``logprobs`` are under the processed distribution (after min-tokens, temperature, top-k/p);
    ``kept`` holds the tokens allowed at each of the n steps, None when nothing was ever cut;
    ``routing`` (``record_routing`` only) int16 ``[prompt + n, moe layers, k]`` expert ids of
    every token the model routed, -1 on the last new token (never fed to the model).
    """

    tokens: list[torch.Tensor]
    logprobs: list[torch.Tensor]
    kept: list[KeptTokens | None]
    vocab_size: int
    routing: list[torch.Tensor] | None = None

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def logits_mask(self) -> list[torch.Tensor | None]:
        """Per prompt, bool ``[n, vocab]`` (True = allowed) or None: ``kept`` made dense."""
        return [None if k is None else k.to_mask(self.vocab_size) for k in self.kept]


def process_logits(logits, step: int, g: GenerationConfig):
    """Apply min-tokens, temperature, top-k and top-p to fp32 logits ``[B, V]``.

    Returns the processed logits (cut tokens at -inf) and whether anything was cut.
    """
    cut = False
    if step < g.min_new_tokens and g.eos_token_ids:
        logits[:, g.eos_token_ids] = float("-inf")
        cut = True
    if g.greedy:
        return logits, cut
    if g.temperature != 1.0:
        logits = logits / g.temperature
    if 0 < g.top_k < logits.shape[-1]:
        kth = torch.topk(logits, g.top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
        cut = True
    if g.top_p < 1.0:
        # Drop the low-probability tail whose total mass is <= 1 - top_p (always keep the top token).
        sorted_logits, order = torch.sort(logits, dim=-1)
        tail = sorted_logits.softmax(-1).cumsum(-1) <= 1 - g.top_p
        tail[:, -1] = False
        logits = logits.masked_fill(tail.scatter(1, order, tail), float("-inf"))
        cut = True
    return logits, cut


def sample(logits, g: GenerationConfig, generator: torch.Generator | None):
    """Token ids ``[B]`` from processed logits: argmax, or Gumbel-max with generator noise."""
    if g.greedy:
        return logits.argmax(-1)
    device = generator.device if generator is not None else logits.device
    u = torch.rand(logits.shape, generator=generator, device=device).to(logits.device)
    return (logits - torch.log(-torch.log(u))).argmax(-1)


@torch.inference_mode()
def generate(model, prompts: list[list[int]], gconfig: GenerationConfig,
             generator: torch.Generator | None = None, seed: int | None = None,
             before_decode: Callable[[], None] | None = None) -> GenerationOutput:
    """Generate continuations of ``prompts`` with ``model`` (a core Transformer with an LM head).

    ``before_decode`` runs before each decode step (new token t >= 1 comes from the weights the
    model has after its t-th call): a rollout worker loads newer weights there."""
    g = gconfig.validate()
    cfg = model.config
    if cfg.value_head:
        raise ConfigError("generate() needs a model with an LM head; this one has a value head")
    if not prompts or min(len(p) for p in prompts) < 1:
        raise ConfigError("generate() needs at least one prompt, each with at least one token")
    lens = [len(p) for p in prompts]
    if cfg.position == "learned" and max(lens) + g.max_new_tokens > cfg.max_positions:
        raise ConfigError(f"prompt ({max(lens)} tokens) + max_new_tokens ({g.max_new_tokens}) "
                          f"exceeds max_positions={cfg.max_positions}")
    if generator is None and seed is not None:
        generator = torch.Generator(model.embed.weight.device).manual_seed(seed)
    device = model.embed.weight.device
    eos = torch.tensor(g.eos_token_ids, device=device, dtype=torch.long)

    cache = model.new_cache(lens, g.max_new_tokens)
    ids = torch.tensor([t for p in prompts for t in p], device=device)
    cu = torch.tensor([0, *lens], device=device).cumsum(0)
    layers = moe_layers(model) if g.record_routing else []
    if g.record_routing and not layers:
        raise ConfigError("GenerationConfig.record_routing=True needs a mixture-of-experts model; this "
                          "one has no MoE layers (switch routing replay off for dense models)")
    logits = model.head(model.hidden_states(ids, cu, cache)[cu[1:] - 1])
    routes = [(None, _routes(layers))] if layers else []  # (rows or None: the prefill, ids)

    n = len(prompts)
    rows = torch.arange(n, device=device)  # original index of each active row
    steps: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]] = []
    for step in range(g.max_new_tokens):
        processed, cut = process_logits(logits.float(), step, g)
        tok = sample(processed, g, generator)
        logprob = processed.log_softmax(-1).gather(1, tok[:, None])[:, 0]
        steps.append((rows, tok, logprob, KeptTokens.from_mask(torch.isfinite(processed))
                      if cut else KeptTokens.empty(len(rows), device)))
        if step == g.max_new_tokens - 1:
            break
        alive = ~torch.isin(tok, eos)
        if not bool(alive.all()):
            if not bool(alive.any()):
                break
            cache.select(alive.nonzero()[:, 0])
            rows, tok = rows[alive], tok[alive]
        if before_decode is not None:
            before_decode()
        logits = model.decode(tok, cache)
        if layers:
            routes.append((rows, _routes(layers)))
    out = _collect(steps, n, cfg.vocab_size)
    if layers:
        out.routing = _collect_routing(routes, lens, [len(t) for t in out.tokens])
    return out


def _routes(layers) -> torch.Tensor:
    """int16 ``[T, layers, k]``: the experts each MoE layer chose in the last forward."""
    return torch.stack([m.chosen for m in layers], 1).to(torch.int16)


def _collect_routing(routes, lens: list[int], new: list[int]) -> list[torch.Tensor]:
    """Per prompt ``[prompt + new, layers, k]``: prefill rows, then decode rows; -1 where unfed."""
    prefill = routes[0][1].cpu().split(lens)
    steps = routes[1:] or [(torch.zeros(0, dtype=torch.long), routes[0][1][:0])]
    rows = torch.cat([r for r, _ in steps]).cpu()
    decoded = torch.cat([x for _, x in steps]).cpu()
    order = torch.sort(rows, stable=True).indices
    per_prompt = decoded[order].split(torch.bincount(rows, minlength=len(lens)).tolist())
    out = []
    for p, d, n in zip(prefill, per_prompt, new, strict=True):
        pad = p.new_full((n - len(d), *p.shape[1:]), -1)  # the last new token: never fed
        out.append(torch.cat([p, d, pad]))
    return out


def _collect(steps, n: int, vocab: int) -> GenerationOutput:
    """Regroup per-step rows into per-prompt tensors."""
    rows = torch.cat([s[0] for s in steps])
    tok = torch.cat([s[1] for s in steps]).cpu()
    logprob = torch.cat([s[2] for s in steps]).cpu()
    kept_all = KeptTokens.cat([s[3] for s in steps]).to("cpu")
    # Rows were appended step by step, so a stable sort by row keeps each prompt's tokens in order.
    order = torch.sort(rows.cpu(), stable=True).indices
    counts = torch.bincount(rows.cpu(), minlength=n).tolist()
    tokens = list(tok[order].split(counts))
    logprobs = list(logprob[order].split(counts))
    kept: list[KeptTokens | None] = [None] * n
    if kept_all.any_cut():
        for i, k in enumerate(kept_all.select(order).split(counts)):
            kept[i] = k if k.any_cut() else None
    return GenerationOutput(tokens, logprobs, kept, vocab)
