"""ChatLearn-style engines over user modules: they train through rlcore's runtime."""

from __future__ import annotations

import json

import pytest
import torch
from api_modules import (
    Policy,
    Reference,
    Student,
    Teacher,
    addition_items,
    feature_items,
    mean_nll,
)

import rlcore
from rlcore.api import Engine, Evaluator, ItemsDataset, pack_outputs
from rlcore.data.batch import PackedBatch
from rlcore.errors import ConfigError, DataError, RlcoreError
from rlcore.runtime.metrics import read_metrics


def test_chatlearn_engine_learns_evaluates_and_checkpoints(tmp_path):
    rlcore.init(seed=3, log_level="WARNING")
    policy = Policy("policy", lr=1e-2)
    reference = Reference("reference")

    def flow(batch):
        ref = reference.inference(batch)
        policy.train_step(ref)

    engine = Engine(policy, reference, flow=flow, run_dir=tmp_path, max_steps=12,
                    batch_size=8, progress=False)
    engine.set_dataset(addition_items(96))
    evaluator = Evaluator(policy, eval_fn=mean_nll).set_dataset(addition_items(16, "eval"))
    engine.set_evaluator(evaluator, every=6)
    summary = engine.learn(resume=False)

    assert summary["status"] == "completed" and summary["steps"] == 12
    records = read_metrics(tmp_path)
    losses = [r["policy.train_step/loss"] for r in records if r["step"] > 0]
    assert len(losses) == 12
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.3, losses
    evals = [(r["step"], r["eval/nll"]) for r in records if "eval/nll" in r]
    assert [s for s, _ in evals] == [0, 6, 12]  # step 0: before training (run.eval_at_start)
    assert evals[2][1] < evals[1][1] < evals[0][1]
    assert all(r.get("eval/samples", 16.0) == 16.0 for r in records)
    # The reference is frozen: it has no gradient and its version never moves.
    assert reference.version == 0 and policy.version == 12
    assert not any(p.requires_grad for p in reference.model.parameters())
    # Checkpoints are the runtime's: the trained role only, complete, with the run's config.
    ckpt = tmp_path / "checkpoints" / "step-00000012"
    assert summary["checkpoint"] == str(ckpt)
    assert (ckpt / "COMPLETE").is_file() and (ckpt / "policy" / "model.safetensors").is_file()
    assert not (ckpt / "reference").exists()
    state = json.loads((ckpt / "trainer_state.json").read_text())
    assert state["roles"] == ["policy"] and state["config"]["run"]["max_steps"] == 12
    assert state["config"]["modules"]["policy"]["trainable"] is True

    # After learn() the modules run on their own: the trained policy scores the eval set
    # better than the frozen reference it started away from.
    batch = evaluator.dataset.collate([evaluator.dataset[i] for i in range(8)])
    scored = reference.inference(policy.inference(batch))
    assert set(scored.keys) >= {"input_ids", "logprobs", "ref_logprobs"}
    assert scored.data["logprobs"].sum() > scored.data["ref_logprobs"].sum()


def test_default_flow_trains_and_resumes_exactly(tmp_path):
    def engine(run_dir, steps):
        e = Engine(Student("student", lr=1e-2), Teacher("teacher"), run_dir=run_dir,
                   max_steps=steps, batch_size=8, progress=False, seed=5)
        return e.set_dataset(feature_items(64))

    full = engine(tmp_path / "full", 8)
    assert [m.name for m in full.graph().order] == ["teacher.inference", "student.train_step"]
    summary = full.learn(resume=False)
    losses = [r["student.train_step/loss"] for r in read_metrics(tmp_path / "full")]
    assert summary["steps"] == 8 and losses[-1] < losses[0]
    assert all(r["student.train_step/tokens"] > 8 for r in read_metrics(tmp_path / "full"))

    engine(tmp_path / "cut", 4).learn(resume=False)
    second = engine(tmp_path / "cut", 8)
    resumed = second.learn()  # picks up the step-4 checkpoint
    assert resumed["steps"] == 8 and second.modules["student"].calls == 4
    again = [r["student.train_step/loss"] for r in read_metrics(tmp_path / "cut")]
    assert again == pytest.approx(losses, rel=1e-6, abs=1e-7)


def test_init_is_idempotent():
    ctx = rlcore.init(seed=11, log_level="WARNING")
    torch.rand(3)
    state = torch.get_rng_state()
    assert rlcore.init(seed=11, log_level="WARNING") is ctx
    assert torch.equal(torch.get_rng_state(), state)  # the same call does not reseed
    assert ctx.world_size == 1 and ctx.rank == 0
    rlcore.init(seed=12, log_level="WARNING")
    first = torch.rand(2)
    rlcore.init(seed=13, log_level="WARNING")
    rlcore.init(seed=12, log_level="WARNING")
    assert torch.equal(torch.rand(2), first)  # a new seed reseeds
    with pytest.raises(ConfigError, match="log_level"):
        rlcore.init(log_level="LOUD")


def test_items_become_packed_batches():
    ds = ItemsDataset([
        {"prompt": "1+2=", "pair": ["3", "4"], "reward": 0.5, "ids": [5, 6, 7]},
        {"prompt": "10+2=", "pair": ["12", "13"], "reward": 1.0, "ids": [8]},
    ])
    batch = ds.collate([ds[0], ds[1]])
    assert batch.seqlens["prompt"] == [[5], [6]]  # <bos> + characters
    assert batch.seqlens["pair"] == [[2, 2], [3, 3]]  # two sequences per sample
    assert batch.seqlens["reward"] == [[1], [1]] and batch.data["reward"].dtype == torch.float32
    assert batch.data["ids"].tolist() == [5, 6, 7, 8]
    assert batch.metadata["item"][1]["prompt"] == "10+2="
    strings = ItemsDataset(["3+4="])
    assert strings.fields == ("prompt",)
    with pytest.raises(DataError, match="item 1 has fields"):
        bad = ItemsDataset([{"a": 1}, {"b": 2}])
        bad.collate([bad[0], bad[1]])
    with pytest.raises(DataError, match="item 0, field 'a'"):
        ItemsDataset([{"a": {"nested": 1}}])
    with pytest.raises(DataError, match="no items"):
        ItemsDataset([])


def test_outputs_are_packed_like_the_inputs():
    data = PackedBatch.from_sequences(["a", "b"], {"ids": [[[1, 2, 3]], [[4, 5]]]})
    out = pack_outputs(data, {
        "per_token": torch.arange(5.0),          # packed like "ids"
        "per_sample": torch.tensor([0.1, 0.2]),  # one value each
        "listed": [[9, 9], torch.tensor([7])],   # one sequence each
    }, "m.forward_step")
    assert out.seqlens["per_token"] == [[3], [2]]
    assert out.seqlens["per_sample"] == [[1], [1]]
    assert out.seqlens["listed"] == [[2], [1]]
    with pytest.raises(RlcoreError, match="has 4 rows"):
        pack_outputs(data, {"x": torch.zeros(4)}, "m.forward_step")
    with pytest.raises(RlcoreError, match="must return a dict"):
        pack_outputs(data, [1, 2], "m.forward_step")


def test_engine_misuse_is_reported():
    with pytest.raises(ConfigError, match="did you mean 'max_steps'"):
        Engine(Teacher("teacher"), max_step=3)
    with pytest.raises(ConfigError, match="named 'teacher'"):
        Engine(Teacher("teacher"), Teacher("teacher"))
    with pytest.raises(ConfigError, match="set_dataset"):
        Engine(Student("student", lr=1e-2), Teacher("teacher")).experiment().build_dataset(None)
    with pytest.raises(ConfigError, match="defines no train_step"):
        Teacher("teacher", lr=1e-3)
    engine = Engine(Student("student", lr=1e-2), Teacher("teacher"))
    stranger = Evaluator(Teacher("other"), eval_fn=lambda b: {})
    with pytest.raises(ConfigError, match="not modules of this engine"):
        engine.set_evaluator(stranger, every=2)


def test_a_module_with_lora_trains_its_adapters_only(tmp_path):
    from rlcore.runtime.options import LoraOptions

    rlcore.init(seed=3, log_level="WARNING")
    policy = Policy("policy", lr=1e-2, lora=LoraOptions(r=4, targets=["q", "v"]))
    reference = Reference("reference")

    def flow(batch):
        policy.train_step(reference.inference(batch))

    engine = Engine(policy, reference, flow=flow, run_dir=tmp_path, max_steps=6, batch_size=8,
                    progress=False)
    engine.set_dataset(addition_items(48))
    summary = engine.learn(resume=False)
    assert summary["status"] == "completed"
    losses = [r["policy.train_step/loss"] for r in read_metrics(tmp_path) if r["step"] > 0]
    assert losses[-1] < losses[0], losses
    trained = {n for n, p in policy.model.named_parameters() if p.requires_grad}
    assert trained and all(".lora_" in n and (".q_proj." in n or ".v_proj." in n) for n in trained)
    with pytest.raises(ConfigError, match="lora is set but it defines no train_step"):
        Reference("ref2", lora=LoraOptions(r=4))
