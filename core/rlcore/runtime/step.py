"""StepContext: what :meth:`Experiment.step` gets to run one training step.

The default step runs the whole dataflow graph once. An algorithm that needs control flow
(DAPO's dynamic sampling, an asynchronous consumer of rollouts) overrides ``step`` in its
plugin and uses this context: run some MFCs, draw more data, reduce across ranks.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from rlcore.runtime import distributed

if TYPE_CHECKING:
    from rlcore.data.batch import PackedBatch
    from rlcore.dfg import DataflowGraph
    from rlcore.runtime.executor import Executor
    from rlcore.runtime.interface import ModelHandle


class StepContext:
    """One step's view of the run: the graph, the role handles, more data and the collectives.

    ``metrics`` collects what the MFCs report (and anything the step adds); the loop
    averages them over ranks and logs them.
    """

    def __init__(self, executor: Executor, data: Iterator[PackedBatch] | None = None):
        self._executor = executor
        self._data = data
        self.metrics: dict[str, float] = {}

    @property
    def graph(self) -> DataflowGraph:
        return self._executor.graph

    @property
    def handles(self) -> dict[str, ModelHandle]:
        return self._executor.handles

    @property
    def rank(self) -> int:
        return self._executor.rank

    @property
    def world_size(self) -> int:
        return self._executor.world_size

    @property
    def order(self) -> list[str]:
        """The graph's MFC names in the order they run."""
        return [m.name for m in self.graph.order]

    def run(self, batch: PackedBatch, mfcs: Iterable[str] | None = None) -> PackedBatch:
        """Run the named MFCs (default: all) in graph order on this rank's ``batch``; return
        it with their outputs merged in."""
        wanted = None if mfcs is None else set(mfcs)
        if wanted is not None and wanted - set(self.order):
            raise KeyError(f"no MFC {sorted(wanted - set(self.order))} in the graph; it has "
                           f"{self.order}")
        chosen = [m for m in self.graph.order if wanted is None or m.name in wanted]
        return self._executor.run(chosen, batch, self.metrics)

    def next_batch(self) -> PackedBatch:
        """This rank's share of the next global data batch; StopIteration when the data ends."""
        if self._data is None:
            raise StopIteration
        return self._executor.shard(next(self._data))

    def all_reduce(self, values: list[float], op: str = "sum") -> list[float]:
        """``values`` reduced over every rank (``sum`` or ``max``)."""
        return distributed.all_reduce(values, op)

    def add_metrics(self, metrics: dict[str, Any]) -> None:
        """Report step-level metrics beside the MFCs' (logged under their own names)."""
        self.metrics.update({k: float(v) for k, v in metrics.items()})
