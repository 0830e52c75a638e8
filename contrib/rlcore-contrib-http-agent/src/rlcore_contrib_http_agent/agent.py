"""A black-box agent: plain HTTP calls to an OpenAI-compatible endpoint (``rlcore serve``),
tools run locally by an rlcore environment, episodes recorded from the ids the server sent.

Per task: POST the messages and tools, run the tool calls of the answer with the environment
(``env.step``), append its tool messages, repeat up to ``max_turns``. The episode is built from
the responses only: its prompt is the first call's ``prompt_token_ids``; each answer is an
action segment (``token_ids``, ``token_logprobs``, ``weight_version``); what the next call's
``prompt_token_ids`` add after everything before is an observation segment. A server that
broke that prefix (re-tokenised a turn) is refused: the episode would not be what was sampled.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import httpx
import torch

from rlcore.sdk import Episode, Segment, environment_factory, registry


class PrefixError(RuntimeError):
    """The server's prompt did not extend what the episode holds (token drift)."""


def run_task(client: httpx.Client, env: Any, row: dict[str, Any], *, max_turns: int = 3,
             max_tokens: int = 96, temperature: float = 1.0, seed: int | None = None) -> Episode:
    """One episode of ``env`` on task ``row`` through the endpoint ``client`` talks to."""
    messages = env.reset(dict(row))
    episode: Episode | None = None
    seen: list[int] = []
    try:
        for turn in range(max_turns):
            body = {"messages": messages, "tools": env.tools or None, "max_tokens": max_tokens,
                    "temperature": temperature}
            if seed is not None:
                body["seed"] = seed + turn
            response = client.post("/v1/chat/completions", json=body)
            if response.status_code != 200:
                raise RuntimeError(f"the server answered {response.status_code}: {response.text}")
            out = response.json()
            prompt = out["prompt_token_ids"]
            if episode is None:
                episode, seen = Episode(list(prompt)), list(prompt)
            else:
                if prompt[: len(seen)] != seen:
                    raise PrefixError(f"turn {turn}: the server's prompt does not start with the "
                                      f"episode so far (retokenized: {out.get('retokenized')})")
                episode.segments.append(Segment(torch.tensor(prompt[len(seen):]), False))
                seen = list(prompt)
            choice = out["choices"][0]
            tokens = choice["token_ids"]
            episode.segments.append(Segment(
                torch.tensor(tokens, dtype=torch.long), True,
                torch.tensor(choice["token_logprobs"], dtype=torch.float32),
                torch.full((len(tokens),), int(choice["weight_version"]), dtype=torch.long)))
            seen += tokens
            episode.turns += 1
            if choice["finish_reason"] == "length":  # cut: nothing can follow it
                episode.truncated = True
                break
            message = choice["message"]
            result = env.step(step_message(message))
            episode.turn_rewards.append((episode.length - 1, float(result.reward)))
            episode.tool_calls += int(result.info.get("tool_calls", 0))
            episode.tool_errors += int(result.info.get("tool_errors", 0))
            if result.done:
                episode.done = True
                episode.success = bool(result.info.get("success", result.reward > 0))
                break
            if turn == max_turns - 1:
                episode.truncated = True
                break
            messages = [*messages, {k: v for k, v in message.items() if k != "tool_call_errors"},
                        *result.observations]
    finally:
        env.close()
    return episode


def step_message(message: dict[str, Any]) -> dict[str, Any]:
    """The assistant message as an environment's ``step`` takes it: arguments as dicts, and
    the calls that did not parse (the server's ``tool_call_errors``)."""
    out: dict[str, Any] = {"role": "assistant", "content": message.get("content") or ""}
    calls = []
    for call in message.get("tool_calls") or []:
        try:
            args = json.loads(call["function"]["arguments"])
        except json.JSONDecodeError:
            args = call["function"]["arguments"]
        calls.append({**call, "function": {"name": call["function"]["name"], "arguments": args}})
    if calls:
        out["tool_calls"] = calls
    if message.get("tool_call_errors"):
        out["tool_call_errors"] = list(message["tool_call_errors"])
    return out


def collect(url: str, tasks: int, out: str | Path, *, env_name: str = "calculator",
            env_args: dict[str, Any] | None = None, split: str = "train", task_seed: int = 0,
            max_turns: int = 3, max_tokens: int = 96, temperature: float = 1.0,
            seed: int | None = 0, timeout: float = 300.0) -> list[Episode]:
    """``tasks`` episodes of ``env_name``'s own task, written to ``out`` as JSONL of
    ``Episode.to_json()``; the episodes."""
    rows = registry.load("environments", env_name).tasks(split, tasks, task_seed)
    if rows is None:
        raise SystemExit(f"environment {env_name!r} has no task of its own")
    make_env = environment_factory(env_name, env_args)
    episodes = []
    with httpx.Client(base_url=url.rstrip("/").removesuffix("/v1"), timeout=timeout) as client:
        for i, row in enumerate(rows):
            episodes.append(run_task(client, make_env(), row, max_turns=max_turns,
                                     max_tokens=max_tokens, temperature=temperature,
                                     seed=None if seed is None else seed + 1000 * i))
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(e.to_json()) + "\n" for e in episodes))
    return episodes


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m rlcore_contrib_http_agent",
                                     description="Collect episodes of an rlcore environment "
                                                 "through an OpenAI-compatible endpoint.")
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the server (rlcore serve)")
    parser.add_argument("--tasks", type=int, default=8, help="how many task rows")
    parser.add_argument("--out", default="episodes.jsonl", help="JSONL of Episode.to_json()")
    parser.add_argument("--env", default="calculator", help="the environment (rlcore list environments)")
    parser.add_argument("--split", default="train", choices=("train", "eval"))
    parser.add_argument("--max-turns", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=96, help="per call")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    a = parser.parse_args(argv)
    episodes = collect(a.url, a.tasks, a.out, env_name=a.env, split=a.split,
                       max_turns=a.max_turns, max_tokens=a.max_tokens,
                       temperature=a.temperature, seed=a.seed)
    solved = sum(e.success for e in episodes)
    print(f"{len(episodes)} episodes ({solved} solved, mean reward "
          f"{sum(e.reward for e in episodes) / max(len(episodes), 1):.3f}) -> {a.out}",
          file=sys.stderr)
