"""Conformance suite for environments: what the episode loop and the warm start rely on.

Subclass it in the environment plugin's tests and name the environment (a registered name, a
``"module:attr"`` string or the class) with its ``args``::

    from rlcore.testing.environments import EnvironmentConformance

    class TestUnits(EnvironmentConformance):
        environment = "units"
        args = {"tolerance": 1e-4}              # keyword arguments of the class
        samples = [{"prompt": "How many grams are in 2 kilograms?", "answer": "2000"}]

Without ``samples`` the environment's own ``tasks("train", n, seed)`` must give some. The suite
checks: the class is an ``Environment``; ``tools`` are OpenAI function schemas; ``reset`` gives
well-formed first messages and repeats; a final answer gives a float reward and a bool done;
malformed calls and unknown tools give ``tool`` error messages, never an exception; ``tasks``
splits are disjoint, repeatable and accepted by ``reset``; each ``demonstration`` replays through
``step`` to a positive reward; ``astep`` equals ``step``; episodes stepped at once do not
interfere; observations are JSON; the messages render through a chat template with the tools.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from typing import Any, ClassVar

import pytest

from rlcore.data.embedded import CHAT_TEMPLATE

ROLES = ("system", "user", "assistant", "tool")
TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
MALFORMED = '<tool_call>{"name": "broken", "arguments": </tool_call>'
UNKNOWN_TOOL = '<tool_call>{"name": "no_such_tool_xyz", "arguments": {}}</tool_call>'
# The embedded chat template with the tools up front, for a tokenizer whose template has none.
WITH_TOOLS = "{% if tools %}<|system|>{{ tools | tojson }}{% endif %}" + CHAT_TEMPLATE


class EnvironmentConformance:
    """Base of an environment's conformance tests; set ``environment`` (and ``args``)."""

    environment: ClassVar[str | type | None] = None
    args: ClassVar[dict[str, Any]] = {}
    samples: ClassVar[list[dict[str, Any]] | None] = None
    tool_format: ClassVar[str] = "auto"  # how demonstrations write their calls
    final_answer: ClassVar[str] = "I do not know."  # a turn without calls, when no demonstration
    task_size: ClassVar[int] = 16
    seed: ClassVar[int] = 0

    def setup_method(self) -> None:
        self.made: list[Any] = []

    def teardown_method(self) -> None:
        for env in self.made:
            env.close()

    def environment_class(self) -> type:
        if self.environment is None:
            pytest.fail(f"{type(self).__name__} must set `environment` (a registered name, "
                        "'module:attr' or the class)")
        from rlcore.plugins.registry import resolve_impl

        return resolve_impl("environments", self.environment)

    def make(self) -> Any:
        """A fresh environment, ``cls(**args)`` as each episode builds it (closed after the test)."""
        env = self.environment_class()(**self.args)
        self.made.append(env)
        return env

    def episode_samples(self) -> list[dict[str, Any]]:
        if self.samples:
            return [dict(s) for s in self.samples]
        rows = self.environment_class().tasks("train", 4, self.seed)
        if not rows:
            pytest.fail(f"{type(self).__name__}: set `samples` (rows for reset) or give the "
                        "environment a `tasks(split, size, seed)` classmethod that returns some")
        return rows

    def assistant_turns(self, sample: dict[str, Any]) -> list[str]:
        """The assistant texts of ``sample``'s demonstration, else one final answer."""
        demo = self.make().demonstration(sample)
        turns = [m["content"] for m in demo or [] if m["role"] == "assistant"]
        return turns or [self.final_answer]

    def message(self, text: str, turn: int = 0) -> dict[str, Any]:
        """The assistant message ``step`` receives for ``text``, as the episode loop parses it."""
        from rlcore.agents.tool_calls import parse_tool_calls

        return parse_tool_calls(text, self.tool_format, turn).message(text)

    def play(self, env: Any, sample: dict[str, Any], texts: list[str]) -> list[Any]:
        """Reset ``env`` on ``sample`` and step each text until done."""
        env.reset(sample)
        results = []
        for turn, text in enumerate(texts):
            results.append(env.step(self.message(text, turn)))
            if results[-1].done:
                break
        return results

    # ------------------------------------------------------------------ the tests

    def test_is_an_environment(self):
        from rlcore.agents.environment import Environment

        cls = self.environment_class()
        assert isinstance(cls, type) and issubclass(cls, Environment), \
            f"{cls!r} is not a subclass of rlcore.agents.environment.Environment"

    def test_tools_are_openai_function_schemas(self):
        tools = self.make().tools
        assert isinstance(tools, list), f"tools must be a list of schemas, not {type(tools).__name__}"
        json.dumps(tools)  # a TypeError names what is not JSON
        names = []
        for i, tool in enumerate(tools):
            fn = tool.get("function") if isinstance(tool, dict) else None
            assert tool.get("type") == "function" and isinstance(fn, dict), \
                f"tools[{i}] must be {{'type': 'function', 'function': {{...}}}}: {tool!r}"
            name, params = fn.get("name"), fn.get("parameters")
            assert isinstance(name, str) and TOOL_NAME.fullmatch(name), \
                f"tools[{i}] needs a name of 1-64 letters, digits, '_' or '-': {name!r}"
            assert isinstance(fn.get("description"), str) and fn["description"].strip(), \
                f"tool {name!r} needs a description (the model reads it)"
            assert isinstance(params, dict) and params.get("type") == "object" \
                and isinstance(params.get("properties"), dict), \
                f"tool {name!r}: parameters must be {{'type': 'object', 'properties': {{...}}}}"
            missing = set(params.get("required", [])) - set(params["properties"])
            assert not missing, f"tool {name!r} requires arguments it does not declare: {missing}"
            names.append(name)
        assert len(set(names)) == len(names), f"tool names repeat: {names}"

    def test_reset_gives_well_formed_first_messages_and_repeats(self):
        for sample in self.episode_samples():
            first = self.make().reset(dict(sample))
            check_messages(first, f"reset({sample!r})")
            assert first, f"reset({sample!r}) gave no messages"
            assert self.make().reset(dict(sample)) == first, \
                f"reset({sample!r}) gave different messages on a second environment"

    def test_a_final_answer_gives_a_float_reward_and_a_done_flag(self):
        from rlcore.agents.environment import StepResult

        env, sample = self.make(), self.episode_samples()[0]
        env.reset(sample)
        result = env.step(self.message(self.assistant_turns(sample)[-1]))
        assert isinstance(result, StepResult), f"step returned {type(result).__name__}, not a StepResult"
        assert isinstance(result.reward, float) and math.isfinite(result.reward), \
            f"the reward must be a finite float, not {type(result.reward).__name__} {result.reward!r}"
        assert isinstance(result.done, bool), f"done must be a bool, not {result.done!r}"
        assert isinstance(result.info, dict), f"info must be a dict, not {result.info!r}"
        check_messages(result.observations, "the observations of a final answer")

    @pytest.mark.parametrize("text", [MALFORMED, UNKNOWN_TOOL], ids=["malformed", "unknown_tool"])
    def test_bad_tool_calls_get_tool_error_messages(self, text):
        env = self.make()
        env.reset(self.episode_samples()[0])
        message = self.message(text)
        try:
            result, raised = env.step(message), None
        except Exception as err:  # noqa: BLE001 - the point: a model's bad call must not raise
            raised = f"{type(err).__name__}: {err}"
        if raised:  # failed outside the except: the report is this message, not two tracebacks
            pytest.fail(f"step raised {raised} on {message!r}; answer a bad call with a tool "
                        "message that says what was wrong")
        check_messages(result.observations, f"the observations of {text!r}")
        assert [m["role"] for m in result.observations] == ["tool"], \
            f"one tool message must answer the bad call {text!r}: {result.observations!r}"
        if "no_such_tool_xyz" in text:
            assert "no_such_tool_xyz" in result.observations[0]["content"], \
                f"the answer to an unknown tool should name it: {result.observations!r}"

    def test_tasks_are_disjoint_repeatable_rows_that_reset_accepts(self):
        cls = self.environment_class()
        train = cls.tasks("train", self.task_size, self.seed)
        if train is None:
            pytest.skip("the environment has no tasks of its own (it reads dataset.path)")
        evals = cls.tasks("eval", self.task_size, self.seed)
        for split, rows in (("train", train), ("eval", evals)):
            assert isinstance(rows, list) and len(rows) == self.task_size, \
                f"tasks({split!r}, {self.task_size}, ...) gave {rows if rows is None else len(rows)}"
            json.dumps(rows)  # rows travel like dataset rows
        seen = {json.dumps(self.make().reset(row), sort_keys=True): row for row in train}
        shared = [seen[key] for row in evals
                  if (key := json.dumps(self.make().reset(row), sort_keys=True)) in seen]
        assert not shared, f"train and eval tasks share prompts: {shared[:3]}"
        assert cls.tasks("train", self.task_size, self.seed) == train, \
            "tasks('train', ...) gave other rows for the same seed"

    def test_demonstrations_replay_to_a_positive_reward(self):
        from rlcore.agents.environment import StepResult

        demos = [(s, self.make().demonstration(dict(s))) for s in self.episode_samples()]
        if all(demo is None for _, demo in demos):
            pytest.skip("the environment gives no demonstrations")
        for sample, demo in demos:
            if demo is None:
                continue
            check_messages(demo, f"demonstration({sample!r})")
            env = self.make()
            first = env.reset(dict(sample))
            assert demo[:len(first)] == first, \
                f"the demonstration must start with reset's messages {first!r}"
            result, turn = StepResult(), 0
            for i, m in enumerate(demo[len(first):], len(first)):
                if m["role"] != "assistant":
                    continue
                assert not result.done, f"the demonstration goes on after done: {demo[i:]!r}"
                result = env.step(self.message(m["content"], turn))
                turn += 1
                after = demo[i + 1:]
                stop = next((k for k, o in enumerate(after) if o["role"] == "assistant"), len(after))
                expected = [o["content"] for o in after[:stop]]
                got = [o["content"] for o in result.observations]
                assert got == expected, (f"turn {turn} of the demonstration for {sample!r}: "
                                         f"the environment answered {got!r}, the demonstration "
                                         f"says {expected!r}")
            assert result.done and result.reward > 0, (
                f"the demonstration for {sample!r} ends with done={result.done}, "
                f"reward={result.reward}: a demonstration must reach done with a positive reward")

    def test_astep_gives_what_step_gives(self):
        for sample in self.episode_samples():
            texts = self.assistant_turns(sample)
            sync = self.play(self.make(), sample, texts)
            env = self.make()
            env.reset(sample)
            got = [asyncio.run(env.astep(self.message(t, i))) for i, t in enumerate(texts[:len(sync)])]
            assert outcome(got) == outcome(sync), f"astep and step differ on {sample!r}"

    def test_episodes_stepped_at_once_do_not_interfere(self):
        samples = self.episode_samples()
        alone = [outcome(self.play(self.make(), s, self.assistant_turns(s))) for s in samples]
        envs = [self.make() for _ in samples]
        turns = [self.assistant_turns(s) for s in samples]
        for env, s in zip(envs, samples, strict=True):
            env.reset(s)

        async def together() -> list[list[Any]]:
            results: list[list[Any]] = [[] for _ in envs]
            for turn in range(max(len(t) for t in turns)):
                live = [i for i, t in enumerate(turns) if turn < len(t) and not (
                    results[i] and results[i][-1].done)]
                steps = await asyncio.gather(*(envs[i].astep(self.message(turns[i][turn], turn))
                                               for i in live))
                for i, result in zip(live, steps, strict=True):
                    results[i].append(result)
            return results

        assert [outcome(r) for r in asyncio.run(together())] == alone, \
            "episodes stepped at once (asyncio.gather of astep) end otherwise than one by one"

    def test_observations_are_json(self):
        for sample in self.episode_samples():
            env = self.make()
            json.dumps(env.reset(sample))
            for result in self.play(env, sample, [*self.assistant_turns(sample), UNKNOWN_TOOL]):
                json.dumps(result.observations)

    def make_tokenizer(self, tmp_path: Any) -> Any:
        """The tokenizer whose chat template renders the episodes (the embedded one)."""
        from transformers import AutoTokenizer

        from rlcore.data.embedded import save_embedded_tokenizer

        return AutoTokenizer.from_pretrained(str(save_embedded_tokenizer(tmp_path / "tok")))

    def test_messages_render_through_a_chat_template_with_tools(self, tmp_path):
        tok = self.make_tokenizer(tmp_path)
        for sample in self.episode_samples():
            env = self.make()
            messages = list(env.reset(sample))
            for turn, text in enumerate(self.assistant_turns(sample)):
                result = env.step(self.message(text, turn))
                messages += [{"role": "assistant", "content": text}, *result.observations]
            template = None if "tools" in (tok.chat_template or "") else WITH_TOOLS
            rendered = tok.apply_chat_template(messages, tools=env.tools, tokenize=False,
                                               chat_template=template)
            for m in [*messages, *(t["function"] for t in env.tools)]:
                text = m.get("content", m.get("name")).strip()
                assert text in rendered, f"{m!r} is missing from the rendered chat"


def check_messages(messages: Any, where: str) -> None:
    """Fail unless ``messages`` is a list of ``{"role": one of ROLES, "content": str}``."""
    assert isinstance(messages, list), f"{where} must be a list of messages, not {messages!r}"
    for i, m in enumerate(messages):
        assert isinstance(m, dict) and m.get("role") in ROLES, \
            f"{where}[{i}] needs a role in {ROLES}: {m!r}"
        assert isinstance(m.get("content"), str), f"{where}[{i}] needs str content: {m!r}"


def outcome(results: list[Any]) -> list[tuple[Any, float, bool]]:
    """What an episode's steps gave, to compare two runs of it."""
    return [(r.observations, r.reward, r.done) for r in results]
