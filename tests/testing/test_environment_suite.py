"""EnvironmentConformance passes a well-behaved environment and fails, naming what is wrong,
environments that break the contract (one broken variant per check)."""

from __future__ import annotations

import re
import textwrap

from rlcore.testing.environments import EnvironmentConformance

pytest_plugins = ["pytester"]

ADDER = '''
from rlcore.agents.environment import ToolEnvironment, ToolError, tool_schema
from rlcore.agents.tool_calls import render_call


class Adder(ToolEnvironment):
    """Add two numbers with an ``add`` tool; train has even first operands, eval odd."""

    tools = [tool_schema("add", "The sum of a and b.", {"a": {"type": "integer"},
                                                         "b": {"type": "integer"}})]

    def call(self, name, arguments):
        if set(arguments) != {"a", "b"}:
            raise ToolError("add takes a and b")
        return str(arguments["a"] + arguments["b"])

    def finish(self, text):
        return 1.0 if text.strip() == self.sample["answer"] else 0.0

    @classmethod
    def tasks(cls, split, size, seed):
        first = 0 if split == "train" else 1
        return [{"prompt": f"What is {2 * i + first}+{seed}?", "a": 2 * i + first, "b": seed,
                 "answer": str(2 * i + first + seed)} for i in range(size)]

    def demonstration(self, sample):
        args = {"a": sample["a"], "b": sample["b"]}
        return [*self.first_messages(sample),
                {"role": "assistant", "content": render_call("add", args)},
                {"role": "tool", "name": "add", "content": self.call("add", args)},
                {"role": "assistant", "content": sample["answer"]}]
'''
exec(ADDER)  # noqa: S102 - the same class here and in the broken variants' file


class TestAdder(EnvironmentConformance):
    environment = Adder  # noqa: F821 - defined by exec above


BROKEN = ADDER + '''
import random

from rlcore.testing.environments import EnvironmentConformance


class NotAnEnvironment:
    tools = []


class NoDescription(Adder):
    tools = [{"type": "function", "function": {"name": "add", "parameters": {
        "type": "object", "properties": {}}}}]


class Moody(Adder):
    def first_messages(self, sample):
        return [{"role": "system", "content": random.choice("abcdefghij") * 8},
                *super().first_messages(sample)]


class IntReward(Adder):
    def step(self, message):
        result = super().step(message)
        result.reward = int(result.reward)
        return result


class RaisesOnUnknownTools(Adder):
    def step(self, message):
        for call in message.get("tool_calls", []):
            assert call["function"]["name"] == "add"
        return super().step(message)


class Leaky(Adder):
    @classmethod
    def tasks(cls, split, size, seed):
        return Adder.tasks("train", size, seed)


class WrongDemo(Adder):
    def demonstration(self, sample):
        demo = super().demonstration(sample)
        demo[-2] = {"role": "tool", "name": "add", "content": "41"}
        return demo


class SharedState(Adder):
    current = {}

    def reset(self, sample):
        SharedState.current.update(sample)
        return super().reset(sample)

    def finish(self, text):
        return 1.0 if text.strip() == SharedState.current["answer"] else 0.0


def suite(cls):
    return type("Test" + cls.__name__, (EnvironmentConformance,), {"environment": cls})


TestNotAnEnvironment = suite(NotAnEnvironment)
TestNoDescription = suite(NoDescription)
TestMoody = suite(Moody)
TestIntReward = suite(IntReward)
TestRaisesOnUnknownTools = suite(RaisesOnUnknownTools)
TestLeaky = suite(Leaky)
TestWrongDemo = suite(WrongDemo)
TestSharedState = suite(SharedState)
'''

CHECKS = {  # broken class -> (the test that must fail, text its message contains)
    "NotAnEnvironment": ("test_is_an_environment", "is not a subclass of rlcore.agents"),
    "NoDescription": ("test_tools_are", "tool 'add' needs a description"),
    "Moody": ("test_reset_gives", "gave different messages on a second environment"),
    "IntReward": ("test_a_final_answer", "the reward must be a finite float, not int"),
    "RaisesOnUnknownTools": ("test_bad_tool_calls", "step raised AssertionError"),
    "Leaky": ("test_tasks_are", "train and eval tasks share prompts"),
    "WrongDemo": ("test_demonstrations", "the environment answered ['0'], the demonstration says ['41']"),
    "SharedState": ("test_episodes_stepped_at_once", "end otherwise than one by one"),
}


def test_the_suite_fails_environments_that_break_the_contract(pytester):
    pytester.makepyfile(test_broken=textwrap.dedent(BROKEN))
    selected = " or ".join(f"(Test{cls} and {test})" for cls, (test, _) in CHECKS.items())
    result = pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider", "-k", selected)
    result.assert_outcomes(failed=len(CHECKS), passed=1)  # RaisesOnUnknownTools takes malformed calls
    out = result.stdout.str()
    for cls, (test, text) in CHECKS.items():
        report = re.split(r"\n_+ Test", out.split(f" Test{cls}.{test}", 1)[1])[0]  # its report
        assert text in report, f"Test{cls}.{test} fails without saying {text!r}:\n{report}"
