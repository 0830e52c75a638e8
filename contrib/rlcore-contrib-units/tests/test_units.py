"""The units environment: the conformance suite, the conversions, the answer check, the tasks."""

import re

import pytest

from rlcore.sdk import ToolError, parse_tool_calls
from rlcore.testing.environments import EnvironmentConformance
from rlcore_contrib_units.env import UnitsEnvironment, all_questions, convert


class TestUnits(EnvironmentConformance):
    environment = "units"  # registered through the entry point


class TestUnitsOnDatasetRows(EnvironmentConformance):
    """Rows from a file (no conversion fields: no demonstration), by "module:attr"."""

    environment = "rlcore_contrib_units.env:UnitsEnvironment"
    args = {"tolerance": 0.01}
    samples = [{"prompt": "How many grams are in 2 kilograms?", "answer": "2000"},
               {"prompt": "How many minutes are in 1.5 hours?", "answer": "90"}]
    final_answer = "2000 grams"


@pytest.mark.parametrize(("args", "expected"), [
    ((3.5, "metres", "centimetres"), 350.0), ((1, "mile", "km"), 1.609344),
    (("2", "lb", "g"), 907.18474), ((90, "min", "hours"), 1.5), ((6, "in", "Foot"), 0.5),
])
def test_convert(args, expected):
    assert convert(*args) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(("args", "message"), [
    ((1, "parsec", "metre"), "unknown unit 'parsec'; the units are millimetre"),
    ((1, "metre", "gram"), "cannot convert metre (length) to gram (mass)"),
    (("lots", "metre", "cm"), "value must be a number"), ((True, "m", "cm"), "value must be a number"),
    ((float("nan"), "m", "cm"), "finite"),
])
def test_convert_rejects_with_a_reason(args, message):
    with pytest.raises(ToolError, match=re.escape(message)):
        convert(*args)


def test_a_wrong_call_is_answered_not_raised():
    env = UnitsEnvironment()
    env.reset({"prompt": "How many grams are in 2 kilograms?", "answer": "2000"})
    text = ('<tool_call>{"name": "convert", "arguments": {"value": 2, "from_unit": "kg"}}</tool_call>'
            '<tool_call>{"name": "convert", "arguments": {"value": 2, "from_unit": "kg", '
            '"to_unit": "g"}}</tool_call>')
    result = env.step(parse_tool_calls(text).message(text))
    assert [m["content"] for m in result.observations] == [
        "error: convert takes value, from_unit and to_unit; got ['from_unit', 'value']",
        "2000 grams"]
    assert result.info == {"tool_calls": 2, "tool_errors": 1} and not result.done


@pytest.mark.parametrize(("answer", "reward"), [
    ("2000", 1.0), ("There are 2,000 grams.", 1.0), ("2000.1 g", 1.0), ("2001", 0.0),
    ("two thousand", 0.0), ("2 kilograms is 2000 grams", 1.0), ("2000 grams in 2 kilograms", 0.0),
])
def test_the_last_number_of_the_answer_is_checked_with_a_tolerance(answer, reward):
    env = UnitsEnvironment(tolerance=1e-4)
    env.reset({"prompt": "How many grams are in 2 kilograms?", "answer": "2000"})
    result = env.step({"role": "assistant", "content": answer})
    assert (result.reward, result.done) == (reward, True)


def test_tasks_cover_each_dimension_with_exact_answers_and_split_disjointly():
    train, evals = all_questions("train"), all_questions("eval")
    assert len(train) > 4 * len(evals) > 100
    assert not {r["prompt"] for r in train} & {r["prompt"] for r in evals}
    for row in train + evals:
        assert float(row["answer"]) == convert(row["value"], row["from_unit"], row["to_unit"])
    assert {"How many centimetres are in 3.5 metres?", "How many seconds are in 1 minute?"} <= {
        r["prompt"] for r in train + evals}
    assert UnitsEnvironment.tasks("eval", 3, seed=1) != UnitsEnvironment.tasks("eval", 3, seed=2)
    with pytest.raises(ValueError, match="split must be 'train' or 'eval'"):
        UnitsEnvironment.tasks("test", 3, seed=0)
