"""The conformance suites run on the standard plugins (the examples of docs/testing.md), and
fail, with a message saying what was measured, on plugins that break their contracts."""

from __future__ import annotations

import textwrap

import pytest
import torch

from rlcore.testing.datasets import DatasetConformance
from rlcore.testing.experiments import ExperimentConformance
from rlcore.testing.families import assert_close, generation_diff
from rlcore.testing.interfaces import InterfaceConformance, make_handle, prompt_batch
from rlcore.testing.rewards import RewardConformance

pytest_plugins = ["pytester"]


class TestPromptDataset(DatasetConformance):
    dataset = "prompt"
    rows = [{"prompt": f"{i}+1=", "answer": str(i + 1)} for i in range(6)]
    bad_rows = {"no prompt": ({"question": "1+1="}, "field 'prompt'"),
                "prompt not text": ({"prompt": 3}, "expected a string")}


class TestSFTInterface(InterfaceConformance):
    interface = "sft"
    calls = {"inference": ("logprobs",), "train_step": ()}
    trainable = True

    def make_batch(self, tokenizer):
        batch = prompt_batch(tokenizer, ["1+2=", "3+4="], responses=["3", "7"])
        return batch.rename({"prompt_mask": "loss_mask"})



class TestRewardFunctionsInterface(InterfaceConformance):
    """An inference that returns ``(batch, metrics)``, as the executor accepts."""

    interface = "reward_functions"
    interface_args = {"functions": ["exact_match"]}
    calls = {"inference": ("rewards",)}

    def make_batch(self, tokenizer):
        return prompt_batch(tokenizer, ["1+2=", "3+4="], responses=["3", "8"],
                            metadata={"answer": ["3", "7"]})

class TestExactMatch(RewardConformance):
    reward = "exact_match"
    completions = ["42", " 42 ", "41"]
    samples = [{"answer": "42"}] * 3
    expected = [1.0, 1.0, 0.0]


class TestSFTExperiment(ExperimentConformance):
    experiment = "sft"
    sets = ["run.batch_size=4", "actor.hidden_size=32", "eval.size=4"]


def test_make_handle_wraps_like_a_run():
    frozen = make_handle()
    assert not frozen.trainable and frozen.role == "actor" and frozen.tokenizer is not None
    trained = make_handle(trainable=True, role="critic", value_head=True)
    assert trained.trainable and trained.module.config.value_head
    ids = torch.tensor(trained.tokenizer("1+1=")["input_ids"])
    out = trained.model(ids, torch.tensor([0, len(ids)]))
    assert out.shape == (len(ids),)  # a value per token


def test_parity_failures_report_the_measured_difference():
    expected = torch.zeros(3, 4)
    actual = expected.clone()
    actual[2, 1] = 0.5
    with pytest.raises(AssertionError) as info:
        assert_close(actual, expected, "logits")
    message = str(info.value)
    assert "max abs diff 0.5 > atol 0.0001 at index (2, 1)" in message
    assert "rlcore 0.5, reference 0" in message and "1 of 12 values differ" in message
    assert generation_diff([1, 2, 3, 4], [1, 2, 9, 4]).startswith(
        "generated tokens differ first at position 2 (rlcore [3, 4]..., transformers [9, 4]...)")


BROKEN = '''
import pytest
from rlcore.testing.datasets import DatasetConformance
from rlcore.testing.rewards import RewardConformance


def short(completions, samples, *, extra: int = 0):
    return [1.0] * max(len(completions) - 1, 0)


def nan(completions, samples):
    return [float("nan")] * len(completions)


class TestShort(RewardConformance):
    reward = staticmethod(short)
    completions = ["a", "b"]
    samples = [{}, {}]


class TestNaN(RewardConformance):
    reward = staticmethod(nan)
    completions = ["a"]
    samples = [{}]


class TestVagueErrors(DatasetConformance):
    dataset = "prompt"
    rows = [{"prompt": "1+1="}, {"prompt": "2+2="}]
    bad_rows = {"says the wrong thing": ({"prompt": 3}, "the row is haunted")}
'''


def test_suites_fail_plugins_that_break_the_contract(pytester):
    pytester.makepyfile(test_broken=textwrap.dedent(BROKEN))
    result = pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider", "-k",
                                          "one_finite or bad_rows")
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(["*1 scores for 2*", "*score 0 is nan*",
                                 "*does not name 'the row is haunted'*"])
