"""Build a dataflow graph from MFCs by matching keys, validate it and order it.

An edge ``a -> b`` exists when ``b`` reads a key that ``a`` produces (a *data*
edge), or when ``a`` reads a role's weights that ``b`` then trains in the same
step (a *parameter* edge: ReaL's parameter-version dependency). Keys that no MFC
produces come from the dataset.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rlcore.dfg.errors import (
    CycleError,
    DuplicateMFCError,
    DuplicateProducerError,
    MissingInputError,
    UnusedOutputWarning,
)
from rlcore.dfg.mfc import MFC
from rlcore.dfg.render import render as _render


@dataclass(frozen=True)
class Edge:
    """``src`` must run before ``dst``; ``keys`` are the data it hands over (empty for params)."""

    src: str
    dst: str
    keys: tuple[str, ...]
    kind: str = "data"  # "data" or "param"


class DataflowGraph:
    """A validated DAG of MFCs.

    ``dataset_keys`` lists what each dataset batch provides. When it is ``None``
    the graph assumes the dataset provides every key no MFC produces (useful to
    show a graph before the dataset is known); pass it to check missing inputs.
    Invalid graphs raise a :class:`~rlcore.dfg.errors.DataflowError`; outputs that
    nothing reads are collected in ``warnings`` and emitted as
    :class:`UnusedOutputWarning` (unless ``warn=False``).
    """

    def __init__(
        self,
        mfcs: Iterable[MFC],
        dataset_keys: Iterable[str] | None = None,
        *,
        warn: bool = True,
    ) -> None:
        self.mfcs: tuple[MFC, ...] = tuple(mfcs)
        self._by_name: dict[str, MFC] = {}
        for m in self.mfcs:
            if not isinstance(m, MFC):
                raise TypeError(f"expected MFC objects, got {type(m).__name__}")
            if m.name in self._by_name:
                raise DuplicateMFCError(
                    f"two MFCs are called {m.name!r} (roles {self._by_name[m.name].role!r} "
                    f"and {m.role!r}); give each call a unique name"
                )
            self._by_name[m.name] = m
        self._infer_dataset = dataset_keys is None
        self.producers: dict[str, str] = {}
        self.consumers: dict[str, list[str]] = {}
        self._check_producers(dataset_keys)
        for m in self.mfcs:
            for k in m.input_keys:
                self.consumers.setdefault(k, []).append(m.name)
        self.dataset_keys: frozenset[str] = frozenset(
            dataset_keys
            if dataset_keys is not None
            else (k for k in self.consumers if k not in self.producers)
        )
        self._check_inputs()
        self.edges: tuple[Edge, ...] = tuple(self._data_edges() + self._param_edges())
        self.order: tuple[MFC, ...] = self._toposort()
        self.warnings: tuple[str, ...] = tuple(self._unused_outputs())
        if warn:
            for w in self.warnings:
                warnings.warn(w, UnusedOutputWarning, stacklevel=2)

    # ------------------------------------------------------------------ checks

    def _check_producers(self, dataset_keys: Iterable[str] | None) -> None:
        provided = set(dataset_keys or ())
        for m in self.mfcs:
            for k in m.output_keys:
                if k in self.producers:
                    raise DuplicateProducerError(
                        f"key {k!r} is produced by two MFCs, {self.producers[k]!r} and "
                        f"{m.name!r}; rename one output with output_remap"
                    )
                if k in provided:
                    raise DuplicateProducerError(
                        f"key {k!r} is produced by MFC {m.name!r} and also provided by the "
                        "dataset; rename the output with output_remap"
                    )
                self.producers[k] = m.name

    def _check_inputs(self) -> None:
        if self._infer_dataset:
            return
        missing = [
            (k, names)
            for k, names in self.consumers.items()
            if k not in self.producers and k not in self.dataset_keys
        ]
        if missing:
            lines = [f"  - {k!r}, read by {', '.join(map(repr, names))}" for k, names in missing]
            have = sorted(set(self.producers) | self.dataset_keys)
            raise MissingInputError(
                "no MFC produces and the dataset does not provide:\n"
                + "\n".join(lines)
                + f"\navailable keys: {have}. Add a producing MFC, fix the key name, or "
                "remap it with input_remap."
            )

    def _unused_outputs(self) -> list[str]:
        out = []
        for k, name in self.producers.items():
            if k not in self.consumers:
                out.append(f"MFC {name!r} produces {k!r}, which no MFC reads")
        return out

    # ------------------------------------------------------------------ edges and order

    def _data_edges(self) -> list[Edge]:
        keys: dict[tuple[str, str], list[str]] = {}
        for m in self.mfcs:
            for k in m.input_keys:
                src = self.producers.get(k)
                if src is not None:
                    keys.setdefault((src, m.name), []).append(k)
        return [Edge(s, d, tuple(ks)) for (s, d), ks in keys.items()]

    def _param_edges(self) -> list[Edge]:
        # A train_step has no data outputs, so these edges never close a loop on their own:
        # every other call on the role reads the weights before this step's update.
        edges = []
        for t in self.mfcs:
            if not t.is_train:
                continue
            for m in self.mfcs:
                if m.role == t.role and m.name != t.name and not m.is_train:
                    edges.append(Edge(m.name, t.name, (), "param"))
        return edges

    def _toposort(self) -> tuple[MFC, ...]:
        index = {m.name: i for i, m in enumerate(self.mfcs)}
        succ: dict[str, set[str]] = {m.name: set() for m in self.mfcs}
        indeg = {m.name: 0 for m in self.mfcs}
        for e in self.edges:
            if e.dst not in succ[e.src]:
                succ[e.src].add(e.dst)
                indeg[e.dst] += 1
        ready = sorted((n for n, d in indeg.items() if d == 0), key=index.__getitem__)
        order: list[str] = []
        while ready:
            n = ready.pop(0)
            order.append(n)
            for s in succ[n]:
                indeg[s] -= 1
                if indeg[s] == 0:
                    ready.append(s)
            ready.sort(key=index.__getitem__)
        if len(order) != len(self.mfcs):
            raise CycleError(self._describe_cycle({n for n, d in indeg.items() if d > 0}))
        return tuple(self._by_name[n] for n in order)

    def _describe_cycle(self, stuck: set[str]) -> str:
        by_pair = {(e.src, e.dst): e for e in self.edges}
        nxt: dict[str, list[str]] = {}
        for e in self.edges:
            if e.src in stuck and e.dst in stuck:
                nxt.setdefault(e.src, []).append(e.dst)
        # Walk forward inside the stuck set until a node repeats: that loop is a cycle.
        start = min(stuck, key=[m.name for m in self.mfcs].index)
        path, seen = [start], {start: 0}
        while True:
            n = nxt[path[-1]][0]
            if n in seen:
                loop = path[seen[n]:] + [n]
                break
            seen[n] = len(path)
            path.append(n)
        hops = []
        for a, b in zip(loop, loop[1:], strict=False):
            e = by_pair[(a, b)]
            via = ", ".join(e.keys) if e.keys else f"weights of role {self._by_name[b].role!r}"
            hops.append(f"{a!r} -[{via}]-> {b!r}")
        return (
            "the dataflow graph has a cycle: "
            + "; ".join(hops)
            + ". An MFC cannot depend on its own output; break the loop by reading a key "
            "from the dataset or renaming an output."
        )

    # ------------------------------------------------------------------ queries

    def __len__(self) -> int:
        return len(self.mfcs)

    def __iter__(self):
        return iter(self.order)

    def mfc(self, name: str) -> MFC:
        """The MFC called ``name``."""
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"no MFC {name!r}; the graph has {list(self._by_name)}") from None

    @property
    def roles(self) -> dict[str, list[MFC]]:
        """Role name -> its MFCs, in execution order."""
        out: dict[str, list[MFC]] = {}
        for m in self.order:
            out.setdefault(m.role, []).append(m)
        return out

    @property
    def trainable_roles(self) -> list[str]:
        """Roles that some train_step MFC updates."""
        return sorted({m.role for m in self.mfcs if m.is_train})

    def predecessors(self, name: str) -> list[str]:
        """MFCs that must run before ``name``."""
        return sorted({e.src for e in self.edges if e.dst == name})

    def dataset_inputs(self, name: str) -> tuple[str, ...]:
        """The keys ``name`` reads straight from the dataset."""
        return tuple(k for k in self.mfc(name).input_keys if k not in self.producers)

    def render(self, fmt: str = "text") -> str:
        """The graph as ``text``, ``mermaid`` or ``dot``."""
        return _render(self, fmt)

    def __repr__(self) -> str:
        return f"DataflowGraph({' -> '.join(m.name for m in self.order)})"


def build_graph(
    mfcs: Sequence[MFC], dataset_keys: Iterable[str] | None = None, *, warn: bool = True
) -> DataflowGraph:
    """Build and validate the graph of ``mfcs``; see :class:`DataflowGraph`."""
    return DataflowGraph(mfcs, dataset_keys, warn=warn)
