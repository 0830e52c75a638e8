"""``Evaluator``: run some modules' forward calls over an eval set, then score the results.

Set on an engine with ``engine.set_evaluator(evaluator, every=N)``: every N
training steps it runs inside the same run, on the same models (no copies),
split across data-parallel ranks like training batches. Its metrics are
averaged over ranks and logged as ``eval/<name>``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from rlcore.api.module import Module
from rlcore.errors import ConfigError, RlcoreError

if TYPE_CHECKING:
    from rlcore.data.batch import PackedBatch
    from rlcore.dfg import DataflowGraph


class Evaluator:
    """``Evaluator(*modules, eval_fn=fn, flow=None, batch_size=None)``.

    Each eval batch goes through the forward calls of ``modules`` (all their
    ``forward_step``s ordered by keys, or the calls of ``flow``; no train_step),
    and ``eval_fn(batches) -> dict[str, float]`` scores the list of resulting
    batches (this rank's share; every batch holds the dataset keys, the outputs,
    and the items under ``batch.metadata["item"]``). With no modules, ``eval_fn``
    receives the dataset batches as they are. ``eval_fn`` may also be given as
    the last positional argument.
    """

    def __init__(self, *modules: Module | Callable, eval_fn: Callable | None = None,
                 flow: Callable | None = None, batch_size: int | None = None):
        mods = list(modules)
        if eval_fn is None and mods and callable(mods[-1]) and not isinstance(mods[-1], Module):
            eval_fn = mods.pop()
        if eval_fn is None or not callable(eval_fn):
            raise ConfigError("Evaluator needs eval_fn(batches) -> dict of metrics")
        bad = [m for m in mods if not isinstance(m, Module)]
        if bad:
            raise ConfigError(f"Evaluator takes rlcore.api.Module objects, got {bad!r}")
        if flow is not None and not mods:
            raise ConfigError("Evaluator: a flow needs the modules it calls")
        if batch_size is not None and batch_size < 1:
            raise ConfigError(f"Evaluator batch_size: expected >= 1, got {batch_size}")
        self.modules = mods
        self.eval_fn = eval_fn
        self.flow = flow
        self.batch_size = batch_size
        self.dataset: Any = None
        self._items: Any = None
        self._engine: Any = None

    def set_dataset(self, items: Any) -> Evaluator:
        """The eval set: items (strings, dicts) or an rlcore dataset, as for the engine."""
        self._items = items
        self.dataset = None
        if self._engine is not None:
            self.dataset = self._engine._make_dataset(items, self.modules)
        return self

    def _attach(self, engine: Any) -> None:
        foreign = [m.name for m in self.modules if engine.modules.get(m.name) is not m]
        if foreign:
            raise ConfigError(f"Evaluator modules {foreign} are not modules of this engine")
        self._engine = engine
        if self._items is not None and self.dataset is None:
            self.dataset = engine._make_dataset(self._items, self.modules)

    def dataset_keys(self) -> list[str] | None:
        if self.dataset is None:
            return None
        return sorted(self.dataset.collate([self.dataset[0]]).keys)

    def graph(self) -> DataflowGraph | None:
        """The eval graph (None without modules); validated like a training graph."""
        if not self.modules:
            return None
        from rlcore.api.flow import FlowError, default_flow, trace

        if self.flow is not None:
            mfcs, graph = trace(self.flow, self.dataset_keys(),
                                modules={m.name: m for m in self.modules})
        else:
            mfcs, graph = default_flow(self.modules, self.dataset_keys(), train=False, warn=False)
        trains = [m.name for m in mfcs if m.is_train]
        if trains:
            raise FlowError(f"an evaluator flow cannot train; it calls {trains}")
        return graph

    def check(self, training_roles: Iterable[str]) -> None:
        """Raise before a run starts when evaluation could not work."""
        if self.dataset is None:
            raise ConfigError("the evaluator has no data; call evaluator.set_dataset(items)")
        graph = self.graph()
        if graph is not None:
            missing = sorted(set(graph.roles) - set(training_roles))
            if missing:
                raise ConfigError(
                    f"the evaluator calls modules {missing} that the training flow never uses; "
                    "the engine builds only the models its flow calls"
                )

    def evaluate(self, handles: dict[str, Any]) -> dict[str, float]:
        """Run the eval set through the graph on these handles; return ``eval_fn``'s metrics."""
        from rlcore.api.adapter import ModuleInterface
        from rlcore.data.loader import BatchIterator
        from rlcore.dfg import build_graph
        from rlcore.runtime import distributed
        from rlcore.runtime.executor import Executor

        graph = self.graph() or build_graph([], warn=False)
        interfaces = {m.name: ModuleInterface(self._engine.modules[m.role],
                                              m.interface_args["method"]) for m in graph.mfcs}
        executor = Executor(graph, {r: handles[r] for r in graph.roles}, interfaces,
                            distributed.rank(), distributed.world_size())
        size = self.batch_size or self._engine.config.run.batch_size or 8
        results: list[PackedBatch] = []
        for batch in BatchIterator(self.dataset, batch_size=size, shuffle=False, epochs=1):
            executor.step(batch)
            results.append(executor.last_batch)
        metrics = self.eval_fn(results)
        if not isinstance(metrics, dict):
            raise RlcoreError(f"eval_fn must return a dict of metrics, got "
                              f"{type(metrics).__name__}")
        try:
            return {str(k): float(v) for k, v in metrics.items()}
        except (TypeError, ValueError) as exc:
            raise RlcoreError(f"eval_fn returned a metric that is not a number: {exc}") from None
