"""Trace a flow written as a plain Python function over model calls into MFCs.

The flow runs once with :class:`SymbolicBatch` stand-ins instead of data. Each
model call (``policy.generate(batch)``, ``ref.inference(out)``,
``trainer.train_step(ref)``) records one MFC from the module's declared keys and
returns a stand-in that also holds the call's outputs. The MFCs then go through
:func:`rlcore.dfg.build_graph` like any experiment's, so a bad flow raises the
same dataflow errors. Two checks are the flow's own (:class:`FlowError`): a call
may only read a produced key that it was handed, and a role may not be read
after its ``train_step`` in the same flow (reads see the weights before the update).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rlcore.dfg import MFC, DataflowError, InterfaceType, build_graph

if TYPE_CHECKING:
    from rlcore.api.module import Module
    from rlcore.dfg import DataflowGraph

ADAPTER = "rlcore.api.adapter:ModuleInterface"


class FlowError(DataflowError):
    """A flow function does something no dataflow graph can express."""


@dataclass
class Call:
    """One recorded model call: the module, its MFC, and the keys its arguments made visible."""

    module: Module
    mfc: MFC
    visible: frozenset[str]
    position: int


class SymbolicBatch:
    """Stands in for a batch while a flow is traced; knows which produced keys it holds.

    It holds no data: a flow may only pass it between model calls. Keys that no
    call produces are assumed to come from the dataset (the graph checks them
    against the dataset once one is set).
    """

    def __init__(self, tracer: Tracer, keys: Iterable[str] = (), origin: str = "dataset"):
        self._tracer = tracer
        self._keys = frozenset(keys)
        self._origin = origin

    @property
    def keys(self) -> frozenset[str]:
        """Keys produced by the calls this batch came through."""
        return self._keys

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise FlowError(
            f"a flow function only passes batches between model calls; it cannot read "
            f"{name!r} of the batch from {self._origin} while the flow is traced. Work on "
            "the data inside a module's forward_step or train_step."
        )

    def __getitem__(self, key: Any) -> Any:
        return self.__getattr__(f"[{key!r}]")

    def __bool__(self) -> bool:
        raise FlowError(
            "a flow function cannot branch on a batch: the flow is traced once into a "
            "fixed graph. Move data-dependent logic into a module."
        )

    def __repr__(self) -> str:
        return f"SymbolicBatch(from {self._origin}; produced keys {sorted(self._keys)})"


@dataclass
class Tracer:
    """Records the model calls of one flow."""

    check_visibility: bool = True
    calls: list[Call] = field(default_factory=list)

    def record(
        self,
        module: Module,
        method: str,
        interface_type: InterfaceType | str,
        args: Sequence[Any],
        *,
        name: str | None = None,
        input_remap: Mapping[str, str] | None = None,
        output_remap: Mapping[str, str] | None = None,
        n_minibatches: int = 1,
    ) -> SymbolicBatch | None:
        """Record ``module.<method>(*args)`` as an MFC; return the stand-in of its output."""
        itype = InterfaceType(str(interface_type))
        call = f"{module.name}.{itype.value}"
        if not args:
            raise FlowError(f"{call}() needs the batch to work on, e.g. {call}(batch)")
        for a in args:
            if not isinstance(a, SymbolicBatch) or a._tracer is not self:
                raise FlowError(
                    f"{call}() was given {type(a).__name__}; inside a flow pass the batch the "
                    "flow received or the result of another model call"
                )
        is_train = itype is InterfaceType.TRAIN_STEP
        in_keys = list(module.train_keys if is_train else module.input_keys)
        out_keys = [] if is_train else list(module.output_keys)
        if not in_keys:
            what = "train_keys (or input_keys)" if is_train else "input_keys"
            raise FlowError(f"{call}: module {module.name!r} declares no {what}; declare the "
                            "batch keys its method reads")
        if not is_train and not out_keys:
            raise FlowError(f"{call}: module {module.name!r} declares no output_keys; declare "
                            "the keys its forward_step returns")
        input_remap = dict(input_remap or {})
        output_remap = dict(output_remap or {})
        stray = sorted(set(input_remap.values()) - set(in_keys))
        if stray:
            raise FlowError(f"{call}: input_remap maps onto {stray}, which {module.name!r} does "
                            f"not read (it reads {in_keys})")
        stray = sorted(set(output_remap) - set(out_keys))
        if stray:
            raise FlowError(f"{call}: output_remap renames {stray}, which {module.name!r} does "
                            f"not return (it returns {out_keys})")
        to_graph = {iface: graph for graph, iface in input_remap.items()}
        graph_in = [to_graph.get(k, k) for k in in_keys]
        graph_out = [output_remap.get(k, k) for k in out_keys]
        mfc = MFC(
            name=name or self._unique(call),
            role=module.name,
            interface_type=itype,
            interface=ADAPTER,
            input_keys=graph_in,
            output_keys=graph_out,
            interface_args={"module": module.name, "method": method},
            input_remap={g: i for g, i in input_remap.items()},
            output_remap=output_remap,
            n_minibatches=n_minibatches,
        )
        visible = frozenset().union(*(a.keys for a in args))
        self.calls.append(Call(module, mfc, visible, len(self.calls)))
        if is_train:
            return None
        return SymbolicBatch(self, visible | set(graph_out), origin=mfc.name)

    def _unique(self, base: str) -> str:
        taken = {c.mfc.name for c in self.calls}
        if base not in taken:
            return base
        n = 2
        while f"{base}_{n}" in taken:
            n += 1
        return f"{base}_{n}"

    @property
    def mfcs(self) -> list[MFC]:
        return [c.mfc for c in self.calls]

    def check(self) -> None:
        """The flow's own rules (run after the graph's validation)."""
        producers = {k: c for c in self.calls for k in c.mfc.output_keys}
        if self.check_visibility:
            for c in self.calls:
                for k in c.mfc.input_keys:
                    src = producers.get(k)
                    if src is None or src is c or k in c.visible:
                        continue
                    when = "later in the flow" if src.position > c.position else "in the flow"
                    raise FlowError(
                        f"{c.mfc.name!r} reads {k!r}, which {src.mfc.name!r} produces {when}, "
                        f"but the batch passed to {c.mfc.name!r} does not hold it. Pass "
                        f"{src.mfc.name!r}'s output (several batches may be passed: "
                        f"{c.module.name}.{c.mfc.interface_type.value}(a, b))"
                    )
        trained: dict[str, Call] = {}
        for c in self.calls:
            t = trained.get(c.mfc.role)
            if t is not None and not c.mfc.is_train:
                raise FlowError(
                    f"{c.mfc.name!r} uses role {c.mfc.role!r} after {t.mfc.name!r} trains it in "
                    "the same flow; within one step every read of a role happens before its "
                    "update. Move the call before the train_step."
                )
            if c.mfc.is_train:
                trained[c.mfc.role] = c


def trace(
    flow: Callable[[SymbolicBatch], Any],
    dataset_keys: Iterable[str] | None = None,
    *,
    modules: Mapping[str, Module] | None = None,
    warn: bool = True,
) -> tuple[list[MFC], DataflowGraph]:
    """Run ``flow`` once on a stand-in batch; return its MFCs and their validated graph.

    With ``modules`` (name -> module), every call must be on one of those objects.
    """
    tracer = Tracer()
    flow(SymbolicBatch(tracer))
    if modules is not None:
        foreign = sorted({c.module.name for c in tracer.calls
                          if modules.get(c.module.name) is not c.module})
        if foreign:
            raise FlowError(f"the flow calls modules {foreign} that are not in the engine; "
                            f"pass them to Engine(...) (it has {sorted(modules)})")
    return _finish(tracer, dataset_keys, warn, "the flow function")


def default_flow(
    modules: Sequence[Module],
    dataset_keys: Iterable[str] | None = None,
    *,
    train: bool = True,
    warn: bool = True,
) -> tuple[list[MFC], DataflowGraph]:
    """Every module's forward_step, then (with ``train``) every train_step; keys order them."""
    tracer = Tracer(check_visibility=False)
    batch = SymbolicBatch(tracer)
    for m in modules:
        if m.has_forward:
            out = tracer.record(m, "forward_step", m.forward_type, [batch])
            batch = out if out is not None else batch
    for m in modules:
        if train and m.trainable:
            tracer.record(m, "train_step", InterfaceType.TRAIN_STEP, [batch])
    return _finish(tracer, dataset_keys, warn, "the modules")


def _finish(tracer: Tracer, dataset_keys, warn: bool, what: str):
    if not tracer.calls:
        raise FlowError(
            f"{what} made no model call; call module.generate / inference / forward_step / "
            "train_step on the batch"
        )
    graph = build_graph(tracer.mfcs, dataset_keys, warn=warn)
    tracer.check()
    return tracer.mfcs, graph
