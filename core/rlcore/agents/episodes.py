"""Multi-turn episodes on a rollout engine: the actor writes a turn (until eos), the
environment answers, its answer is appended through the chat template, and so on.

    reset(sample) -> prompt ids -> [generate -> parse tool calls -> step -> observation ids]*

Every active episode of a batch generates in one ``engine.generate`` call per turn, and the
environments step concurrently (``Environment.astep``). An episode ends when the environment
says done, or is truncated at ``max_turns`` turns, at ``max_tokens`` tokens after the
prompt, or when a turn is cut at the engine's ``max_new_tokens``. The episode keeps token
ids as sampled and observations as the chat template renders them, so training sees
exactly the tokens the model saw (no re-tokenisation).
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from rlcore.agents.environment import Environment, Message
from rlcore.agents.tool_calls import parse_tool_calls
from rlcore.data.tokenizer import encode
from rlcore.errors import DataError, RlcoreError


@dataclass
class Segment:
    """Consecutive tokens of an episode after its prompt: the actor's (``action``, with their
    sampling ``logprobs``, weight ``versions`` and ``kept`` tokens) or an observation's."""

    tokens: torch.Tensor
    action: bool
    logprobs: torch.Tensor | None = None
    versions: torch.Tensor | None = None
    kept: Any = None


@dataclass
class Episode:
    """One episode: its ``prompt`` ids, the ``segments`` after it, each turn's reward at the
    index (after the prompt) of the turn's last action token, and what happened."""

    prompt: list[int]
    segments: list[Segment] = field(default_factory=list)
    turn_rewards: list[tuple[int, float]] = field(default_factory=list)
    turns: int = 0
    tool_calls: int = 0
    tool_errors: int = 0
    truncated: bool = False
    done: bool = False
    success: bool = False
    routing: Any = None  # the experts of the last turn's generate (its prefill covers the rest)

    @property
    def length(self) -> int:
        """Tokens after the prompt."""
        return sum(len(s.tokens) for s in self.segments)

    @property
    def reward(self) -> float:
        return sum(r for _, r in self.turn_rewards)

    def ids(self) -> list[int]:
        """Prompt and every segment, as the model saw them."""
        return [*self.prompt, *(t for s in self.segments for t in s.tokens.tolist())]

    def to_json(self) -> dict[str, Any]:
        """A plain-JSON form (trajectories an outside agent collected travel in it); sampling's
        kept tokens are not kept (record episodes sampled without top-k / top-p)."""
        segments = [{"tokens": s.tokens.tolist(), "action": s.action,
                     **({"logprobs": s.logprobs.tolist(), "versions": s.versions.tolist()}
                        if s.action else {})} for s in self.segments]
        return {"prompt": list(self.prompt), "segments": segments,
                "turn_rewards": [list(t) for t in self.turn_rewards],
                **{k: getattr(self, k) for k in ("turns", "tool_calls", "tool_errors",
                                                  "truncated", "done", "success")}}

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> Episode:
        """The episode :meth:`to_json` wrote (a ``ValueError`` names what is wrong)."""
        try:
            segments = [Segment(torch.tensor(s["tokens"], dtype=torch.long), bool(s["action"]),
                                torch.tensor(s["logprobs"], dtype=torch.float32) if s["action"] else None,
                                torch.tensor(s["versions"], dtype=torch.long) if s["action"] else None)
                        for s in row["segments"]]
            turn_rewards = [(int(i), float(r)) for i, r in row.get("turn_rewards", [])]
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"not an episode: {type(err).__name__}: {err}") from None
        bad = [s for s in segments if s.action and not len(s.logprobs) == len(s.versions)
               == len(s.tokens)]
        if bad or not segments or not segments[0].action:
            raise ValueError("an episode starts with an action segment, and each action segment "
                             "has one logprob and one version per token")
        flags = {k: row[k] for k in ("turns", "tool_calls", "tool_errors", "truncated", "done",
                                     "success") if k in row}
        return cls(list(row["prompt"]), segments, turn_rewards, **flags)


def prompt_ids(tokenizer: Any, messages: list[Message], tools: list[dict] | None) -> list[int]:
    """The first messages with the tools, rendered by the chat template and a generation prompt."""
    text = tokenizer.apply_chat_template(messages, tools=tools or None, tokenize=False,
                                         add_generation_prompt=True)
    return encode(tokenizer, text)


_CONTEXT = [{"role": "user", "content": "?"}, {"role": "assistant", "content": "!"}]


def observation_ids(tokenizer: Any, observations: list[Message], stop_ids: list[int]) -> list[int]:
    """The tokens the chat template puts after an assistant turn (which ends at one of
    ``stop_ids``): ``observations`` (tool or user messages), then the next generation prompt."""
    base = tokenizer.apply_chat_template(_CONTEXT, tokenize=False)
    full = tokenizer.apply_chat_template([*_CONTEXT, *observations], tokenize=False,
                                         add_generation_prompt=True)
    end = base.rfind("!") + 1
    for stop in tokenizer.convert_ids_to_tokens(list(stop_ids)):
        if stop and base.startswith(stop, end):  # the model wrote it already
            end += len(stop)
            break
    if not full.startswith(base[:end]):
        raise DataError("the tokenizer's chat template renders an assistant turn differently when "
                        "tool messages follow it, so observations cannot be appended to the "
                        "sampled tokens; use a template that renders conversations prefix-"
                        "consistently")
    return encode(tokenizer, full[end:])


def turn_seed(seed: int, turn: int) -> int:
    """The sampling seed of turn ``turn`` of a batch sampled with ``seed``."""
    return zlib.crc32(f"{seed}:turn{turn}".encode()) if turn else seed


def run_episodes(engine: Any, tokenizer: Any, make_env: Callable[[], Environment],
                 samples: list[dict[str, Any]], gconfig: Any, seed: int, *, max_turns: int,
                 max_tokens: int, tool_format: str = "auto") -> list[Episode]:
    """One episode per sample (repeat a sample for several), sampled with ``engine``."""
    envs = [make_env() for _ in samples]
    try:
        episodes = [Episode(prompt_ids(tokenizer, env.reset(dict(s)), env.tools))
                    for env, s in zip(envs, samples, strict=True)]
        for turn in range(max_turns):
            active = [i for i, ep in enumerate(episodes) if not (ep.done or ep.truncated)]
            if not active:
                break
            out = engine.generate([episodes[i].ids() for i in active], gconfig,
                                  turn_seed(seed, turn))
            stepping: dict[int, Message] = {}
            for j, i in enumerate(active):
                message = _take_turn(episodes[i], out, j, tokenizer, max_tokens, tool_format, turn)
                if message is not None:
                    stepping[i] = message
            results = asyncio.run(_step_all({i: envs[i] for i in stepping}, stepping))
            for i, result in results.items():
                _take_answer(episodes[i], result, tokenizer, gconfig.eos_token_ids,
                             last_turn=turn == max_turns - 1, max_tokens=max_tokens)
        return episodes
    finally:
        for env in envs:
            env.close()


def _take_turn(ep: Episode, out: Any, j: int, tokenizer: Any, max_tokens: int, fmt: str,
               turn: int) -> Message | None:
    """Append the actor's turn ``j`` of ``out``; the message to step with, or None when the turn
    was cut (at the engine's or the episode's token limit), which truncates the episode."""
    tokens, room, before = out.tokens[j], max_tokens - ep.length, len(ep.prompt) + ep.length
    cut = len(tokens) > room or out.finish[j] == "length"
    tokens = tokens[:room]
    if getattr(out, "routing", None) is not None:  # [before + new tokens, moe layers, k]
        ep.routing = out.routing[j][: before + len(tokens)]
    kept = out.kept[j]
    if kept is not None and len(tokens) < len(out.tokens[j]):
        kept = kept.select(torch.arange(len(tokens)))
    ep.segments.append(Segment(tokens, True, out.logprobs[j][: len(tokens)],
                               out.versions[j][: len(tokens)], kept))
    ep.turns += 1
    if cut:
        ep.truncated = True
        return None
    text = tokenizer.decode(tokens.tolist(), skip_special_tokens=True)
    return parse_tool_calls(text, fmt, turn).message(text)


async def _step_all(envs: dict[int, Environment], messages: dict[int, Message]) -> dict[int, Any]:
    keys = list(messages)
    results = await asyncio.gather(*(envs[k].astep(messages[k]) for k in keys),
                                   return_exceptions=True)
    for k, result in zip(keys, results, strict=True):
        if isinstance(result, BaseException):
            raise RlcoreError(f"environment {type(envs[k]).__name__} failed in step: "
                              f"{type(result).__name__}: {result}") from result
    return dict(zip(keys, results, strict=True))


def _take_answer(ep: Episode, result: Any, tokenizer: Any, stop_ids: list[int], last_turn: bool,
                 max_tokens: int) -> None:
    """Record the environment's answer to the episode's last turn and append its observations."""
    ep.turn_rewards.append((ep.length - 1, float(result.reward)))
    ep.tool_calls += int(result.info.get("tool_calls", 0))
    ep.tool_errors += int(result.info.get("tool_errors", 0))
    if result.done:
        ep.done, ep.success = True, bool(result.info.get("success", result.reward > 0))
        return
    observed = observation_ids(tokenizer, list(result.observations), stop_ids)
    if last_turn or ep.length + len(observed) >= max_tokens:
        ep.truncated = True
        return
    ep.segments.append(Segment(torch.tensor(observed, dtype=torch.long), False))


def episode_metrics(episodes: list[Episode],
                    reduce: Callable[[list[float]], list[float]] | None = None) -> dict[str, float]:
    """Per episode means: turns, tool calls, malformed or rejected calls; the share of calls
    that were valid, of episodes truncated and of episodes solved. ``reduce`` sums the counts
    over ranks (``distributed.all_reduce``)."""
    counts = [float(len(episodes)), *(float(sum(getattr(e, k) for e in episodes))
                                      for k in ("turns", "tool_calls", "tool_errors", "truncated",
                                                "success"))]
    n, turns, calls, errors, truncated, success = reduce(counts) if reduce else counts
    n = max(n, 1.0)
    return {"turns_mean": turns / n, "tool_calls": calls / n, "tool_errors": errors / n,
            "tool_call_valid_frac": (calls - errors) / calls if calls else 0.0,
            "truncated_frac": truncated / n, "success": success / n}
