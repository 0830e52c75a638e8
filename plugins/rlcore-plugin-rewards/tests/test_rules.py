"""The rule rewards score against reference answers and load through the registry."""

import pytest

from rlcore.errors import DataError
from rlcore.plugins import registry
from rlcore_plugin_rewards import rules


def test_exact_match_strips_whitespace():
    assert rules.exact_match([" 42 ", "41", "42\n"], [{"answer": "42"}] * 3) == [1.0, 0.0, 1.0]


@pytest.mark.parametrize(
    "completion, answer, expected",
    [
        ("so the sum is 1,234.", "1234", 1.0),
        ("first 3 then 7", "7", 1.0),
        ("#### 12 and later 13", "12", 1.0),
        ("the result is \\boxed{-5}", "-5", 1.0),
        ("no number here", "3", 0.0),
        ("2.5", "2.50", 1.0),
        ("26", "The answer is #### 25", 0.0),
    ],
)
def test_math_answer(completion, answer, expected):
    assert rules.math_answer([completion], [{"ground_truth": answer}]) == [expected]


def test_missing_answer_names_the_sample():
    with pytest.raises(DataError, match="sample 'q7' has no 'answer'"):
        rules.exact_match(["x"], [{"id": "q7", "prompt": "p"}])


def test_format_penalty():
    samples = [{}, {"truncated": True}, {}]
    assert rules.format_penalty(["", "long", "ok"], samples) == [-1.0, -1.0, 0.0]


def test_registered_through_entry_point():
    assert set(registry.items("rewards")) >= {"exact_match", "math_answer", "format_penalty"}
    assert registry.provider("rewards", "exact_match").startswith("rlcore-plugin-rewards")
    assert registry.load("rewards", "math_answer") is rules.math_answer
