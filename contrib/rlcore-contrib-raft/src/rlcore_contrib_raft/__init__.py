"""rlcore-contrib-raft: reward-ranked fine-tuning (RAFT, Dong et al. 2023) as its own dataflow.

Each step the actor samples ``gen.n_samples`` responses per prompt, the reward scores them,
and the actor takes an SFT step on the best of each group: three MFCs, no reference, no
critic, no importance ratios. Records are lazy; importing this never imports torch.
"""

import rlcore
from rlcore.plugins.records import ExperimentRecord, InterfaceRecord

__version__ = "0.1.0"

_PKG = "rlcore_contrib_raft"


@rlcore.hookimpl
def rlcore_experiments():
    """The raft experiment."""
    return [ExperimentRecord(
        "raft", impl=f"{_PKG}.experiment:RAFT", config=f"{_PKG}.config:RAFTConfig",
        doc="RAFT: sample n responses per prompt, score them, SFT on the best of each prompt.")]


@rlcore.hookimpl
def rlcore_interfaces():
    """The raft_sft interface: pick the best responses, then a masked next-token loss on them."""
    return [InterfaceRecord(
        "raft_sft", impl=f"{_PKG}.interface:RAFTInterface",
        doc="train_step: keep each prompt's top-k rewarded responses, SFT on their tokens.")]
