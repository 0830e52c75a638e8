"""rlcore's standard experiments (sft, rm, dpo) and their model interfaces."""

import rlcore
from rlcore.plugins.records import ExperimentRecord, InterfaceRecord

_PKG = "rlcore_plugin_algorithms"


@rlcore.hookimpl
def rlcore_experiments():
    """SFT, reward modelling and DPO."""
    return [
        ExperimentRecord(
            "sft", impl=f"{_PKG}.experiments:SFT", config=f"{_PKG}.config:SFTConfig",
            doc="Supervised fine-tuning on prompt_answer data: next-token loss on the answer.",
        ),
        ExperimentRecord(
            "rm", impl=f"{_PKG}.experiments:RewardModeling", config=f"{_PKG}.config:RMConfig",
            doc="Reward modelling on paired data: Bradley-Terry loss, pairwise accuracy.",
        ),
        ExperimentRecord(
            "dpo", impl=f"{_PKG}.experiments:DPO", config=f"{_PKG}.config:DPOConfig",
            doc="Direct preference optimisation against a frozen reference (sigmoid or IPO loss).",
        ),
    ]


@rlcore.hookimpl
def rlcore_interfaces():
    """The model interfaces the experiments' MFCs call."""
    return [
        InterfaceRecord("sft", impl=f"{_PKG}.interfaces:SFTInterface",
                        doc="train_step: masked next-token loss; inference: per-token log-probs."),
        InterfaceRecord("reward", impl=f"{_PKG}.interfaces:RewardInterface",
                        doc="train_step: Bradley-Terry loss on pairs; inference: sequence scores."),
        InterfaceRecord("dpo", impl=f"{_PKG}.interfaces:DPOInterface",
                        doc="inference: answer log-prob sums; train_step: DPO loss vs reference."),
    ]
