"""RAFT: selection, the graph through the experiment conformance suite, and learning."""

from __future__ import annotations

import pytest
import torch

from rlcore.data.batch import PackedBatch
from rlcore.testing.experiments import ExperimentConformance
from rlcore.testing.interfaces import make_handle, prompt_batch
from rlcore_contrib_raft.interface import RAFTInterface, select_best

TINY = ["warm_start.sft_steps=0", "run.batch_size=4", "gen.n_samples=3", "gen.max_new_tokens=4",
        "actor.hidden_size=32"]


class TestRAFTConformance(ExperimentConformance):
    experiment = "raft"
    sets = TINY


@pytest.mark.parametrize("rewards, top_k, min_reward, kept", [
    ([[0.0, 1.0, 0.5]], 1, None, [[1]]),
    ([[0.0, 1.0, 0.5], [2.0, 2.0, 1.0]], 2, None, [[1, 2], [0, 1]]),  # ties: the earlier first
    ([[0.0, 1.0, 0.5], [0.0, 0.0, 0.0]], 1, 0.5, [[1], []]),
])
def test_select_best(rewards, top_k, min_reward, kept):
    assert select_best(rewards, top_k, min_reward) == kept


def rollout(tokenizer):
    """Two prompts with three responses each, as the actor's generate returns them."""
    single = prompt_batch(tokenizer, ["1+1=", "1+1=", "1+1=", "2+3=", "2+3=", "2+3="],
                          responses=["2", "3", "11", "5", "6", "23"])
    groups = [list(range(3)), list(range(3, 6))]
    seqs = {k: [[single.sequences(k, i)[0] for i in g] for g in groups]
            for k in ("packed_input_ids", "prompt_mask")}
    rewards = [[[1.0], [0.0], [0.0]], [[0.0], [0.0], [1.0]]]
    return PackedBatch.from_sequences(["a", "b"], {**seqs, "rewards": rewards},
                                      dtypes={"prompt_mask": torch.bool, "rewards": torch.float32})


def test_kept_batch_masks_the_response_tokens_of_the_best():
    handle = make_handle()
    kept, every, best = RAFTInterface().kept_batch(rollout(handle.tokenizer))
    assert list(kept.ids) == ["a#0", "b#2"] and every == [1, 0, 0, 0, 0, 1] and best == [1, 1]
    tok = handle.tokenizer
    texts = [tok.decode(s[0][m[0]].tolist()) for s, m in
             ((kept.sequences("packed_input_ids", i), kept.sequences("loss_mask", i))
              for i in range(2))]
    assert texts == ["2", "23"]


def test_train_step_lowers_the_loss_on_the_kept_responses():
    handle = make_handle(trainable=True, lr=1e-2)
    iface = RAFTInterface(epochs=2)
    data = rollout(handle.tokenizer)
    first = iface.train_step(handle, data)
    for _ in range(5):
        last = iface.train_step(handle, data)
    assert first["kept_frac"] == pytest.approx(2 / 6) and first["/reward/mean"] == pytest.approx(2 / 6)
    assert last["loss"] < 0.5 * first["loss"]


def test_a_step_that_keeps_nothing_leaves_the_weights_alone():
    """No optimizer step: AdamW's momentum from the last step would move them on zero grads."""
    handle = make_handle(trainable=True, lr=1e-2)
    data = rollout(handle.tokenizer)
    RAFTInterface().train_step(handle, data)
    before = {k: v.clone() for k, v in handle.module.state_dict().items()}
    metrics = RAFTInterface(min_reward=2.0).train_step(handle, data)
    assert metrics["updates"] == 0 and metrics["kept_frac"] == 0 and "loss" not in metrics
    for name, value in handle.module.state_dict().items():
        assert torch.equal(value, before[name]), name
