"""StepContext: what :meth:`Experiment.step` gets to run one training step.

The default step runs the whole dataflow graph once. An algorithm that needs control flow
(DAPO's dynamic sampling, an asynchronous consumer of rollouts) overrides ``step`` in its
plugin and uses this context: run some MFCs, draw more data, reduce across ranks.
"""

from __future__ import annotations

from collections import deque
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

    def peek(self, k: int) -> PackedBatch | None:
        """This rank's share of the ``k``-th global batch after this step's (1: the next),
        read ahead without taking it; None past the run's last step or the data's end."""
        upcoming = self._data.peek(k) if hasattr(self._data, "peek") else None
        return None if upcoming is None else self._executor.shard(upcoming)

    def interface(self, mfc: str) -> Any:
        """The interface object that runs MFC ``mfc`` (to hand it work ahead of its turn)."""
        return self._executor.interfaces[mfc]

    def all_reduce(self, values: list[float], op: str = "sum") -> list[float]:
        """``values`` reduced over every rank (``sum`` or ``max``)."""
        return distributed.all_reduce(values, op)

    def add_metrics(self, metrics: dict[str, Any]) -> None:
        """Report step-level metrics beside the MFCs' (logged under their own names)."""
        self.metrics.update({k: float(v) for k, v in metrics.items()})


class Lookahead:
    """The loop's batches, readable ahead (``peek``) for a sampler that works ahead of the
    trainers; ``state_dict`` is the loader's position after the last batch *taken*, so a
    checkpoint never skips batches that were only read ahead."""

    def __init__(self, loader: Any, limit: int):
        self.loader, self.limit, self.taken = loader, limit, 0
        self._it = iter(loader)
        self._ahead: deque[tuple[dict[str, Any], PackedBatch]] = deque()

    def __iter__(self) -> Lookahead:
        return self

    def __next__(self) -> PackedBatch:
        self.taken += 1
        return self._ahead.popleft()[1] if self._ahead else next(self._it)

    def peek(self, k: int) -> PackedBatch | None:
        """The ``k``-th batch after the last one taken; None past ``limit`` or the data."""
        if self.taken + k > self.limit:
            return None
        while len(self._ahead) < k:
            try:  # the loader's position before the batch, then the batch
                self._ahead.append((self.loader.state_dict(), next(self._it)))
            except StopIteration:
                return None
        return self._ahead[k - 1][1]

    def state_dict(self) -> dict[str, Any]:
        """The loader's state as if nothing had been read ahead."""
        return self._ahead[0][0] if self._ahead else self.loader.state_dict()
