"""rlcore plugin example: registers its items through rlcore's hooks.

Records name implementations lazily ("module:attr"), so `rlcore list-plugins`
stays fast and never imports your code's heavy dependencies.
"""

import rlcore
from rlcore.plugins.records import RewardFunctionRecord


@rlcore.hookimpl
def rlcore_reward_functions():
    """Register this plugin's reward functions."""
    return [
        RewardFunctionRecord(
            name="example_keyword",
            impl="rlcore_plugin_example.rewards:keyword_reward",
            doc="1.0 when the completion contains the sample's `keyword` field, else 0.0.",
        )
    ]
