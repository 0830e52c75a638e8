"""Rollout routing replay (R3) for mixture-of-experts actors: the sampler's experts travel in the
rollout batch (``routed_experts``) and the train and log-prob forwards use them.

Only the choice of experts is replayed; their weights come from the current router's scores,
so gradients still reach the router (Megatron-LM's ``moe_enable_routing_replay``, which verl's
and Slime's R3 use). Tokens recorded as -1 (each response's last) keep their own routing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

from rlcore.sdk import (
    INPUT_IDS,
    ROUTED_EXPERTS,
    ConfigError,
    ModelHandle,
    PackedBatch,
    RlcoreError,
    Rollout,
    moe_layers,
    natural_routing,
    replay_routing,
    router_agreement,
)
from rlcore_plugin_algorithms.packed import per_token_batch


def check_moe_actor(handle: ModelHandle, key: str = "actor.moe.router_replay") -> None:
    """Routing replay on a dense model is a config error that names the key."""
    if not moe_layers(handle.module):
        raise ConfigError(f"{key}=true, but the {handle.role} model has no mixture-of-experts "
                          "layers; unset it for dense models")


def routing_batch(batch: PackedBatch, out: Rollout, engine: str) -> PackedBatch:
    """``batch`` plus ``routed_experts`` from the rollout's recorded routing (one row per token)."""
    if out.routing is None:
        raise ConfigError(f"rollout.engine={engine} does not record the experts of sampled "
                          "tokens, which actor.moe.router_replay / record_routing need; use "
                          "rollout.engine=local")
    batch.update(per_token_batch(batch, ROUTED_EXPERTS, torch.cat(list(out.routing))))
    return batch


def episode_routing_batch(batch: PackedBatch, episodes: list[Any]) -> PackedBatch:
    """``batch`` of multi-turn ``episodes`` plus ``routed_experts``: each episode's last turn's
    routing, whose prefill routed every earlier turn too (rLLM's R3 for verl takes the last
    step's routing alike), and -1 (route freely) on the observation tokens after it."""
    if any(ep.routing is None for ep in episodes):
        raise RlcoreError("an episode has no recorded routing (its turns were not sampled with "
                          "GenerationConfig.record_routing), which actor.moe.router_replay / "
                          "record_routing need")
    rows = []
    for ep in episodes:
        full = torch.full((len(ep.prompt) + ep.length, *ep.routing.shape[1:]), -1, dtype=torch.int16)
        full[: len(ep.routing)] = ep.routing
        rows.append(full)
    batch.update(per_token_batch(batch, ROUTED_EXPERTS, torch.cat(rows)))
    return batch


def layers_of(data: PackedBatch, device: torch.device) -> list[torch.Tensor] | None:
    """Per MoE layer, the recorded expert ids ``[T, k]`` of ``data``'s tokens (None: none)."""
    if ROUTED_EXPERTS not in data.data:
        return None
    routed = data.data[ROUTED_EXPERTS]
    if routed.shape[0] != data.data[INPUT_IDS].shape[0]:
        raise ValueError(f"{ROUTED_EXPERTS} has {routed.shape[0]} rows for "
                         f"{data.data[INPUT_IDS].shape[0]} tokens")
    return list(routed.to(device, torch.long).unbind(1))


@contextlib.contextmanager
def replayed(handle: ModelHandle, routing: list[torch.Tensor] | None, on: bool) -> Iterator[None]:
    """Forwards inside use ``routing`` (when ``on``); keep it open through backward, whose
    recomputed forwards (gradient checkpointing) must route alike."""
    if not on or routing is None:
        yield
        return
    replay_routing(handle.module, routing)
    try:
        yield
    finally:
        replay_routing(handle.module, None)


def agreement(handle: ModelHandle, routing: list[torch.Tensor] | None) -> dict[str, float]:
    """``moe/router_agreement``: the share of recorded tokens whose top-k the router of the last
    forward would pick itself (computed with replay on too)."""
    if routing is None:
        return {}
    return {"moe/router_agreement": router_agreement(routing, natural_routing(handle.module))}
