"""``rlcore.scoring``: the unbiased pass@k, and eval scored by the run's reward functions."""

import math

import pytest

from rlcore.config import experiment_config, to_plain
from rlcore.errors import ConfigError
from rlcore.scoring import Scores, call_function, eval_functions, pass_at_k, reward_functions


def test_pass_at_k_is_the_unbiased_estimator():
    """1 - C(n-c, k) / C(n, k), the Codex paper's estimator."""
    for n, c, k in [(10, 3, 1), (10, 3, 5), (8, 0, 4), (8, 8, 1), (5, 2, 4)]:
        want = 1 - math.comb(n - c, k) / math.comb(n, k)
        assert pass_at_k(n, c, k) == pytest.approx(want)
    with pytest.raises(ConfigError, match="1 <= k <= samples per prompt"):
        pass_at_k(2, 1, 3)


def test_eval_of_a_math_run_counts_a_marked_answer_as_correct(rlcore_plugins):
    """A GRPO run rewarded by math_answer evaluates with it: ``... #### 7`` is correct."""
    cfg = experiment_config("grpo", sets=["reward.functions=[math_answer]"])[1]
    names, params, metric = eval_functions(to_plain(cfg))
    assert (names, metric) == (["math_answer"], "math_answer")
    (name, fn, kw), = reward_functions(names, params)
    texts = ["3 + 4 makes #### 7", "7", "#### 8"]
    scores = call_function(name, fn, texts, [{"answer": "7"}] * 3, kw)
    got = Scores(prompts=["p"], completions=[texts], lengths=[[5, 1, 2]],
                 scores={name: [scores]}, metric=metric, ks=[1, 3]).metrics()
    assert got["accuracy"] == pytest.approx(2 / 3) and got["pass@3"] == 1.0


def test_eval_metric_defaults(rlcore_plugins):
    """sft: exact_match; a reward model run: exact_match; eval.metric wins, with its args."""
    assert eval_functions(to_plain(experiment_config("sft")[1]))[2] == "exact_match"
    assert eval_functions({"reward": {"path": "/rm", "functions": ["math_answer"]}})[2] == "exact_match"
    cfg = {"reward": {"functions": ["math_answer"]},
           "eval": {"metric": "regex_match", "metric_args": {"pattern": "#"}}}
    assert eval_functions(cfg) == (["math_answer", "regex_match"],
                                   {"regex_match": {"pattern": "#"}}, "regex_match")
