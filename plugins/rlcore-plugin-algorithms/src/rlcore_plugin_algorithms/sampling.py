"""The sampler: the actor's sampled responses as packed sequences (``rlcore.data.trajectory``
names every key), and their log-probs replayed as sampling saw them.

A generated batch holds, per prompt sample, ``n_samples`` sequences of prompt + response
(:data:`~rlcore.data.trajectory.ROLLOUT`, plus the tokens sampling kept,
:data:`~rlcore.data.trajectory.KEPT_TOKENS`, only when sampling can cut tokens: top-k, top-p,
min-tokens; and ``routed_experts`` with ``actor.moe.router_replay``, see
:mod:`rlcore_plugin_algorithms.routing`). :class:`SamplerInterface` takes only generation options
and a seed.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

import torch

from rlcore.sdk import (
    PROMPT_MASK,
    PROMPTS,
    GenerationConfig,
    KeptTokens,
    LocalEngine,
    ModelHandle,
    ModelInterface,
    PackedBatch,
    RlcoreError,
    Rollout,
    RolloutEngine,
    TokenQuery,
    distributed,
    registry,
)
from rlcore_plugin_algorithms.config import MoEOptions
from rlcore_plugin_algorithms.multi_turn import episode_batch, sample_episodes, single_turn_episodes
from rlcore_plugin_algorithms.packed import (
    next_token_query,
    next_token_valid,
    on_device,
    per_token_batch,
    scatter_positions,
)
from rlcore_plugin_algorithms.rl_config import EnvOptions, GenerationOptions
from rlcore_plugin_algorithms.routing import (
    check_moe_actor,
    episode_routing_batch,
    layers_of,
    replayed,
    routing_batch,
)


class SamplerInterface(ModelInterface):
    """generate: sample ``gen.n_samples`` responses per prompt (with ``env``: multi-turn
    episodes in that environment); inference: the log-probs of the response tokens as
    sampling saw them (the reference scores with it too)."""

    def __init__(self, gen: GenerationOptions, seed: int = 1, engine: str = "local",
                 engine_args: dict[str, Any] | None = None, env: EnvOptions | None = None,
                 moe: MoEOptions | None = None):
        self.gen, self.seed, self.moe = gen, seed, moe or MoEOptions()
        self.env = env if env is not None and env.name else None
        self.engine_name, self.engine_args = engine, dict(engine_args or {})
        self.engine: RolloutEngine | None = None
        self.ahead: dict[tuple[str, ...], tuple[int, int]] = {}  # batch ids -> (ticket, version)

    def generate(self, handle: ModelHandle,
                 data: PackedBatch) -> PackedBatch | tuple[PackedBatch, dict[str, float]]:
        """Sample with the ``rollout.engine``, brought to the actor's weight version first, or
        take what :meth:`prefetch` started for this batch; what the engine measured (the worker
        engine's sync check and waits) comes back as step-level metrics."""
        engine = self.engine_for(handle)
        g = generation_config(self.gen, handle.tokenizer)
        if self.moe.records:
            check_moe_actor(handle)
            g.record_routing = True
        if self.env is not None:
            seed = generation_seed(self.seed, handle.version, distributed.rank(), data.ids)
            episodes, metrics = sample_episodes(engine, handle, data, self.env, g,
                                                self.gen.n_samples, seed)
            batch = episode_batch(data, episodes, self.gen.n_samples, replays_mask(self.gen),
                                  engine.version)
            if self.moe.records:
                batch = episode_routing_batch(batch, episodes)
            return batch, {**engine.metrics, **metrics}
        prompts = flat_prompts(data, self.gen.n_samples)
        ahead = self.ahead.pop(tuple(data.ids), None)
        if ahead is not None:
            version, out = ahead[1], engine.collect(ahead[0])
        else:
            seed = generation_seed(self.seed, handle.version, distributed.rank(), data.ids)
            version, out = engine.version, engine.generate(prompts, g, seed)
        batch = rollout_batch(data, prompts, out, self.gen.n_samples, replays_mask(self.gen),
                              version)
        if self.moe.records:
            batch = routing_batch(batch, out, self.engine_name)
        metrics = dict(engine.metrics)
        if self.engine_args.get("partial"):  # responses whose tokens came from several versions
            mixed = [bool(len(v) and v.min() != v.max()) for v in out.versions]
            metrics["/rollout/mixed_versions"] = sum(mixed) / max(len(mixed), 1)
        return (batch, metrics) if metrics else batch

    def prefetch(self, handle: ModelHandle, data: PackedBatch) -> None:
        """Start sampling ``data`` (a batch of a later step) now, with the newest weights, on an
        engine that samples apart from the trainers; :meth:`generate` collects it."""
        engine = self.engine_for(handle)
        if tuple(data.ids) in self.ahead:
            return
        if not hasattr(engine, "submit"):
            raise RlcoreError(f"rollout engine {self.engine_name!r} cannot sample ahead of the "
                              "trainers (it has no submit/collect); use rollout.max_staleness=0")
        g = generation_config(self.gen, handle.tokenizer)
        seed = generation_seed(self.seed, handle.version, distributed.rank(), data.ids)
        ticket = engine.submit(flat_prompts(data, self.gen.n_samples), g, seed)
        self.ahead[tuple(data.ids)] = (ticket, engine.version)

    def engine_for(self, handle: ModelHandle) -> RolloutEngine:
        """The ``rollout.engine`` for ``handle``, holding its current weight version."""
        if self.engine is None:
            self.engine = shared_engine(self.engine_name, self.engine_args, handle)
        if self.engine.version != handle.version:
            self.engine.update_weights(handle.version)  # local: the module is shared
        return self.engine

    @torch.no_grad()
    def inference(self, handle: ModelHandle, data: PackedBatch) -> PackedBatch:
        """Log-probs of the response tokens under the sampling distribution (``logprobs``), with
        the sampler's experts under ``actor.moe.router_replay``."""
        ids, cu = on_device(handle, data)
        act = action_mask(data.data[PROMPT_MASK].to(handle.device), cu)
        g = generation_config(self.gen, handle.tokenizer)
        query = action_query(ids, act, g, KeptTokens.from_batch(data.data))
        with replayed(handle, layers_of(data, handle.device), self.moe.router_replay):
            logp, _ = handle.model(ids, cu, query)
        return per_token_batch(data, "logprobs", scatter_positions(logp, query.positions, ids.numel()))


_ENGINES: dict[tuple[str, str, str], tuple[ModelHandle, RolloutEngine]] = {}


def shared_engine(name: str, args: dict[str, Any], handle: ModelHandle) -> RolloutEngine:
    """One engine per (engine, arguments, role handle) in this process: the sampler and ReMax's
    greedy sampler of a role use the same engine (and its workers); a new run gets a new one."""
    key = (name, json.dumps(args, sort_keys=True), handle.role)
    if key not in _ENGINES or _ENGINES[key][0] is not handle:
        _ENGINES[key] = (handle, registry.load("rollout_engines", name)(handle, **args))
    return _ENGINES[key][1]


def generation_config(gen: GenerationOptions, tokenizer: Any) -> GenerationConfig:
    """The core sampler's config for ``gen``, stopping at the tokenizer's eos."""
    eos = [tokenizer.eos_token_id] if getattr(tokenizer, "eos_token_id", None) is not None else []
    return GenerationConfig(max_new_tokens=gen.max_new_tokens, min_new_tokens=gen.min_new_tokens,
                            greedy=gen.greedy, temperature=gen.temperature, top_k=gen.top_k,
                            top_p=gen.top_p, eos_token_ids=eos)


def replays_mask(gen: GenerationOptions) -> bool:
    """Whether sampling can cut tokens, so train-time log-probs must replay its logits mask."""
    cuts = not gen.greedy and (gen.top_k > 0 or gen.top_p < 1.0)
    return cuts or gen.min_new_tokens > 0


def generation_seed(base: int, version: int, rank: int, ids: list[str]) -> int:
    """A sampling seed fixed by the run seed, weight version, rank and batch (so resume repeats it)."""
    return zlib.crc32(f"{base}:{version}:{rank}:{','.join(ids)}".encode())


def sample_responses(handle: ModelHandle, data: PackedBatch, gconfig: GenerationConfig,
                     n_samples: int, seed: int, with_mask: bool,
                     engine: RolloutEngine | None = None) -> PackedBatch:
    """Sample ``n_samples`` responses per prompt of ``data[PROMPTS]`` with ``engine`` (default:
    the ``local`` engine on the actor's module)."""
    engine = engine or LocalEngine(handle)
    prompts = flat_prompts(data, n_samples)
    version = engine.version
    return rollout_batch(data, prompts, engine.generate(prompts, gconfig, seed), n_samples,
                         with_mask, version)


def flat_prompts(data: PackedBatch, n_samples: int) -> list[list[int]]:
    """Each prompt of ``data[PROMPTS]`` as token ids, ``n_samples`` times in a row."""
    prompts = [data.sequences(PROMPTS, i)[0].tolist() for i in range(len(data))]
    return [p for p in prompts for _ in range(n_samples)]


def rollout_batch(data: PackedBatch, flat: list[list[int]], out: Rollout, n_samples: int,
                  with_mask: bool, engine_version: int) -> PackedBatch:
    """The sampled batch: per sample of ``data``, ``n_samples`` sequences of prompt + response
    (``out``); an empty response's version is ``engine_version``."""
    return episode_batch(data, single_turn_episodes(flat, out), n_samples, with_mask,
                         engine_version, rewards=False)


def action_mask(prompt_mask: torch.Tensor, cu_seqlens: torch.Tensor) -> torch.Tensor:
    """Bool ``[T]``: position t predicts a response token (an action) of its own sequence."""
    response = ~prompt_mask.bool()
    return torch.roll(response, shifts=-1) & next_token_valid(cu_seqlens, response.numel())


def action_counts(act: torch.Tensor, cu_seqlens: torch.Tensor) -> torch.Tensor:
    """Offsets ``[B+1]`` of each sequence's actions in ``act``-compacted tensors."""
    counts = torch.zeros(cu_seqlens.numel() - 1, dtype=torch.long, device=act.device)
    seq = torch.repeat_interleave(torch.arange(counts.numel(), device=act.device),
                                  (cu_seqlens[1:] - cu_seqlens[:-1]).long())
    counts.index_add_(0, seq, act.long())
    return torch.cat([counts.new_zeros(1), counts.cumsum(0)])


def sampling_temperature(gconfig: GenerationConfig) -> float:
    """The temperature sampling divided the logits by (1.0 when greedy)."""
    return 1.0 if gconfig.greedy else float(gconfig.temperature)


def action_query(input_ids: torch.Tensor, act: torch.Tensor, gconfig: GenerationConfig,
                 kept: KeptTokens | None, entropy: bool = False) -> TokenQuery:
    """A query for the log-probs of the actions (``act``) as sampling saw them: same
    temperature, same cut tokens (the batch's ``kept`` [T] at the actions)."""
    query = next_token_query(input_ids, act, temperature=sampling_temperature(gconfig),
                             entropy=entropy)
    if kept is not None:
        query.kept = kept.to(input_ids.device).select(query.positions)
    return query


def processed_logits(logits: torch.Tensor, gconfig: GenerationConfig,
                     logits_mask: torch.Tensor | None) -> torch.Tensor:
    """fp32 logits as sampling saw them: divided by the temperature, cut tokens at -inf."""
    logits = logits.float()
    if sampling_temperature(gconfig) != 1.0:
        logits = logits / sampling_temperature(gconfig)
    if logits_mask is not None:
        logits = logits.masked_fill(~logits_mask.to(logits.device), float("-inf"))
    return logits


def token_logprobs(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """``out[t] = log p(input_ids[t+1])`` under ``logits[t]`` (the last position wraps: mask it)."""
    targets = torch.roll(input_ids, shifts=-1)
    return torch.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
