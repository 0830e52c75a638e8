"""The environment API (gym / OpenEnv style): ``reset(sample)`` gives the first messages,
``step(assistant_message)`` answers one assistant turn.

Messages are OpenAI chat dicts (``{"role": ..., "content": ...}``). The assistant message that
``step`` receives also carries the tool calls parsed from its text (``tool_calls``, OpenAI
format with ``arguments`` as a dict) and the calls that failed to parse
(``tool_call_errors``: one message each). Tools are declared as OpenAI function schemas in
``tools``, which the tokenizer's chat template renders. The episode loop
(:mod:`rlcore.agents.episodes`) builds one environment object per episode and calls
:meth:`Environment.astep`, so many episodes step at once. Importing this module imports no torch.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

Message = dict[str, Any]


@dataclass
class StepResult:
    """What one ``step`` gives back: ``observations`` to append (tool or user messages; empty
    when the episode ends), the ``reward`` of this turn, whether the episode is ``done``, and
    ``info`` (``tool_calls``, ``tool_errors`` counts; ``success`` for accuracy)."""

    observations: list[Message] = field(default_factory=list)
    reward: float = 0.0
    done: bool = False
    info: dict[str, Any] = field(default_factory=dict)


class Environment:
    """Base of every environment; subclasses set ``tools`` and implement ``reset`` and ``step``.

    Built as ``cls(**env.args)`` once per episode. Optional: :meth:`tasks` (an embedded task,
    so that a run needs no dataset), :meth:`demonstration` (a correct conversation, which
    the warm start of the tiny built-in actor trains on) and ``defaults``.
    """

    tools: ClassVar[list[dict[str, Any]]] = []
    # Settings the episodes need, e.g. {"gen.max_new_tokens": 96}: a run gets them where its
    # config left the key at the preset's default (``rlcore info environments NAME`` lists them).
    defaults: ClassVar[dict[str, Any]] = {}

    def reset(self, sample: dict[str, Any]) -> list[Message]:
        """The first messages of an episode on ``sample`` (a dataset row's fields)."""
        raise NotImplementedError

    def step(self, message: Message) -> StepResult:
        """Answer one assistant message (with ``tool_calls`` / ``tool_call_errors``)."""
        raise NotImplementedError

    async def astep(self, message: Message) -> StepResult:
        """The async form of :meth:`step` (default: ``step`` in a worker thread); override it
        for environments that wait on I/O."""
        return await asyncio.to_thread(self.step, message)

    def close(self) -> None:
        """Free what the episode holds (processes, files); called once when it ends."""

    @classmethod
    def tasks(cls, split: str, size: int, seed: int) -> list[dict[str, Any]] | None:
        """``size`` rows of the environment's own task (``split`` is ``train`` or ``eval``,
        disjoint), or None when it has none and needs ``dataset.path``."""
        return None

    def demonstration(self, sample: dict[str, Any]) -> list[Message] | None:
        """A correct conversation for ``sample`` (the first messages, then assistant and tool
        turns), or None; the warm start trains on these."""
        return None


class ToolError(Exception):
    """A tool call the tool rejects (bad arguments): its message goes back as the tool's answer."""


def tool_schema(name: str, description: str, parameters: dict[str, Any],
                required: list[str] | None = None) -> dict[str, Any]:
    """An OpenAI function schema: ``parameters`` maps each argument to its JSON schema."""
    return {"type": "function", "function": {
        "name": name, "description": description,
        "parameters": {"type": "object", "properties": parameters,
                       "required": list(parameters) if required is None else required}}}


class ToolEnvironment(Environment):
    """An environment whose turns are tool calls until a final answer.

    Subclasses set ``tools`` and implement :meth:`call` (one tool call to its result text) and
    :meth:`finish` (a final answer to its reward). An assistant turn with tool calls gets one
    ``tool`` message per call (an ``error: ...`` message for a malformed or rejected call) and
    reward 0; a turn without calls ends the episode with ``finish``'s reward. ``info`` counts
    ``tool_calls`` and ``tool_errors``; ``success`` is whether ``finish`` gave a positive reward.
    """

    def reset(self, sample: dict[str, Any]) -> list[Message]:
        self.sample = sample
        return self.first_messages(sample)

    def first_messages(self, sample: dict[str, Any]) -> list[Message]:
        """The user's question: the row's ``prompt`` (text or messages)."""
        prompt = sample["prompt"]
        return list(prompt) if isinstance(prompt, list) else [{"role": "user", "content": prompt}]

    def call(self, name: str, arguments: dict[str, Any]) -> str:
        """Run tool ``name``; raise :class:`ToolError` for a call the tool cannot take."""
        raise NotImplementedError

    def finish(self, text: str) -> float:
        """The reward of the final answer ``text``."""
        raise NotImplementedError

    def step(self, message: Message) -> StepResult:
        calls = message.get("tool_calls") or []
        errors = message.get("tool_call_errors") or []
        if not calls and not errors:
            reward = float(self.finish(message.get("content") or ""))
            return StepResult([], reward, True, {"success": reward > 0})
        answers, failed = [], len(errors)
        for error in errors:
            answers.append(tool_message(f"error: {error}"))
        known = {t["function"]["name"] for t in self.tools}
        for call in calls:
            fn = call["function"]
            try:
                if fn["name"] not in known:
                    raise ToolError(f"no tool named {fn['name']!r}; the tools are {sorted(known)}")
                answers.append(tool_message(self.call(fn["name"], fn["arguments"]), call))
            except ToolError as err:
                failed += 1
                answers.append(tool_message(f"error: {err}", call))
        return StepResult(answers, 0.0, False,
                          {"tool_calls": len(calls) + len(errors), "tool_errors": failed})


def tool_message(content: str, call: dict[str, Any] | None = None) -> Message:
    """A ``tool`` message answering ``call`` (its id and name when given)."""
    message: Message = {"role": "tool", "content": content}
    if call is not None:
        message["name"] = call["function"]["name"]
        if call.get("id"):
            message["tool_call_id"] = call["id"]
    return message


def environment_factory(name: str, args: dict[str, Any] | None = None) -> Callable[[], Environment]:
    """A builder of fresh ``name`` environments (``rlcore list environments``) with ``args``."""
    from rlcore.plugins import registry

    cls = registry.load("environments", name)
    args = dict(args or {})
    json.dumps(args)  # env.args travel in the config: plain values only
    return lambda: cls(**args)
