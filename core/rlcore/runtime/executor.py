"""The executor: each step, run a graph's MFCs in dependency order on this rank's data.

SPMD: every rank runs the whole graph on its own token-balanced share of the
global batch; DeepSpeed averages gradients across ranks inside ``step()``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any

from rlcore.data.batch import BatchError, PackedBatch
from rlcore.dfg import MFC, DataflowGraph, InterfaceType
from rlcore.errors import RlcoreError
from rlcore.runtime.interface import ModelHandle, ModelInterface


class ExecutionError(RlcoreError):
    """An MFC received or returned data that does not match its declaration."""


class Executor:
    """Runs ``graph`` over ``handles`` (role -> ModelHandle) with ``interfaces`` (MFC -> impl)."""

    def __init__(
        self,
        graph: DataflowGraph,
        handles: Mapping[str, ModelHandle],
        interfaces: Mapping[str, ModelInterface],
        rank: int = 0,
        world_size: int = 1,
    ):
        missing = sorted({m.role for m in graph.mfcs} - set(handles))
        if missing:
            raise ExecutionError(f"no model for roles {missing}; the graph uses them")
        missing = sorted({m.name for m in graph.mfcs} - set(interfaces))
        if missing:
            raise ExecutionError(f"no interface for MFCs {missing}")
        self.graph = graph
        self.handles = dict(handles)
        self.interfaces = dict(interfaces)
        self.rank = rank
        self.world_size = world_size
        # The last MFC of each role in a step: after it the role may go idle (offload).
        self._last_use = {m.role: m.name for m in graph.order}

    def shard(self, batch: PackedBatch) -> PackedBatch:
        """This rank's part of a global batch, balanced by tokens across ranks."""
        if self.world_size == 1:
            return batch
        try:
            return batch.split_balanced(self.world_size)[self.rank]
        except BatchError as exc:
            raise ExecutionError(
                f"cannot split a batch of {len(batch)} samples over {self.world_size} ranks: "
                f"{exc}. Use a batch of at least {self.world_size} samples."
            ) from None

    def step(self, batch: PackedBatch, *, sharded: bool = False, experiment: Any = None,
             data: Iterator[PackedBatch] | None = None) -> dict[str, float]:
        """One step on ``batch`` (sharded here unless ``sharded``): ``experiment.step`` when
        given (it may draw more global batches from ``data``), else every MFC once.

        Returns this rank's metrics: ``"<mfc>/<name>"`` from train steps (step-level
        names that start with ``/`` unprefixed), ``"time/<mfc>"`` seconds per call and
        ``perf/tokens_per_s`` (tokens of the longest key over the step's time). The batch
        the step ends with is kept as ``self.last_batch`` for inspection.
        """
        from rlcore.runtime.step import StepContext

        ctx = StepContext(self, data)
        start = time.perf_counter()
        local = batch if sharded else self.shard(batch)
        out = experiment.step(ctx, local) if experiment is not None else ctx.run(local)
        if not isinstance(out, PackedBatch):
            raise ExecutionError(f"{type(experiment).__name__}.step must return the batch it "
                                 f"ran (a PackedBatch), got {type(out).__name__}")
        ctx.metrics["perf/tokens_per_s"] = out.num_tokens() / max(time.perf_counter() - start, 1e-9)
        self.last_batch = out
        return ctx.metrics

    def run(self, mfcs: list[MFC], local: PackedBatch, metrics: dict[str, float]) -> PackedBatch:
        """Run ``mfcs`` in order on this rank's ``local`` batch, merging their outputs into it."""
        absent = sorted(k for k in self.graph.dataset_keys if k not in local.data)
        if absent:
            raise ExecutionError(
                f"the dataset batch lacks keys {absent} that the graph reads; "
                f"it has {local.keys}"
            )
        for mfc in mfcs:
            t0 = time.perf_counter()
            out, stats = self._call(mfc, local)
            if out is not None:
                local.update(out)
            metrics.update({k[1:] if k.startswith("/") else f"{mfc.name}/{k}": float(v)
                            for k, v in stats.items()})
            key = f"time/{mfc.name}"
            metrics[key] = metrics.get(key, 0.0) + time.perf_counter() - t0
        return local

    def _inputs(self, mfc: MFC, local: PackedBatch) -> PackedBatch:
        missing = [k for k in mfc.input_keys if k not in local.data]
        if missing:
            raise ExecutionError(f"MFC {mfc.name!r} needs keys {missing}; batch has {local.keys}")
        return local.select(mfc.input_keys).rename(dict(mfc.input_remap))

    def _call(self, mfc: MFC, local: PackedBatch) -> tuple[PackedBatch | None, dict[str, float]]:
        """Run ``mfc``: its output batch (None for a train step) and its mean metrics."""
        handle = self.handles[mfc.role]
        iface = self.interfaces[mfc.name]
        data = self._inputs(mfc, local)
        pieces = data.minibatches(mfc.n_minibatches) if mfc.n_minibatches > 1 else [data]
        handle.model.on_active()
        try:
            if mfc.interface_type is InterfaceType.TRAIN_STEP:
                handle.model.train()
                results = [iface.train_step(handle, p) for p in pieces]
                return None, _mean_metrics(mfc, results)
            handle.model.eval()
            fn = iface.generate if mfc.interface_type is InterfaceType.GENERATE else iface.inference
            outs = [fn(handle, p) for p in pieces]
            # generate / inference may return (batch, metrics) to report scalars too
            stats = [o[1] for o in outs if isinstance(o, tuple) and len(o) == 2]
            outs = [o[0] if isinstance(o, tuple) and len(o) == 2 else o for o in outs]
            return self._outputs(mfc, data, outs), _mean_metrics(mfc, stats)
        finally:
            if self._last_use[mfc.role] == mfc.name:
                handle.model.on_idle()

    def _outputs(self, mfc: MFC, data: PackedBatch, outs: list[PackedBatch]) -> PackedBatch:
        for o in outs:
            if not isinstance(o, PackedBatch):
                raise ExecutionError(
                    f"MFC {mfc.name!r}: {mfc.interface_type.value} must return a PackedBatch, "
                    f"got {type(o).__name__}"
                )
        wanted = mfc.interface_output_keys  # interface name -> graph key
        out = PackedBatch.concat([o.select(list(wanted), metadata=False) for o in outs]) \
            if all(set(wanted) <= set(o.data) for o in outs) else None
        if out is None:
            got = sorted({k for o in outs for k in o.data})
            raise ExecutionError(
                f"MFC {mfc.name!r} declares outputs {list(wanted)} (interface names) but "
                f"{type(self.interfaces[mfc.name]).__name__}.{mfc.interface_type.value} "
                f"returned {got}"
            )
        if sorted(out.ids) != sorted(data.ids):
            raise ExecutionError(
                f"MFC {mfc.name!r} returned samples {out.ids[:4]}... for inputs "
                f"{data.ids[:4]}...; outputs must keep the input sample ids"
            )
        return out.rename(wanted)


def _mean_metrics(mfc: MFC, results: list[dict[str, float]]) -> dict[str, float]:
    sums: dict[str, list[float]] = {}
    for r in results:
        if not isinstance(r, Mapping):
            raise ExecutionError(
                f"MFC {mfc.name!r}: {mfc.interface_type.value} must return a dict of "
                f"metrics{'' if mfc.interface_type is InterfaceType.TRAIN_STEP else ' as the second item of its (batch, metrics) pair'}, "
                f"got {type(r).__name__}"
            )
        for k, v in r.items():
            sums.setdefault(k, []).append(float(v))
    return {k: sum(v) / len(v) for k, v in sums.items()}
