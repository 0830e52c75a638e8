"""classifier_reward: conformance, scores equal the classifier's on re-tokenised text, errors,
and a short PPO run whose reward comes from the classifier."""

from __future__ import annotations

import math

import pytest
import torch

from rlcore.errors import ConfigError
from rlcore.testing.experiments import ExperimentConformance
from rlcore.testing.interfaces import InterfaceConformance, make_handle, prompt_batch
from rlcore_contrib_classifier_reward.interface import ClassifierRewardInterface

RESPONSES = ["42 great", "41 bad", "", "love love"]
PROMPTS = ["12+30=", "20+21=", "1+1=", "7+8="]


class TestClassifierConformance(InterfaceConformance):
    interface = "classifier_reward"
    calls = {"inference": ("rewards",)}

    @pytest.fixture(autouse=True)
    def _model(self, classifier_dir):
        self.interface_args = {"model": str(classifier_dir)}

    def make_batch(self, tokenizer):
        return prompt_batch(tokenizer, PROMPTS, responses=RESPONSES)


def reference_logits(classifier_dir, texts):
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(classifier_dir)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(classifier_dir).eval()
    with torch.no_grad():
        return model(**tok(texts, padding=True, return_tensors="pt")).logits


def test_rewards_are_the_classifiers_scores_of_the_decoded_responses(classifier_dir):
    handle = make_handle(role="reward")
    batch = prompt_batch(handle.tokenizer, PROMPTS, responses=RESPONSES)
    iface = ClassifierRewardInterface(str(classifier_dir), label="POSITIVE", batch_size=3)
    rewards = iface.inference(handle, batch).data["rewards"]
    expected = reference_logits(classifier_dir, RESPONSES)[:, 1]
    torch.testing.assert_close(rewards, expected, atol=1e-5, rtol=0)
    assert len(set(rewards.tolist())) == len(RESPONSES)  # the text matters
    probs = ClassifierRewardInterface(str(classifier_dir), label=0, score="prob").inference(
        handle, batch).data["rewards"]
    torch.testing.assert_close(probs, reference_logits(classifier_dir, RESPONSES).softmax(-1)[:, 0],
                               atol=1e-5, rtol=0)


def test_with_prompt_scores_prompt_and_response(classifier_dir):
    handle = make_handle(role="reward")
    batch = prompt_batch(handle.tokenizer, PROMPTS, responses=RESPONSES)
    rewards = ClassifierRewardInterface(str(classifier_dir), with_prompt=True).inference(
        handle, batch).data["rewards"]
    texts = [p + r for p, r in zip(PROMPTS, RESPONSES, strict=True)]
    torch.testing.assert_close(rewards, reference_logits(classifier_dir, texts)[:, 1],
                               atol=1e-5, rtol=0)


@pytest.mark.parametrize("kwargs, message", [
    ({"model": "/nonexistent/sentiment"}, r"reward.interface_args.model: /nonexistent/sentiment "
                                          r"is not a HF model directory"),
    ({"label": "JOY"}, r"reward.interface_args.label: the classifier has no label 'JOY'; its "
                       r"labels are \['NEGATIVE', 'POSITIVE'\]"),
    ({"label": 2}, r"reward.interface_args.label: 2 is not a label index of a classifier with 2"),
    ({"score": "rank"}, r"reward.interface_args.score: expected 'logit' or 'prob'"),
])
def test_bad_arguments_name_the_setting(classifier_dir, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        ClassifierRewardInterface(**{"model": str(classifier_dir), **kwargs})


class PPOWithClassifier(ExperimentConformance):
    """Not collected (no Test prefix): its helpers run PPO with the classifier as the reward."""

    experiment = "ppo"
    sets = ["warm_start.sft_steps=0", "run.batch_size=4", "gen.n_samples=2",
            "gen.max_new_tokens=4", "actor.hidden_size=32", "policy.minibatches=1",
            "reward.interface=classifier_reward"]


@pytest.mark.slow
def test_a_ppo_run_is_rewarded_by_the_classifier(classifier_dir, tmp_path):
    from rlcore.runtime.metrics import read_metrics

    summary = PPOWithClassifier().run_steps(
        tmp_path, 2, f"reward.interface_args.model={classifier_dir}",
        "reward.interface_args.label=POSITIVE")
    assert summary["status"] == "completed" and summary["steps"] == 2
    means = [r["reward/mean"] for r in read_metrics(tmp_path) if "reward/mean" in r]
    assert len(means) == 2 and all(math.isfinite(m) for m in means)
    # exact_match (the default reward) gives 0 or 1; a random classifier's logits are neither.
    assert all(m not in (0.0, 1.0) for m in means)
