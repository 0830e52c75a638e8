"""The multi-turn episode loop with a scripted engine: observations appended through the chat
template, malformed calls as error observations, truncation at max_turns, max_tokens and the
engine's max_new_tokens, per-turn rewards, and episodes as JSON."""

from __future__ import annotations

import json

import pytest
import torch

from rlcore.agents.environment import StepResult, ToolEnvironment, tool_schema
from rlcore.agents.episodes import Episode, episode_metrics, observation_ids, run_episodes
from rlcore.agents.tool_calls import render_call
from rlcore.data.tokenizer import load_tokenizer
from rlcore.models.generation import GenerationConfig
from rlcore.rollout.engine import Rollout

TOK = load_tokenizer(None)  # the embedded char-level tokenizer and its chat template
EOS = TOK.eos_token_id


class Adder(ToolEnvironment):
    """Sum two numbers with the add tool; reward 1 for the right final answer."""

    tools = [tool_schema("add", "a + b", {"a": {"type": "integer"}, "b": {"type": "integer"}})]

    def call(self, name, arguments):
        return str(int(arguments["a"]) + int(arguments["b"]))

    def finish(self, text):
        return float(text.strip() == self.sample["answer"])


class Scripted:
    """An engine that writes ``script[turn]`` for every prompt (eos appended unless ``cut``)."""

    version, metrics = 3, {}

    def __init__(self, script, cut=()):
        self.script, self.cut, self.turn, self.prompts = script, set(cut), 0, []

    def generate(self, prompts, config, seed):
        self.prompts.append(prompts)
        text = self.script[min(self.turn, len(self.script) - 1)]
        ids = TOK(text, add_special_tokens=False)["input_ids"]
        ids = ids + ([] if self.turn in self.cut else [EOS])
        finish = "length" if self.turn in self.cut else "stop"
        self.turn += 1
        n = len(prompts)
        return Rollout([torch.tensor(ids)] * n, [torch.full((len(ids),), -0.5)] * n,
                       [torch.full((len(ids),), self.version)] * n, [finish] * n, [None] * n)


CALL = render_call("add", {"a": 20, "b": 22})
SAMPLE = {"prompt": "20+22?", "answer": "42"}


def episodes(script, samples=(SAMPLE,), cut=(), max_turns=4, max_tokens=400, fmt="auto"):
    engine = Scripted(script, cut)
    out = run_episodes(engine, TOK, Adder, list(samples), GenerationConfig(eos_token_ids=[EOS]),
                       seed=1, max_turns=max_turns, max_tokens=max_tokens, tool_format=fmt)
    return out, engine


def text(tokens):
    return TOK.decode(tokens.tolist(), skip_special_tokens=False)


def test_a_tool_call_then_an_answer():
    (ep,), engine = episodes([CALL, "42"])
    assert [s.action for s in ep.segments] == [True, False, True]
    assert text(ep.segments[1].tokens) == "<|tool|>42<|assistant|>"
    assert ep.done and ep.success and ep.reward == 1.0 and not ep.truncated
    assert (ep.turns, ep.tool_calls, ep.tool_errors) == (2, 1, 0)
    # the reward sits on the last token of the last turn; the second turn saw the first and
    # the observation, token for token
    assert ep.turn_rewards[-1] == (ep.length - 1, 1.0)
    assert engine.prompts[1][0] == ep.prompt + ep.segments[0].tokens.tolist() + \
        ep.segments[1].tokens.tolist()
    assert text(torch.tensor(ep.prompt)) == "<bos><|user|>20+22?<|assistant|>"


def test_malformed_calls_become_error_observations_and_metrics():
    (ep,), _ = episodes(['<tool_call>{"name": "add", "arguments": {"a": 1,}}</tool_call>',
                         render_call("mul", {"a": 1}), "0"])
    observations = [text(s.tokens) for s in ep.segments if not s.action]
    assert "error: the tool call is not valid JSON" in observations[0]
    assert "error: no tool named 'mul'" in observations[1]
    assert (ep.tool_calls, ep.tool_errors, ep.done, ep.reward) == (2, 2, True, 0.0)
    metrics = episode_metrics([ep])
    assert metrics["tool_call_valid_frac"] == 0.0 and metrics["tool_errors"] == 2.0


def test_max_turns_truncates_an_episode_that_keeps_calling():
    (ep,), _ = episodes([CALL], max_turns=3)
    assert ep.truncated and not ep.done and ep.turns == 3 and ep.reward == 0.0
    assert ep.segments[-1].action  # nothing is appended after the last allowed turn
    assert episode_metrics([ep])["truncated_frac"] == 1.0


def test_max_tokens_cuts_the_turn_that_crosses_it():
    (ep,), _ = episodes([CALL, "42"], max_tokens=10)
    assert ep.truncated and ep.length == 10 and len(ep.segments) == 1
    assert len(ep.segments[0].logprobs) == len(ep.segments[0].versions) == 10


def test_a_turn_cut_at_max_new_tokens_truncates_without_stepping():
    (ep,), _ = episodes([CALL, "42"], cut={0})
    assert ep.truncated and ep.turns == 1 and ep.tool_calls == 0 and not ep.turn_rewards


def test_per_turn_rewards_land_on_each_turns_last_token():
    class Paid(Adder):
        def step(self, message):
            result = super().step(message)
            return StepResult(result.observations, result.reward + 0.25, result.done,
                              result.info)

    engine = Scripted([CALL, "42"])
    (ep,) = run_episodes(engine, TOK, Paid, [SAMPLE], GenerationConfig(eos_token_ids=[EOS]), 1,
                         max_turns=4, max_tokens=400)
    first = len(ep.segments[0].tokens) - 1
    assert ep.turn_rewards == [(first, 0.25), (ep.length - 1, 1.25)] and ep.reward == 1.5


def test_many_episodes_step_independently():
    samples = [{"prompt": "20+22?", "answer": "42"}, {"prompt": "?", "answer": "7"}]
    eps, _ = episodes([CALL, "42"], samples=samples)
    assert [e.success for e in eps] == [True, False]


def test_observations_follow_the_template_with_the_stop_token_written_once():
    ids = observation_ids(TOK, [{"role": "tool", "content": "5"}], [EOS])
    assert TOK.decode(ids, skip_special_tokens=False) == "<|tool|>5<|assistant|>"


def test_episodes_round_trip_through_json():
    (ep,), _ = episodes([CALL, "42"])
    back = Episode.from_json(json.loads(json.dumps(ep.to_json())))
    assert back.ids() == ep.ids() and back.turn_rewards == ep.turn_rewards
    assert [s.action for s in back.segments] == [s.action for s in ep.segments]
    with pytest.raises(ValueError, match="not an episode"):
        Episode.from_json({"prompt": [1]})


class Routed(Scripted):
    """The scripted engine, also recording experts: every token of turn ``t``'s prompt and
    response routed to expert ``t`` (-1 on the last new token, which was never fed)."""

    def generate(self, prompts, config, seed):
        turn = self.turn
        out = super().generate(prompts, config, seed)
        out.routing = []
        for prompt, tokens in zip(prompts, out.tokens, strict=True):
            routing = torch.full((len(prompt) + len(tokens), 2, 2), turn, dtype=torch.int16)
            routing[-1] = -1
            out.routing.append(routing)
        return out


def test_an_episode_keeps_its_last_turns_routing_which_covers_every_earlier_turn():
    (ep,) = run_episodes(Routed([CALL, "42"]), TOK, Adder, [SAMPLE],
                         GenerationConfig(eos_token_ids=[EOS]), seed=1, max_turns=4, max_tokens=400)
    assert ep.turns == 2 and ep.done
    n = len(ep.prompt) + ep.length  # nothing follows the answer
    assert ep.routing.shape == (n, 2, 2)
    assert (ep.routing[:-1] == 1).all() and (ep.routing[-1] == -1).all()  # turn 1's prefill


def test_a_cut_turn_keeps_the_routing_of_the_tokens_it_kept():
    (ep,) = run_episodes(Routed([CALL, "42"]), TOK, Adder, [SAMPLE],
                         GenerationConfig(eos_token_ids=[EOS]), seed=1, max_turns=4, max_tokens=10)
    assert ep.truncated and ep.routing.shape[0] == len(ep.prompt) + ep.length == len(ep.ids())
