"""The agent drives the calculator through ``rlcore serve``; a policy step trains on what it
collected: the served log-probs are the trainer's, observation tokens are never actions."""

from __future__ import annotations

import json

import httpx
import pytest
import torch

from rlcore.sdk import Episode, PackedBatch, load_pretrained, load_tokenizer
from rlcore.testing.chat_models import save_chat_model, served
from rlcore.testing.interfaces import make_handle
from rlcore_contrib_http_agent.agent import PrefixError, collect, main, run_task
from rlcore_plugin_algorithms.advantages import AdvantageInterface
from rlcore_plugin_algorithms.calculator import Calculator
from rlcore_plugin_algorithms.multi_turn import EnvRewardInterface, episode_batch
from rlcore_plugin_algorithms.rl_config import (
    AdvantageOptions,
    GenerationOptions,
    KLOptions,
    PolicyOptions,
    RewardOptions,
)
from rlcore_plugin_algorithms.rl_interfaces import PolicyInterface
from rlcore_plugin_algorithms.sampling import SamplerInterface, action_mask

TASKS = 6

pytestmark = pytest.mark.slow  # trains a chat model, serves it, trains a policy step


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A tiny model that learned the demonstrations of the first tasks (so that sampling at
    temperature 1 solves some and fails others)."""
    chats = [Calculator().demonstration(row) for row in Calculator.tasks("train", TASKS, 0)]
    return save_chat_model(tmp_path_factory.mktemp("agent") / "calc", chats)


@pytest.fixture(scope="module")
def collected(model_dir, tmp_path_factory):
    """The agent's episodes, as the CLI wrote them (JSONL of Episode.to_json())."""
    out = tmp_path_factory.mktemp("episodes") / "episodes.jsonl"
    with served(model_dir) as url:
        main(["--url", url, "--tasks", str(TASKS), "--out", str(out), "--seed", "0"])
        again = collect(url, TASKS, out.with_name("again.jsonl"), seed=0)
    assert out.with_name("again.jsonl").read_text() == out.read_text()  # seeded: repeatable
    assert len(again) == TASKS
    return [Episode.from_json(json.loads(line)) for line in out.read_text().splitlines()]


def test_episodes_are_multi_turn_and_hold_what_was_sampled(collected, model_dir):
    tok = load_tokenizer(model_dir)
    assert all(e.done and e.turns == 2 and e.tool_calls == 1 for e in collected)
    assert 0 < sum(e.success for e in collected) < TASKS  # mixed rewards: advantages not all 0
    for e in collected:
        action, observation, answer = e.segments
        assert action.action and not observation.action and answer.action
        assert tok.decode(action.tokens.tolist(), skip_special_tokens=True).startswith("<tool_call>")
        assert int(action.tokens[-1]) == tok.eos_token_id
        assert "<|tool|>" in tok.decode(observation.tokens.tolist())
        assert e.turn_rewards[-1] == (e.length - 1, float(e.success))
        assert (action.versions == 0).all()


def test_a_policy_step_trains_on_the_collected_episodes(collected, model_dir):
    tok = load_tokenizer(model_dir)
    data = PackedBatch.from_sequences([f"t{i}" for i in range(len(collected))],
                                      {"packed_prompts": [[e.prompt] for e in collected]})
    batch = episode_batch(data, collected, 1, with_mask=False, engine_version=0)
    prompt_mask, cu = batch.data["prompt_mask"], batch.cu_seqlens("packed_input_ids")
    act = action_mask(prompt_mask, cu)
    start = 0
    for e in collected:  # position t predicts token t+1: never an observation's or the prompt's
        pos = len(e.prompt)
        for seg in e.segments:
            n = len(seg.tokens)
            assert bool(act[start + pos - 1 : start + pos - 1 + n].all()) == seg.action
            assert not act[start + pos - 1 : start + pos - 1 + n].any() or seg.action
            pos += n
        start += pos

    gen = GenerationOptions(temperature=1.0, max_new_tokens=96)
    model, _ = load_pretrained(model_dir)
    handle = make_handle(model, trainable=True, tokenizer=tok, lr=1e-2, family="llama")
    scored = SamplerInterface(gen).inference(handle, batch)
    drift = (scored.data["logprobs"][act] - batch.data["packed_logprobs"][act]).abs().max()
    assert drift <= 1e-4, f"served and recomputed log-probs differ by {drift}"

    batch.update(EnvRewardInterface().inference(None, batch))
    node = AdvantageInterface(AdvantageOptions(estimator="reinforce_pp"), KLOptions(),
                              RewardOptions(), gen.max_new_tokens)
    advantages, _ = node.inference(None, batch)
    batch.update(advantages)
    assert batch.data["advantages"][act].abs().sum() > 0
    assert (batch.data["advantages"][~act] == 0).all()

    hidden = []

    def keep_grad(_module, _inputs, out):  # the final hidden state at each position
        out.retain_grad()
        hidden.append(out)

    hook = handle.module.final_norm.register_forward_hook(keep_grad)
    before = {k: v.detach().clone() for k, v in handle.module.state_dict().items()}
    metrics = PolicyInterface(PolicyOptions(minibatches=1), KLOptions(), gen).train_step(handle, batch)
    hook.remove()
    assert metrics["/gen/logprob_drift"] <= 1e-4 and metrics["updates"] == 1
    changed = [k for k, v in handle.module.state_dict().items() if not torch.equal(v, before[k])]
    assert changed and handle.version == 1
    (h,) = hidden  # one forward: the step's
    grad = h.grad.abs().sum(-1)
    assert (grad[~act] == 0).all()  # no loss at positions predicting prompt or observations
    assert (grad[act] > 0).any()


def test_a_server_that_breaks_the_prefix_is_refused():
    """A second prompt that does not start with the first prompt + completion: token drift."""
    prompts = iter([[1, 5, 6], [1, 5, 7, 8, 9]])

    def answer(request):
        body = json.loads(request.content)
        assert body["tools"] == Calculator.tools
        call = {"id": "c", "type": "function",
                "function": {"name": "calculator", "arguments": '{"expression": "2*3"}'}}
        return httpx.Response(200, json={
            "prompt_token_ids": next(prompts), "retokenized": True,
            "choices": [{"index": 0, "finish_reason": "tool_calls", "token_ids": [40, 2],
                         "token_logprobs": [-0.1, -0.2], "weight_version": 0,
                         "message": {"role": "assistant", "content": None, "tool_calls": [call]}}]})

    client = httpx.Client(base_url="http://agent.test", transport=httpx.MockTransport(answer))
    row = Calculator.tasks("train", 1, 0)[0]
    with pytest.raises(PrefixError, match="turn 1: the server's prompt does not start with"):
        run_task(client, Calculator(), row)
