"""math_answer's two backends, builtin and math_verify, on one table of answer pairs."""

import sys

import pytest

from rlcore.errors import ConfigError
from rlcore_plugin_rewards import rules

# (completion, answer, builtin's score, math_verify's score)
PAIRS = [
    # fractions
    (r"\frac{1}{2}", r"\frac{1}{2}", 1, 1),
    (r"1/2", r"\frac{1}{2}", 1, 1),
    (r"0.5", r"\frac{1}{2}", 1, 1),
    (r"\dfrac{3}{4}", "0.75", 1, 1),
    (r"\tfrac{3}{4}", "3/4", 1, 1),
    (r"so it is \frac{1}{2}", r"\frac{1}{2}", 1, 1),
    (r"\frac{2}{4}", r"\frac{1}{2}", 1, 1),
    (r"\frac{1}{3}", r"\frac{1}{2}", 0, 0),
    (r"-\frac{1}{2}", "-0.5", 1, 1),
    (r"\frac{-1}{2}", r"-\frac{1}{2}", 1, 1),
    # boxed
    (r"The answer is \boxed{\frac{1}{2}}", "1/2", 1, 1),
    (r"\boxed{7}", "7", 1, 1),
    (r"first \boxed{3}, finally \boxed{4}", "4", 1, 1),
    (r"\boxed{2^{10}}", "1024", 0, 1),
    (r"\boxed{x^2}", "x^2", 1, 1),
    (r"\boxed{A}", "A", 1, 1),
    (r"\boxed{B}", "A", 0, 0),
    (r"\boxed{\sqrt{2}}", r"\sqrt{2}", 1, 1),
    (r"\boxed{\sqrt{8}}", r"2\sqrt{2}", 0, 1),
    (r"\boxed{\pi}", r"\pi", 1, 1),
    # GSM8K's #### mark
    ("#### 7", "7", 1, 1),
    ("so 3 + 4 = 7\n#### 7", "7", 1, 1),
    ("#### 12 and later 13", "12", 1, 1),
    ("26", "The answer is #### 25", 0, 0),
    ("#### 1,234", "1234", 1, 1),
    # units, currency, percent
    ("5 cm", "5", 1, 1),
    (r"5\text{ cm}", "5", 1, 1),
    (r"\$5", "5", 1, 1),
    ("$5", "5", 1, 1),
    (r"50\%", "50", 1, 1),
    ("42 apples", "42", 1, 1),
    (r"90^\circ", "90", 1, 1),
    # negatives
    ("-3", "-3", 1, 1),
    ("\u22123", "-3", 1, 1),
    ("-3", "3", 0, 0),
    ("the result is -12.5", "-12.5", 1, 1),
    # decimals and thousands
    ("2.5", "2.50", 1, 1),
    ("1.0", "1", 1, 1),
    ("1,234", "1234", 1, 1),
    ("so the sum is 1,234.", "1234", 1, 1),
    ("0.333", r"\frac{1}{3}", 0, 0),
    ("3.14", "3.14159", 0, 0),
    ("1e3", "1000", 1, 0),
    # sets, tuples, intervals
    (r"\{1,2\}", r"\{2,1\}", 0, 1),
    (r"\{1, 2\}", r"\{1,2\}", 1, 1),
    (r"\{1,3\}", r"\{1,2\}", 0, 0),
    ("(1,2)", "(1,2)", 1, 1),
    ("(2,1)", "(1,2)", 0, 0),
    ("[1,2)", "[1,2)", 1, 1),
    # expressions and equations
    ("x^2", "x^2", 1, 1),
    ("x = 3", "3", 1, 1),
    ("2^{10}", "1024", 0, 1),
    (r"\sqrt{2}", r"\sqrt{2}", 1, 1),
    ("2x+1", "1+2x", 0, 1),
    # nothing to compare
    ("no number here", "3", 0, 0),
    ("", "3", 0, 0),
]


def test_the_table_is_large_and_the_backends_differ_somewhere():
    assert len(PAIRS) >= 50
    assert any(b != m for _, _, b, m in PAIRS)


def test_builtin_backend_on_the_table():
    completions = [c for c, _, _, _ in PAIRS]
    samples = [{"answer": a} for _, a, _, _ in PAIRS]
    got = rules.math_answer(completions, samples)
    assert [(c, a, s) for (c, a, _, _), s in zip(PAIRS, got, strict=True)] == [(c, a, b) for c, a, b, _ in PAIRS]


def test_math_verify_backend_on_the_table():
    pytest.importorskip("math_verify")
    completions = [c for c, _, _, _ in PAIRS]
    samples = [{"answer": a} for _, a, _, _ in PAIRS]
    got = rules.math_answer(completions, samples, backend="math_verify")
    assert [(c, a, s) for (c, a, _, _), s in zip(PAIRS, got, strict=True)] == [(c, a, m) for c, a, _, m in PAIRS]


def test_math_verify_scores_use_the_reward_parameters():
    pytest.importorskip("math_verify")
    scores = rules.math_answer(["\\boxed{2}", "\\boxed{3}", "no answer"], [{"answer": "2"}] * 3,
                               backend="math_verify", reward_correct=2.0, reward_wrong=-1.0,
                               reward_unparsed=-0.5)
    assert scores == [2.0, -1.0, -0.5]


def test_backend_through_reward_args_binding():
    params = rules.bind_params("math_answer", rules.math_answer, {"backend": "builtin"})
    assert rules.math_answer(["\\frac{1}{2}"], [{"answer": "\\frac{1}{2}"}], **params) == [1.0]


def test_unknown_backend_names_the_choices():
    with pytest.raises(ConfigError, match=r"unknown backend 'sympy'; use builtin or math_verify"):
        rules.bind_params("math_answer", rules.math_answer, {"backend": "sympy"})


def test_missing_math_verify_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "math_verify", None)  # import math_verify now fails
    with pytest.raises(ConfigError, match=r"rlcore-plugin-rewards\[math_verify\]"):
        rules.bind_params("math_answer", rules.math_answer, {"backend": "math_verify"})
