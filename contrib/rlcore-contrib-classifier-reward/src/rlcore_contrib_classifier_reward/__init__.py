"""rlcore-contrib-classifier-reward: score the actor's responses with a local HF classifier.

The seed's sentiment example: any ``AutoModelForSequenceClassification`` directory becomes
the reward of a PPO or GRPO run, ``--set reward.interface=classifier_reward
--set reward.interface_args.model=DIR``. Records are lazy; importing this never imports torch.
"""

import rlcore
from rlcore.plugins.records import InterfaceRecord

__version__ = "0.1.0"


@rlcore.hookimpl
def rlcore_interfaces():
    """The classifier_reward interface."""
    return [
        InterfaceRecord(
            "classifier_reward",
            impl="rlcore_contrib_classifier_reward.interface:ClassifierRewardInterface",
            doc="inference: rewards = a local HF sequence classifier's score of each response, "
                "re-tokenised with the classifier's own tokenizer.",
        )
    ]
