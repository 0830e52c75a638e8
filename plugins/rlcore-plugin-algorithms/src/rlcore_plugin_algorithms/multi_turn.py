"""Multi-turn sampling (``env.name``): episodes in an environment become the packed rollout.

An episode is one sequence: prompt, then the actor's turns and the observations between
them. Observation tokens are marked in ``prompt_mask`` like the prompt, so they are never
actions: no loss, no advantage, no KL, no value target (``action_mask``). The environment's
rewards travel as ``env_rewards`` (per episode, summed) and ``turn_rewards`` (each on its
turn's last action); :class:`EnvRewardInterface` is the reward node.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import torch

from rlcore.sdk import (
    ENV_REWARDS,
    INPUT_IDS,
    LOGITS_KEEP_COUNTS,
    LOGITS_KEEP_IDS,
    LOGPROBS,
    NO_EOS,
    PROMPT_MASK,
    REWARDS,
    TURN_REWARDS,
    VERSION,
    ConfigError,
    Episode,
    KeptTokens,
    LocalEngine,
    ModelHandle,
    ModelInterface,
    PackedBatch,
    Segment,
    distributed,
    environment_factory,
    episode_metrics,
    registry,
    run_episodes,
)
from rlcore_plugin_algorithms.packed import per_sequence_batch
from rlcore_plugin_datasets.prompt import PromptDataset

DTYPES = {PROMPT_MASK: torch.bool, NO_EOS: torch.bool, VERSION: torch.int64,
          LOGPROBS: torch.float32, LOGITS_KEEP_IDS: torch.int32, LOGITS_KEEP_COUNTS: torch.int32,
          ENV_REWARDS: torch.float32, TURN_REWARDS: torch.float32}


def sample_episodes(engine: Any, handle: ModelHandle, data: PackedBatch, env: Any, gconfig: Any,
                    n_samples: int, seed: int) -> tuple[list[Episode], dict[str, float]]:
    """``n_samples`` episodes per sample of ``data`` (its metadata is what ``reset`` gets), and
    their metrics as step-level ``/env/...``."""
    samples = [s for s in data.sample_dicts() for _ in range(n_samples)]
    episodes = run_episodes(engine, handle.tokenizer, environment_factory(env.name, env.args),
                            samples, gconfig, seed, max_turns=env.max_turns,
                            max_tokens=env.max_tokens, tool_format=env.tool_format)
    metrics = episode_metrics(episodes, distributed.all_reduce)
    return episodes, {f"/env/{k}": v for k, v in metrics.items()}


def episode_batch(data: PackedBatch, episodes: list[Episode], n_samples: int, with_mask: bool,
                  engine_version: int, rewards: bool = True) -> PackedBatch:
    """The rollout keys (and ``env_rewards`` / ``turn_rewards`` when ``rewards``) of
    ``n_samples`` episodes per sample of ``data``; an episode's version is its oldest action's
    (``engine_version`` when it has none)."""
    columns: dict[str, list[Any]] = {k: [] for k in (INPUT_IDS, PROMPT_MASK, LOGPROBS, NO_EOS,
                                                      VERSION, ENV_REWARDS, TURN_REWARDS)}
    kept = []
    for ep in episodes:
        n_prompt = len(ep.prompt)
        ids = torch.tensor(ep.ids(), dtype=torch.long)
        mask, logprobs = torch.zeros(len(ids), dtype=torch.bool), torch.zeros(len(ids))
        mask[:n_prompt] = True
        turn = torch.zeros(len(ids))
        start, versions, cuts = n_prompt, [], [KeptTokens.empty(n_prompt - 1)]
        for seg in ep.segments:  # at t: what sampling saw for token t+1
            n = len(seg.tokens)
            if seg.action:
                logprobs[start - 1 : start - 1 + n] = seg.logprobs.float()
                versions.append(seg.versions)
            else:
                mask[start : start + n] = True
            cuts.append(seg.kept if seg.action and seg.kept is not None else KeptTokens.empty(n))
            start += n
        for index, reward in ep.turn_rewards:
            turn[n_prompt + index - 1] += reward
        version = torch.cat(versions) if versions else torch.zeros(0, dtype=torch.long)
        for key, value in ((INPUT_IDS, ids), (PROMPT_MASK, mask), (LOGPROBS, logprobs),
                           (NO_EOS, [ep.truncated]), (TURN_REWARDS, turn), (ENV_REWARDS, [ep.reward]),
                           (VERSION, [int(version.min()) if len(version) else engine_version])):
            columns[key].append(value)
        if with_mask:
            kept.append(KeptTokens.cat([*cuts, KeptTokens.empty(1)]).sequence_keys())
    if with_mask:
        for key in (LOGITS_KEEP_IDS, LOGITS_KEEP_COUNTS):
            columns[key] = [k[key] for k in kept]
    if not rewards:
        del columns[ENV_REWARDS], columns[TURN_REWARDS]
    groups = {k: [v[i * n_samples : (i + 1) * n_samples] for i in range(len(data))]
              for k, v in columns.items()}
    return PackedBatch.from_sequences(data.ids, groups, dtypes=DTYPES)


def single_turn_episodes(flat: list[list[int]], out: Any) -> list[Episode]:
    """One-turn episodes of the responses ``out`` to the prompts ``flat`` (cut: no eos)."""
    return [Episode(prompt, [Segment(tokens, True, lp, versions, cut)], truncated=finish == "length")
            for prompt, tokens, lp, versions, cut, finish in zip(
                flat, out.tokens, out.logprobs, out.versions, out.kept, out.finish, strict=True)]


class EnvRewardInterface(ModelInterface):
    """The reward node of multi-turn runs: each episode's environment rewards, summed."""

    def inference(self, handle: ModelHandle, data: PackedBatch) -> PackedBatch:
        return per_sequence_batch(data, REWARDS, data.data[ENV_REWARDS].float())


def environment_tasks(config: Any, tokenizer: Any, split: str, **overrides: Any) -> Any:
    """The prompts of a multi-turn run: ``dataset.path`` (train) or ``eval.path`` (eval) when
    set, else the environment's own task (``Environment.tasks``); train gives the dataset,
    eval a batch of every held-out prompt."""
    ds, ev = config.dataset, config.eval
    if split == "eval":
        overrides = {"path": ev.path, "format": ev.format, "max_rows": ev.size, "shuffle": False}
    data_config = dataclasses.replace(ds, **overrides)
    rows = None
    if data_config.path is None:
        size = ev.size if split == "eval" else ds.embedded_size
        rows = registry.load("environments", config.env.name).tasks(split, size, ds.seed)
        if rows is None:
            raise ConfigError(f"env.name={config.env.name} has no task of its own: set "
                              f"{'eval' if split == 'eval' else 'dataset'}.path")
    dataset = EpisodeSamples(data_config, tokenizer, rows)
    if split == "train":
        return dataset
    return dataset.collate([dataset[i] for i in range(len(dataset))])


class EpisodeSamples(PromptDataset):
    """Prompt rows of ``dataset.path`` or an environment's ``tasks`` (``rows``) whose every
    field, the prompt too, reaches ``Environment.reset``."""

    def __init__(self, config: Any, tokenizer: Any, rows: list[dict[str, Any]] | None):
        self._rows = rows
        super().__init__(config, tokenizer)

    @property
    def source_name(self) -> str:
        return super().source_name if self._rows is None else "<environment task>"

    def embedded_rows(self) -> list[dict[str, Any]]:
        return self._rows or []

    def carried(self, row: Any, consumed: Any) -> dict[str, Any]:
        return {**super().carried(row, consumed), **{k: row.values[k] for k in consumed}}


def write_demonstrations(config: Any, where: Path) -> str:
    """The environment's demonstrations of ``warm_start.sft_steps * batch_size`` training tasks
    (at most ``dataset.embedded_size``) as a JSONL of chats in ``where``; its path."""
    ws, ds = config.warm_start, config.dataset
    cls = registry.load("environments", config.env.name)
    rows = cls.tasks("train", min(ws.sft_steps * ws.batch_size, ds.embedded_size), ds.seed)
    env = cls(**config.env.args)
    chats = [env.demonstration(row) for row in rows or []]
    if not chats or any(c is None for c in chats):
        raise ConfigError(f"env.name={config.env.name} gives no demonstrations for the warm "
                          "start of the tiny built-in actor: set actor.path to a model, or "
                          "warm_start.sft_steps=0")
    path = where / "demonstrations.jsonl"
    where.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text("".join(json.dumps({"messages": c}) + "\n" for c in chats))
    os.replace(tmp, path)  # every rank writes the same rows
    return str(path)


def greedy_episode_metrics(actor: ModelHandle, prompts: PackedBatch, config: Any) -> dict[str, float]:
    """Greedy episodes on held-out ``prompts``: ``accuracy`` (the share solved), valid tool
    calls and turns (ZeRO-3: weights gathered)."""
    from rlcore_plugin_algorithms.sampling import generation_config

    gen = dataclasses.replace(config.gen, greedy=True, n_samples=1)
    gconfig = generation_config(gen, actor.tokenizer)
    module = actor.module
    was_training = module.training
    module.eval()
    try:
        _, metrics = sample_episodes(LocalEngine(actor), actor, prompts, config.env, gconfig, 1, 0)
    finally:
        module.train(was_training)
    return {"accuracy": metrics["/env/success"],
            "tool_call_valid_frac": metrics["/env/tool_call_valid_frac"],
            "turns_mean": metrics["/env/turns_mean"]}
