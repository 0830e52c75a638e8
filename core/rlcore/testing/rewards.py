"""Conformance suite for reward-function plugins: one finite score per completion, parameters
checked by name, and failures that say what was wrong.

Signature: subclass :class:`RewardConformance`, set ``reward`` (a registered name or the
function) and examples::

    from rlcore.testing.rewards import RewardConformance

    class TestKeyword(RewardConformance):
        reward = "keyword"
        params = {"word": "four"}                      # keyword parameters of a normal call
        completions = ["four", "five", ""]
        samples = [{"answer": "4"}, {"answer": "5"}, {"answer": "0"}]
        expected = [1.0, 0.0, 0.0]                     # optional: the exact scores
        bad_inputs = {"no answer": (["x"], [{}], "answer")}   # must raise, naming the text

A reward function is ``fn(completions, samples, **params) -> list[float]``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar

import pytest


class RewardConformance:
    """Base of a reward function's conformance tests; set ``reward`` and the examples."""

    reward: ClassVar[str | Callable | None] = None
    params: ClassVar[dict[str, Any]] = {}
    completions: ClassVar[list[str]] = []
    samples: ClassVar[list[dict[str, Any]]] = []
    expected: ClassVar[list[float] | None] = None
    bad_inputs: ClassVar[dict[str, tuple[list[str], list[dict[str, Any]], str]]] = {}

    def function(self) -> Callable:
        if self.reward is None:
            pytest.fail(f"{type(self).__name__} must set `reward` (a registered name or function)")
        from rlcore.plugins.registry import resolve_impl

        return resolve_impl("rewards", self.reward)

    def score(self, completions: list[str], samples: list[dict[str, Any]]) -> list[Any]:
        scores = self.function()(list(completions), [dict(s) for s in samples], **self.params)
        return scores.tolist() if hasattr(scores, "tolist") else list(scores)

    def examples(self) -> tuple[list[str], list[dict[str, Any]]]:
        if not self.completions or len(self.samples) != len(self.completions):
            pytest.fail(f"{type(self).__name__} must set `completions` and one `samples` dict "
                        "for each")
        return self.completions, self.samples

    # ------------------------------------------------------------------ the tests

    def test_one_finite_score_per_completion(self):
        """As many scores as completions, each a finite number (and ``expected`` when given)."""
        completions, samples = self.examples()
        scores = self.score(completions, samples)
        assert len(scores) == len(completions), f"{len(scores)} scores for {len(completions)}"
        for i, s in enumerate(scores):
            assert isinstance(s, int | float) and not isinstance(s, bool), \
                f"score {i} is {type(s).__name__} {s!r}, not a number"
            assert math.isfinite(float(s)), f"score {i} is {s}"
        if self.expected is not None:
            assert [float(s) for s in scores] == pytest.approx(list(self.expected))

    def test_scores_do_not_depend_on_batch_order(self):
        """Scoring the batch reversed gives the same score per completion."""
        completions, samples = self.examples()
        forward = self.score(completions, samples)
        backward = self.score(completions[::-1], samples[::-1])
        assert [float(s) for s in backward[::-1]] == pytest.approx([float(s) for s in forward])

    def test_empty_batch_gives_no_scores(self):
        """No completions: an empty list, not an error."""
        assert self.score([], []) == []

    def test_parameters_are_checked_by_name(self):
        """An unknown parameter is refused with an error naming it and the function."""
        from rlcore.errors import ConfigError

        bind = _bind_params()
        name = self.reward if isinstance(self.reward, str) else self.function().__name__
        bind(name, self.function(), dict(self.params))
        with pytest.raises(ConfigError) as info:
            bind(name, self.function(), {**self.params, "no_such_parameter_xyz": 1})
        assert "no_such_parameter_xyz" in str(info.value) and name in str(info.value)

    def test_bad_inputs_raise_errors_that_name_the_problem(self):
        """Each ``bad_inputs`` case raises an exception whose message contains its text."""
        if not self.bad_inputs:
            pytest.skip("no bad_inputs declared")
        for label, (completions, samples, expected) in self.bad_inputs.items():
            with pytest.raises(Exception) as info:  # noqa: B017 - any error, judged by its text
                self.score(completions, samples)
            assert expected in str(info.value), \
                f"{label}: the error does not name {expected!r}: {info.value}"


def _bind_params() -> Callable:
    """``bind_params`` of the standard rewards plugin, which the reward runtime uses."""
    try:
        from rlcore_plugin_rewards.rules import bind_params
    except ImportError:
        pytest.skip("rlcore-plugin-rewards is not installed (it checks reward parameters)")
    return bind_params
