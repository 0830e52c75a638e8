"""The rule rewards score against reference answers and load through the registry."""

import math
import subprocess
import sys

import pytest

from rlcore.errors import ConfigError, DataError, UnknownItemError
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


# ---------------------------------------------------------------------------- helpers


def answers(*values):
    return [{"answer": v, "id": f"s{i}"} for i, v in enumerate(values)]


def call(name, completions, samples, **params):
    """Through the registry, with the parameters checked as a config's would be."""
    fn = registry.load("rewards", name)
    return fn(completions, samples, **rules.bind_params(name, fn, params))


ALL = ["exact_match", "math_answer", "regex_match", "length_penalty", "format_penalty", "weighted"]
NEEDS = {"regex_match": {"pattern": "x"}, "length_penalty": {"max_length": 4},
         "weighted": {"rewards": {"exact_match": 1.0}}}


def test_every_rule_is_registered_documented_and_torch_free():
    assert set(registry.items("rewards")) >= set(ALL)
    for name in ALL:
        fn = registry.load("rewards", name)
        assert registry.get("rewards", name).doc
        doc = fn.__doc__
        params, _ = rules.parameters(fn)
        assert doc and "Parameters:" in doc, name
        for p in params:  # each parameter is explained in the docstring rlcore info shows
            assert f"{p.name}:" in doc, (name, p.name)
    code = "import sys, rlcore_plugin_rewards.rules; assert 'torch' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


@pytest.mark.parametrize("name", ALL)
def test_every_rule_checks_lengths_and_takes_no_completions(name):
    assert call(name, [], [], **NEEDS.get(name, {})) == []
    with pytest.raises(ValueError, match="got 2 completions for 1 samples"):
        call(name, ["1", "2"], answers("1"), **NEEDS.get(name, {}))


@pytest.mark.parametrize("name", ALL)
def test_every_rule_scores_awkward_completions_with_finite_numbers(name):
    completions = ["", " ", "\n\n", "nan", "inf", "-inf", "1e999", "1/0", "\\boxed{", "####",
                   "\\boxed{}", "\\frac{1}{0}", "#### nan", "ünïcödé −3"]
    samples = [{"answer": "3", "id": f"s{i}", "truncated": i % 2 == 0}
               for i in range(len(completions))]
    scores = call(name, completions, samples, **NEEDS.get(name, {}))
    assert len(scores) == len(completions)
    assert all(isinstance(s, float) and math.isfinite(s) for s in scores)


# ---------------------------------------------------------------------------- exact_match


def test_exact_match_parameters():
    samples = answers("Hello  World")
    assert call("exact_match", ["Hello  World"], samples) == [1.0]
    assert call("exact_match", ["  Hello  World\n"], samples) == [1.0]
    assert call("exact_match", ["  Hello  World\n"], samples, strip=False) == [0.0]
    assert call("exact_match", ["hello  world"], samples) == [0.0]
    assert call("exact_match", ["hello  world"], samples, case_sensitive=False) == [1.0]
    assert call("exact_match", ["Hello World"], samples) == [0.0]
    assert call("exact_match", ["Hello \t\nWorld"], samples, normalize_whitespace=True) == [1.0]
    assert call("exact_match", [""], answers("")) == [1.0]
    assert call("exact_match", ["1"], [{"ground_truth": 1}]) == [1.0]


# ---------------------------------------------------------------------------- math_answer


@pytest.mark.parametrize(
    "completion, answer, expected",
    [
        ("", "3", 0.0),
        ("the total is 1,234,567.", "1234567", 1.0),
        ("1,234.5", "1234.5", 1.0),
        ("she has -12 apples", "-12", 1.0),
        ("it is −12", "-12", 1.0),  # unicode minus
        ("0.5", ".5", 1.0),
        ("3.0", "3", 1.0),
        ("costs $1,000", "1000", 1.0),
        ("1e3", "1000", 1.0),
        ("the ratio is 3/4", "0.75", 1.0),
        ("1, 2, 3", "3", 1.0),  # commas in a list are not thousands separators
        ("#### 72", "72", 1.0),
        ("####  1,000 dollars", "1000", 1.0),
        ("#### 3/4", "\\frac{3}{4}", 1.0),
        ("work: 5 then \\boxed{7} and 9", "7", 1.0),
        ("\\boxed{1} then \\boxed{2}", "2", 1.0),
        ("\\boxed{\\frac{1}{2}}", "0.5", 1.0),
        ("\\boxed{\\dfrac{1}{2}}", "\\frac{1}{2}", 1.0),
        ("\\boxed{-\\frac{3}{4}}", "-0.75", 1.0),
        ("\\boxed{5 \\text{ cm}}", "5", 1.0),
        ("\\boxed{50\\%}", "50", 1.0),
        ("\\boxed{\\frac{x}{2}}", "\\frac{x}{2}", 1.0),  # not numeric: compared as text
        ("\\boxed{\\frac{x}{3}}", "\\frac{x}{2}", 0.0),
        ("\\boxed{\\left( 1, 2 \\right)}", "(1,2)", 1.0),
        ("\\boxed{x^{2}+1}", "\\boxed{x^{2} + 1}", 1.0),
        ("\\boxed{x+1}", "3", 0.0),  # a marked non-number for a numeric answer: wrong
        ("unbalanced \\boxed{3 and then 4", "4", 1.0),  # no usable box: the last number
        ("The answer is A", "A", 0.0),  # text answers must be marked
        ("\\boxed{A}", "A", 1.0),
        ("#### A", "A", 1.0),
        ("x = 42", "The answer is 42", 1.0),  # a prose answer: its last number
        ("42", "42 apples", 1.0),
        ("\\boxed{x^2}", "x^2", 1.0),  # not prose: compared as text, not as the number 2
        ("2", "x^2", 0.0),
        ("\\boxed{(1, 2)}", "(1,2)", 1.0),
        ("2", "(1,2)", 0.0),
    ],
)
def test_math_answer_reads_answers(completion, answer, expected):
    assert rules.math_answer([completion], answers(answer)) == [expected]


def test_math_answer_tolerances():
    samples = answers("3.14159")
    assert call("math_answer", ["3.14"], samples) == [0.0]
    assert call("math_answer", ["3.14"], samples, tolerance=0.01) == [1.0]
    assert call("math_answer", ["3.14"], samples, tolerance="1e-2") == [1.0]  # YAML reads 1e-2 as text
    assert call("math_answer", ["1000001"], answers("1000000")) == [0.0]
    assert call("math_answer", ["1000001"], answers("1000000"), relative_tolerance=1e-5) == [1.0]
    assert call("math_answer", ["0.3"], answers("0.1+0.2")) == [0.0]  # an expression is text
    assert call("math_answer", ["1.0000001"], answers("1")) == [1.0]  # default 1e-6


def test_math_answer_rewards():
    samples = answers("7", "7", "7")
    scores = call("math_answer", ["7", "8", "no idea"], samples,
                  reward_correct=2, reward_wrong=-0.5, reward_unparsed=-1)
    assert scores == [2.0, -0.5, -1.0]


def test_math_answer_rejects_bad_parameters_and_answers():
    with pytest.raises(ConfigError, match="tolerance and relative_tolerance must be >= 0"):
        rules.math_answer(["1"], answers("1"), tolerance=-1)
    with pytest.raises(ConfigError, match="'reward_correct' must be a finite number, got nan"):
        rules.math_answer(["1"], answers("1"), reward_correct=float("nan"))
    with pytest.raises(DataError, match="sample 's0' has an empty answer"):
        rules.math_answer(["1"], answers("  "))


def test_final_number_and_boxed():
    assert rules.final_number("a 1,234 b -5.5") == -5.5
    assert rules.final_number("nothing") is None
    assert rules.boxed("x \\boxed{\\frac{1}{\\sqrt{2}}} y") == "\\frac{1}{\\sqrt{2}}"
    assert rules.boxed("\\boxed{open") is None
    assert rules.parse_number("1/0") is None and rules.parse_number("1e999") is None


# ---------------------------------------------------------------------------- regex_match


def test_regex_match_parameters():
    texts = ["<answer>4</answer>", "The <ANSWER>4</ANSWER>", "<answer>\n4\n</answer>", ""]
    samples = [{}] * 4
    assert call("regex_match", texts, samples, pattern=r"<answer>.*</answer>") == [1.0, 0.0, 0.0, 0.0]
    assert call("regex_match", texts, samples, pattern=r"<answer>.*</answer>",
                flags="IGNORECASE|DOTALL") == [1.0, 1.0, 1.0, 0.0]
    assert call("regex_match", texts, samples, pattern=r"<answer>.*</answer>", flags="i, s",
                fullmatch=True) == [1.0, 0.0, 1.0, 0.0]
    assert call("regex_match", texts, samples, pattern="4", reward_match=0.5,
                reward_miss=-1) == [0.5, 0.5, 0.5, -1.0]


def test_regex_match_compiles_once():
    rules.compile_pattern.cache_clear()
    for _ in range(3):
        rules.regex_match(["ab"] * 2, [{}] * 2, pattern="a+b", flags="I")
    info = rules.compile_pattern.cache_info()
    assert info.misses == 1 and info.hits == 2


@pytest.mark.parametrize("params, message", [
    ({}, "needs parameter 'pattern'; set it with --set reward.params='{regex_match: {pattern: ...}}'"),
    ({"pattern": ""}, "'pattern' must be a non-empty regular expression"),
    ({"pattern": "(unclosed"}, "pattern '\\(unclosed' does not compile: missing \\)"),
    ({"pattern": "a", "flags": "IGNORCASE"}, "unknown regex flag 'IGNORCASE'.*valid: IGNORECASE"),
    ({"pattern": "a", "fullmatch": "maybe"}, "parameter 'fullmatch' must be bool, got 'maybe'"),
])
def test_regex_match_errors(params, message):
    with pytest.raises(ConfigError, match=message):
        rules.bind_params("regex_match", rules.regex_match, params)


def test_regex_match_without_pattern_called_directly():
    with pytest.raises(TypeError, match="pattern"):
        rules.regex_match(["a"], [{}])


# ---------------------------------------------------------------------------- length_penalty


def test_length_penalty_ramps_down_to_the_penalty():
    texts = ["x" * n for n in (0, 6, 7, 8, 9, 10, 11, 50)]
    scores = call("length_penalty", texts, [{}] * len(texts), max_length=10, buffer=4, penalty=2)
    assert scores == pytest.approx([0, 0, -0.5, -1.0, -1.5, -2.0, -2.0, -2.0])


def test_length_penalty_without_buffer_is_a_step_and_reads_a_token_field():
    assert call("length_penalty", ["x" * 10, "x" * 11], [{}, {}], max_length=10) == [0.0, -1.0]
    samples = [{"response_tokens": 3}, {"response_tokens": 5.0}]
    scores = call("length_penalty", ["a very long text", ""], samples, max_length=4, buffer=2,
                  length_field="response_tokens")
    assert scores == [-0.5, -1.0]
    with pytest.raises(DataError, match="sample 'q1': length_penalty reads the length from field "
                                        "'response_tokens', which is None"):
        rules.length_penalty(["a"], [{"id": "q1"}], max_length=4, length_field="response_tokens")


@pytest.mark.parametrize("params, message", [
    ({}, "needs parameter 'max_length'"),
    ({"max_length": 0}, "max_length must be an integer >= 1"),
    ({"max_length": 10, "buffer": 11}, r"buffer must be an integer in \[0, max_length=10\]"),
    ({"max_length": 10, "penalty": -1}, "penalty must be >= 0"),
    ({"max_length": 10.5}, "parameter 'max_length' must be int, got 10.5"),
])
def test_length_penalty_errors(params, message):
    with pytest.raises(ConfigError, match=message):
        rules.bind_params("length_penalty", rules.length_penalty, params)


# ---------------------------------------------------------------------------- format_penalty


def test_format_penalty_parameter():
    samples = [{}, {"truncated": True}, {}]
    assert call("format_penalty", ["", "long", "ok"], samples, penalty=0.5) == [-0.5, -0.5, 0.0]


# ---------------------------------------------------------------------------- weighted


def test_weighted_sums_registered_functions_with_their_params():
    samples = answers("3.14159", "2")
    texts = ["#### 3.14", ""]
    by_dict = call("weighted", texts, samples,
                   rewards={"math_answer": 2.0, "format_penalty": 0.5},
                   params={"math_answer": {"tolerance": 0.01}})
    assert by_dict == [2.0, -0.5]
    by_list = call("weighted", texts, samples, rewards=[["math_answer", 2], ["format_penalty", 0.5]])
    assert by_list == [0.0, -0.5]
    assert call("weighted", texts, samples, rewards=["format_penalty"]) == [0.0, -1.0]


@pytest.mark.parametrize("params, error, message", [
    ({"rewards": {}}, ConfigError, "'rewards' is empty"),
    ({"rewards": 3}, ConfigError, "'rewards' must be"),
    ({"rewards": [["math_answer"]]}, ConfigError, r"must be \[name, weight\]"),
    ({"rewards": {"math_answer": float("inf")}}, ConfigError, "weight of 'math_answer' must be a finite"),
    ({"rewards": {"math_answr": 1}}, UnknownItemError, "Did you mean 'math_answer'"),
    ({"rewards": {"exact_match": 1}, "params": {"math_answer": {}}}, ConfigError,
     "'params' names 'math_answer', which is not in 'rewards'"),
    ({"rewards": {"math_answer": 1}, "params": {"math_answer": {"tol": 1}}}, ConfigError,
     "'math_answer' has no parameter 'tol'.*Did you mean 'tolerance'"),
    ({"rewards": {"regex_match": 1}}, ConfigError, "needs parameter 'pattern'"),
    ({"rewards": {"regex_match": 1}, "params": {"regex_match": {"pattern": "("}}}, ConfigError,
     "does not compile"),
])
def test_weighted_errors_surface_when_its_params_are_checked(params, error, message):
    with pytest.raises(error, match=message):
        rules.bind_params("weighted", rules.weighted, params)


# ---------------------------------------------------------------------------- bind_params


def test_bind_params_converts_to_annotated_types():
    bound = rules.bind_params("math_answer", rules.math_answer, {"tolerance": "1e-6", "reward_correct": 2})
    assert bound == {"tolerance": 1e-6, "reward_correct": 2.0}
    assert isinstance(bound["reward_correct"], float)
    assert rules.bind_params("exact_match", rules.exact_match, None) == {}
    assert rules.bind_params("exact_match", rules.exact_match, {"strip": "no"}) == {"strip": False}


def test_bind_params_names_the_function_and_lists_what_it_accepts():
    with pytest.raises(ConfigError) as info:
        rules.bind_params("math_answer", rules.math_answer, {"tolerence": 0.1})
    message = str(info.value)
    assert "reward function 'math_answer' has no parameter 'tolerence'" in message
    assert "Did you mean 'tolerance'" in message
    assert "It accepts: tolerance (float, default 1e-06), relative_tolerance" in message
    assert "rlcore info rewards math_answer" in message
    with pytest.raises(ConfigError, match="parameter 'tolerance' must be float, got 'tight'"):
        rules.bind_params("math_answer", rules.math_answer, {"tolerance": "tight"})
    with pytest.raises(ConfigError, match="reward.params.math_answer must map parameter names"):
        rules.bind_params("math_answer", rules.math_answer, [1])
    with pytest.raises(ConfigError, match="It accepts: none"):
        rules.bind_params("plain", lambda completions, samples: [], {"x": 1})


def test_bind_params_of_functions_without_annotations_or_with_kwargs():
    def untyped(completions, samples, scale=1):
        return [scale] * len(completions)

    def anything(completions, samples, **extra):
        return [0.0] * len(completions)

    assert rules.bind_params("untyped", untyped, {"scale": "2"}) == {"scale": "2"}
    assert rules.bind_params("anything", anything, {"a": 1, "b": [2]}) == {"a": 1, "b": [2]}
    assert rules.describe_params(anything) == "any other keyword"
