"""First-party rule rewards for rlcore, registered like any third-party plugin."""

import rlcore
from rlcore.plugins.records import RewardFunctionRecord

_RULES = "rlcore_plugin_rewards.rules"


@rlcore.hookimpl
def rlcore_reward_functions():
    """Register the rule rewards: answers, formats, lengths, code tests and weighted sums."""
    return [
        RewardFunctionRecord(
            name="exact_match",
            impl=f"{_RULES}:exact_match",
            doc="1.0 when the stripped completion equals the sample's answer, else 0.0.",
        ),
        RewardFunctionRecord(
            name="math_answer",
            impl=f"{_RULES}:math_answer",
            doc="1.0 when the completion's final answer (####, \\boxed{}, last number) equals "
                "the sample's answer, within a tolerance.",
        ),
        RewardFunctionRecord(
            name="regex_match",
            impl=f"{_RULES}:regex_match",
            doc="1.0 when the completion matches a regular expression (a format reward).",
        ),
        RewardFunctionRecord(
            name="length_penalty",
            impl=f"{_RULES}:length_penalty",
            doc="0 up to max_length - buffer, down to -penalty at max_length (DAPO overlong "
                "shaping).",
        ),
        RewardFunctionRecord(
            name="format_penalty",
            impl=f"{_RULES}:format_penalty",
            doc="-1.0 for an empty or unterminated completion, else 0.0.",
        ),
        RewardFunctionRecord(
            name="code_tests",
            impl="rlcore_plugin_rewards.code_tests:code_tests",
            doc="The share of the sample's tests (assert statements) that the completion's code "
                "passes, run in the sandbox.",
        ),
        RewardFunctionRecord(
            name="weighted",
            impl=f"{_RULES}:weighted",
            doc="A weighted sum of other registered reward functions, as one named reward.",
        ),
    ]
