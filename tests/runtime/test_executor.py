"""Executor: exact keys per MFC, remaps, merging, minibatches, data-parallel shards."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rlcore.data.batch import PackedBatch
from rlcore.dfg import MFC, build_graph
from rlcore.runtime.backends import InferenceBackend
from rlcore.runtime.executor import ExecutionError, Executor
from rlcore.runtime.experiment import Experiment
from rlcore.runtime.interface import ModelHandle, ModelInterface


def batch(n=6):
    ids = [f"s{i}" for i in range(n)]
    lens = [i + 1 for i in range(n)]  # 1..n tokens
    return PackedBatch.from_sequences(ids, {
        "tokens": [[list(range(k))] for k in lens],
        "extra": [[[0.0] * k] for k in lens],
    })


class Recorder(ModelInterface):
    """Records what it receives; inference returns ``tokens * scale`` as ``scaled``."""

    def __init__(self, scale=2, out_key="scaled"):
        self.scale, self.out_key, self.seen = scale, out_key, []

    def inference(self, handle, data):
        self.seen.append((sorted(data.keys), list(data.ids), handle.role))
        key = data.keys[0]
        return PackedBatch(data.ids, {self.out_key: data.data[key] * self.scale,
                                      "ignored": data.data[key]},
                           {self.out_key: data.seqlens[key], "ignored": data.seqlens[key]})

    def train_step(self, handle, data):
        self.seen.append((sorted(data.keys), list(data.ids), handle.role))
        out = {"n": float(len(data))}
        if "doubled" in data.data:
            out["sum"] = float(data.data["doubled"].sum())
        return out


def handle(role):
    return ModelHandle(role, nn.Identity(), InferenceBackend().wrap(nn.Identity()))


def test_keys_remaps_and_merge():
    double, train = Recorder(), Recorder()
    g = build_graph([
        MFC("train", "a", "train_step", "x", ["doubled", "tokens"]),
        MFC("double", "b", "inference", "x", ["tokens"], ["doubled"],
            input_remap={"tokens": "ids_in"}, output_remap={"scaled": "doubled"}),
    ], dataset_keys=["tokens", "extra"], warn=False)
    ex = Executor(g, {"a": handle("a"), "b": handle("b")}, {"double": double, "train": train})
    metrics = ex.step(batch())
    assert double.seen == [(["ids_in"], [f"s{i}" for i in range(6)], "b")]
    assert train.seen[0][0] == ["doubled", "tokens"]  # exactly its keys: no "extra"
    assert metrics["train/n"] == 6.0
    assert metrics["train/sum"] == 2 * sum(sum(range(k)) for k in range(1, 7))
    assert "time/double" in metrics and "time/train" in metrics
    assert "ignored" not in ex.last_batch.data  # undeclared outputs are dropped
    torch.testing.assert_close(ex.last_batch.data["doubled"], 2 * ex.last_batch.data["tokens"])


def test_minibatches_split_calls_and_average_metrics():
    rec = Recorder()
    g = build_graph([
        MFC("double", "b", "inference", "x", ["tokens"], ["doubled"], n_minibatches=3,
            output_remap={"scaled": "doubled"}),
        MFC("train", "a", "train_step", "x", ["doubled"], n_minibatches=2),
    ], dataset_keys=["tokens"])
    inf = Recorder()
    ex = Executor(g, {"a": handle("a"), "b": handle("b")}, {"double": inf, "train": rec})
    metrics = ex.step(batch())
    assert len(inf.seen) == 3 and len(rec.seen) == 2
    assert sorted(i for _, ids, _ in rec.seen for i in ids) == sorted(batch().ids)
    assert metrics["train/n"] == 3.0  # mean over the two minibatches
    assert ex.last_batch.ids == batch().ids  # merged back in the original order


def test_data_parallel_shard_is_token_balanced():
    g = build_graph([MFC("train", "a", "train_step", "x", ["tokens"])], dataset_keys=["tokens"])
    shards = []
    for rank in range(2):
        rec = Recorder()
        Executor(g, {"a": handle("a")}, {"train": rec}, rank=rank, world_size=2).step(batch())
        shards.append(rec.seen[0][1])
    assert sorted(shards[0] + shards[1]) == sorted(batch().ids)
    tokens = [sum(int(i[1:]) + 1 for i in s) for s in shards]
    assert abs(tokens[0] - tokens[1]) <= 6  # at most one sample apart; 21 tokens in all
    with pytest.raises(ExecutionError, match="cannot split a batch of 6 samples over 8 ranks"):
        Executor(g, {"a": handle("a")}, {"train": Recorder()}, rank=0, world_size=8).step(batch())


def test_bad_outputs_and_missing_keys_are_reported():
    g = build_graph([MFC("inf", "b", "inference", "x", ["tokens"], ["logits"])], dataset_keys=["tokens"],
                    warn=False)
    ex = Executor(g, {"b": handle("b")}, {"inf": Recorder()})
    with pytest.raises(ExecutionError, match=r"declares outputs \['logits'\].*returned \['ignored', 'scaled'\]"):
        ex.step(batch())
    g2 = build_graph([MFC("t", "a", "train_step", "x", ["nope"])], dataset_keys=["nope"])
    with pytest.raises(ExecutionError, match=r"lacks keys \['nope'\]"):
        Executor(g2, {"a": handle("a")}, {"t": Recorder()}).step(batch())
    with pytest.raises(ExecutionError, match=r"no model for roles \['a'\]"):
        Executor(g2, {}, {"t": Recorder()})


def test_idle_roles_are_offloaded_after_their_last_call():
    from rlcore.runtime.options import InferenceOptions

    ref = InferenceBackend(InferenceOptions(offload_when_idle=True)).wrap(nn.Identity())
    states = []

    class Probe(Recorder):
        def inference(self, handle, data):
            states.append(handle.model.offloaded)
            return super().inference(handle, data)

    g = build_graph([
        MFC("r1", "ref", "inference", "x", ["tokens"], ["k1"], output_remap={"scaled": "k1"}),
        MFC("r2", "ref", "inference", "x", ["k1"], ["k2"], output_remap={"scaled": "k2"}),
        MFC("t", "a", "train_step", "x", ["k2"], input_remap={"k2": "doubled"}),
    ], dataset_keys=["tokens"])
    ex = Executor(g, {"ref": ModelHandle("ref", ref.module, ref), "a": handle("a")},
                  {"r1": Probe(), "r2": Probe(), "t": Recorder()})
    ex.step(batch())
    assert states == [False, False] and ref.offloaded


# ---------------------------------------------------------------------- Experiment.step


def numbered(start, n=4):
    """A batch of samples s<start>.. whose single token is the sample's number."""
    ids = [f"s{i}" for i in range(start, start + n)]
    return PackedBatch.from_sequences(ids, {"tokens": [[[i]] for i in range(start, start + n)]})


class KeepEven(Experiment):
    """A step with control flow: score, keep the even samples, refill from more data, train."""

    def step(self, ctx, batch):
        target, kept = len(batch), None
        while kept is None or len(kept) < target:
            scored = ctx.run(batch if kept is None else ctx.next_batch(), ["score"])
            even = scored.gather([i for i, v in enumerate(scored.data["scaled"].tolist())
                                  if int(v) % 2 == 0])
            kept = even if kept is None else PackedBatch.concat([kept, even])
        ctx.add_metrics({"kept": len(kept)})
        return ctx.run(kept.gather(range(target)), [n for n in ctx.order if n != "score"])


def stepped_executor():
    score, train = Recorder(scale=1), Recorder()
    g = build_graph([
        MFC("score", "b", "inference", "x", ["tokens"], ["scaled"]),
        MFC("train", "a", "train_step", "x", ["scaled", "tokens"]),
    ], dataset_keys=["tokens"], warn=False)
    ex = Executor(g, {"a": handle("a"), "b": handle("b")}, {"score": score, "train": train})
    return ex, score, train


def test_an_experiment_step_runs_parts_of_the_graph_and_draws_more_data():
    ex, score, train = stepped_executor()
    more = iter([numbered(4), numbered(8), numbered(12)])
    metrics = ex.step(numbered(0), experiment=KeepEven({}), data=more)
    assert train.seen == [(["scaled", "tokens"], ["s0", "s2", "s4", "s6"], "a")]
    assert len(score.seen) == 2 and metrics["kept"] == 4 and "time/score" in metrics
    assert ex.last_batch.ids == ["s0", "s2", "s4", "s6"]
    assert next(more).ids == ["s8", "s9", "s10", "s11"]  # nothing consumed beyond the need


def test_the_default_step_runs_every_mfc_once():
    ex, score, train = stepped_executor()
    ex.step(numbered(0), experiment=Experiment({}))
    assert len(score.seen) == 1 and train.seen[0][1] == ["s0", "s1", "s2", "s3"]


def test_a_step_that_draws_from_no_data_and_one_that_returns_no_batch():
    ex, _, _ = stepped_executor()
    with pytest.raises(StopIteration):
        ex.step(numbered(1, n=2), experiment=KeepEven({}))

    class Broken(Experiment):
        def step(self, ctx, batch):
            ctx.run(batch)

    with pytest.raises(ExecutionError, match="Broken.step must return the batch it ran"):
        ex.step(numbered(0), experiment=Broken({}))


class Scorer(Recorder):
    """An inference MFC that also reports the mean of what it scored."""

    def __init__(self):
        super().__init__()
        self.means = []

    def inference(self, handle, data):
        out = super().inference(handle, data)
        self.means.append(float(out.data[self.out_key].float().mean()))
        return out, {"score_mean": self.means[-1], "/score/n": float(len(data))}


def test_inference_mfc_reports_metrics_averaged_over_minibatches():
    g = build_graph([
        MFC("score", "b", "inference", "x", ["tokens"], ["doubled"], n_minibatches=2,
            output_remap={"scaled": "doubled"}),
        MFC("train", "a", "train_step", "x", ["doubled"]),
    ], dataset_keys=["tokens"])
    scorer = Scorer()
    ex = Executor(g, {"a": handle("a"), "b": handle("b")}, {"score": scorer, "train": Recorder()})
    metrics = ex.step(batch())
    assert len(scorer.means) == 2 and scorer.means[0] != scorer.means[1]
    assert metrics["score/score_mean"] == pytest.approx(sum(scorer.means) / 2)
    assert metrics["score/n"] == 3.0  # a "/" name is step-level: no MFC prefix
    torch.testing.assert_close(ex.last_batch.data["doubled"], 2 * ex.last_batch.data["tokens"])
