"""MFC: one model function call, a node of the dataflow graph (ReaL's MFCDef)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from rlcore.dfg.errors import MFCDefinitionError

DATASET = "dataset"  # the source of every key that no MFC produces (a node when rendered)


class InterfaceType(StrEnum):
    """What a call does to its model: sample, score, or update the weights."""

    GENERATE = "generate"
    INFERENCE = "inference"
    TRAIN_STEP = "train_step"


def _as_tuple(keys: Any, what: str, mfc: str) -> tuple[str, ...]:
    if isinstance(keys, str):
        keys = (keys,)
    out = tuple(keys)
    for k in out:
        if not isinstance(k, str) or not k:
            raise MFCDefinitionError(f"MFC {mfc!r}: {what} must be non-empty strings, got {k!r}")
    if len(set(out)) != len(out):
        dup = sorted({k for k in out if out.count(k) > 1})
        raise MFCDefinitionError(f"MFC {mfc!r}: {what} list {dup} more than once")
    return out


@dataclass(frozen=True)
class MFC:
    """A model function call: ``role``'s model runs ``interface_type`` through ``interface``.

    Keys live in the graph's namespace. ``input_remap`` renames a graph key to the
    name the interface expects (``{"packed_ref_input": "packed_input_ids"}``);
    ``output_remap`` renames what the interface returns to a graph key
    (``{"logprobs": "packed_ref_logprobs"}``). ``n_minibatches`` splits this call's
    data by tokens into that many pieces, each handed to the interface in turn.
    """

    name: str
    role: str
    interface_type: InterfaceType | str
    interface: str
    input_keys: tuple[str, ...] = ()
    output_keys: tuple[str, ...] = ()
    interface_args: Mapping[str, Any] = field(default_factory=dict)
    input_remap: Mapping[str, str] = field(default_factory=dict)
    output_remap: Mapping[str, str] = field(default_factory=dict)
    n_minibatches: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise MFCDefinitionError(f"an MFC needs a non-empty name, got {self.name!r}")
        if not isinstance(self.role, str) or not self.role:
            raise MFCDefinitionError(f"MFC {self.name!r}: role must be a non-empty string")
        try:
            itype = InterfaceType(str(self.interface_type))
        except ValueError:
            valid = ", ".join(t.value for t in InterfaceType)
            raise MFCDefinitionError(
                f"MFC {self.name!r}: interface_type {self.interface_type!r} is not one of {valid}"
            ) from None
        object.__setattr__(self, "interface_type", itype)
        if not isinstance(self.interface, str) or not self.interface:
            raise MFCDefinitionError(
                f"MFC {self.name!r}: interface must name a registered interface "
                "(or 'module:Class')"
            )
        object.__setattr__(self, "input_keys", _as_tuple(self.input_keys, "input_keys", self.name))
        object.__setattr__(
            self, "output_keys", _as_tuple(self.output_keys, "output_keys", self.name)
        )
        object.__setattr__(self, "interface_args", dict(self.interface_args))
        object.__setattr__(self, "input_remap", dict(self.input_remap))
        object.__setattr__(self, "output_remap", dict(self.output_remap))
        if not isinstance(self.n_minibatches, int) or self.n_minibatches < 1:
            raise MFCDefinitionError(
                f"MFC {self.name!r}: n_minibatches must be an integer >= 1, "
                f"got {self.n_minibatches!r}"
            )
        stray = sorted(set(self.input_remap) - set(self.input_keys))
        if stray:
            raise MFCDefinitionError(
                f"MFC {self.name!r}: input_remap renames {stray}, which are not among its "
                f"input_keys {list(self.input_keys)}"
            )
        stray = sorted(set(self.output_remap.values()) - set(self.output_keys))
        if stray:
            raise MFCDefinitionError(
                f"MFC {self.name!r}: output_remap maps onto {stray}, which are not among its "
                f"output_keys {list(self.output_keys)}"
            )
        if itype is InterfaceType.TRAIN_STEP and self.output_keys:
            raise MFCDefinitionError(
                f"MFC {self.name!r}: a train_step returns metrics, not data; drop its "
                f"output_keys {list(self.output_keys)}"
            )
        targets = [self.input_remap.get(k, k) for k in self.input_keys]
        if len(set(targets)) != len(targets):
            raise MFCDefinitionError(
                f"MFC {self.name!r}: input_remap {self.input_remap} gives the interface "
                f"duplicate keys {targets}"
            )

    @property
    def interface_output_keys(self) -> dict[str, str]:
        """Interface output name -> graph key, for every declared output."""
        back = {graph: iface for iface, graph in self.output_remap.items()}
        return {back.get(k, k): k for k in self.output_keys}

    @property
    def is_train(self) -> bool:
        return self.interface_type is InterfaceType.TRAIN_STEP
