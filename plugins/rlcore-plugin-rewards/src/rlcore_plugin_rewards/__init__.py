"""First-party rule rewards for rlcore, registered like any third-party plugin."""

import rlcore
from rlcore.plugins.records import RewardFunctionRecord


@rlcore.hookimpl
def rlcore_reward_functions():
    """Register exact-match, math-answer and format rewards."""
    return [
        RewardFunctionRecord(
            name="exact_match",
            impl="rlcore_plugin_rewards.rules:exact_match",
            doc="1.0 when the stripped completion equals the sample's answer, else 0.0.",
        ),
        RewardFunctionRecord(
            name="math_answer",
            impl="rlcore_plugin_rewards.rules:math_answer",
            doc="1.0 when the final number of the completion equals the answer numerically.",
        ),
        RewardFunctionRecord(
            name="format_penalty",
            impl="rlcore_plugin_rewards.rules:format_penalty",
            doc="-1.0 for an empty or unterminated completion, else 0.0.",
        ),
    ]
