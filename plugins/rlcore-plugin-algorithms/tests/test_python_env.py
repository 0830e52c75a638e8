"""The built-in ``python`` environment: its task, its demonstrations and its sandboxed tool."""

from __future__ import annotations

from rlcore.agents.tool_calls import parse_tool_calls, render_call
from rlcore.plugins import registry
from rlcore.testing.environments import EnvironmentConformance
from rlcore_plugin_algorithms.python_env import PythonEnvironment


class TestPythonConformance(EnvironmentConformance):
    environment = "python"
    args = {"timeout_s": 5}
    task_size = 8


def _episode(env: PythonEnvironment, sample: dict, code: str, answer: str):
    env.reset(sample)
    text = render_call("python", {"code": code})
    tool = env.step(parse_tool_calls(text, "hermes").message(text))
    final = env.step({"role": "assistant", "content": answer})
    return tool, final


def test_registered_and_its_tasks_are_deterministic_and_disjoint():
    assert registry.load("environments", "python") is PythonEnvironment
    train, again = PythonEnvironment.tasks("train", 300, 0), PythonEnvironment.tasks("train", 300, 0)
    assert train == again
    held_out = {r["prompt"] for r in PythonEnvironment.tasks("eval", 100, 0)}
    assert not held_out & {r["prompt"] for r in train}
    assert all(r["answer"].isdigit() for r in train)


def test_the_demonstration_is_a_correct_episode():
    env = PythonEnvironment(timeout_s=5)
    sample = PythonEnvironment.tasks("train", 1, 3)[0]
    chat = env.demonstration(sample)
    assert [m["role"] for m in chat] == ["user", "assistant", "tool", "assistant"]
    env.reset(sample)
    tool = env.step(parse_tool_calls(chat[1]["content"], "hermes").message(chat[1]["content"]))
    assert tool.observations[0]["content"].strip() == sample["answer"] == chat[2]["content"].strip()
    assert tool.info == {"tool_calls": 1, "tool_errors": 0} and not tool.done
    final = env.step(chat[3])
    assert final.done and final.reward == 1.0 and final.info["success"]
    assert env.demonstration({"prompt": "a row without code", "answer": "1"}) is None


def test_answers_match_exactly_or_as_numbers():
    env = PythonEnvironment()
    env.reset({"prompt": "?", "answer": "1024"})
    assert [env.finish(t) for t in (" 1024\n", "1,024", "1024.0", "1025", "ten", "")] == \
        [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]


def test_hostile_code_gets_a_status_not_a_hang():
    env = PythonEnvironment(timeout_s=1)
    sample = {"prompt": "?", "answer": "1"}
    tool, final = _episode(env, sample, "while True: pass", "1")
    assert tool.observations[0]["content"].startswith(("timeout:", "cpu_limit:"))
    assert final.reward == 1.0
    env.reset(sample)
    errors = env.step({"role": "assistant", "content": "...", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "python", "arguments": {"src": 1}}}]})
    assert errors.info["tool_errors"] == 1 and "one string argument, code" in \
        errors.observations[0]["content"]
    tool, _ = _episode(env, sample, "1/0", "0")
    assert "ZeroDivisionError" in tool.observations[0]["content"]
