"""A new dataflow: rejection-sampling fine-tuning (RFT, "best-of-n SFT") as an rlcore experiment.

The actor samples n responses per prompt, a reward scores them, and the actor trains with the
next-token loss on each prompt's best response (when it scores at least ``rft.min_reward``).
Three MFCs; the generate and reward nodes reuse registered interfaces, the train node is new.
The guide docs/guides/new-dataflow.md walks through it. ``python docs/examples/rft.py`` runs
two steps in this process and prints the graph.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rlcore.dfg import MFC
from rlcore.runtime.interface import ModelHandle, ModelInterface
from rlcore_plugin_algorithms.config import GRPOConfig
from rlcore_plugin_algorithms.ppo_experiment import GRPO
from rlcore_plugin_algorithms.rollout import ROLLOUT_KEYS

IDS = "packed_input_ids"


# --8<-- [start:interface]
class BestOfNSFT(ModelInterface):
    """train_step: next-token loss on the best-rewarded response of each sample's group.

    Metrics: ``loss``, and ``kept``, the fraction of groups whose best response trained.
    """

    def __init__(self, min_reward: float = 0.5):
        self.min_reward = min_reward

    def train_step(self, handle: ModelHandle, data) -> dict[str, float]:
        import torch

        from rlcore_plugin_algorithms.rollout import action_mask, token_logprobs

        rewards = data.data["rewards"].float()
        keep = torch.zeros_like(rewards, dtype=torch.bool)  # one flag per sequence
        start = 0
        for lens in data.seqlens["rewards"]:  # a sample's group: its n responses
            group = rewards[start : start + len(lens)]
            if group.max() >= self.min_reward:
                keep[start + int(group.argmax())] = True
            start += len(lens)
        if not keep.any():
            return {"kept": 0.0}  # nothing good enough this step: no update
        dev = handle.device
        ids, cu = data.data[IDS].to(dev), data.cu_seqlens(IDS).to(dev)
        lengths = cu[1:] - cu[:-1]
        tokens = action_mask(data.data["prompt_mask"].to(dev), cu) \
            & keep.to(dev).repeat_interleave(lengths)
        logprobs = token_logprobs(handle.model(ids, cu).float(), ids)
        loss = -logprobs[tokens].mean()
        handle.model.backward(loss)
        stats = handle.model.step()
        groups = len(data.seqlens["rewards"])
        return {"loss": loss.item(), "kept": keep.sum().item() / groups, **stats}
# --8<-- [end:interface]


# --8<-- [start:experiment]
@dataclass
class RFTOptions:
    """What RFT adds to the RL options."""

    min_reward: float = field(default=0.5, metadata={
        "help": "a group's best response trains the actor only if it scores at least this"})


@dataclass
class RFTConfig(GRPOConfig):
    """GRPO's config (actor, reward, prompts, sampling, run) plus the ``rft`` section."""

    rft: RFTOptions = field(default_factory=RFTOptions)


class RFT(GRPO):
    """Sample n responses per prompt, score them, fine-tune on the best of each group."""

    name = "rft"
    config_class = RFTConfig

    def mfcs(self) -> list[MFC]:
        c = self.config
        gen_args: dict[str, Any] = {"ppo": self.rl, "reward": c.reward, "gen": c.gen,
                                    "seed": c.run.seed}
        return [
            MFC("actor_gen", "actor", "generate", "ppo_actor", input_keys=("packed_prompts",),
                output_keys=ROLLOUT_KEYS, interface_args=gen_args),
            self.reward_mfc(),  # registered reward functions, a reward model or a service
            MFC("actor_train", "actor", "train_step", "rft:BestOfNSFT",
                input_keys=(IDS, "prompt_mask", "rewards"),
                interface_args={"min_reward": c.rft.min_reward}),
        ]
# --8<-- [end:experiment]


def main() -> None:
    """Two RFT steps on the embedded addition task, in this process."""
    import tempfile

    from rlcore.config import experiment_config
    from rlcore.runtime.loop import run

    _, config = experiment_config("rft:RFT", sets=[
        "warm_start.sft_steps=0", "run.max_steps=2", "run.batch_size=4", "run.eval_every=0",
        "run.progress=false", "gen.n_samples=4", "rft.min_reward=0.0", "actor.hidden_size=32",
    ])
    print(RFT(config).graph().render("text"))
    with tempfile.TemporaryDirectory() as run_dir:
        summary = run("rft:RFT", config, run_dir, resume=False)
    print({k: v for k, v in summary["last"].items() if k.startswith("actor_train/")})
    assert summary["last"]["actor_train/kept"] == 1.0  # min_reward 0: every group trains
    assert summary["last"]["actor_train/loss"] > 0


if __name__ == "__main__":
    main()
