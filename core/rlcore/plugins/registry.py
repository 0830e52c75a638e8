"""Lookups over everything the installed plugins register, by kind and name."""

from __future__ import annotations

from typing import Any

from rlcore.plugins.manager import get_manager
from rlcore.plugins.records import ModelFamilyRecord, Record, load_object


def get(kind: str, name: str) -> Record:
    """The record called ``name`` of ``kind``; unknown names suggest close matches."""
    return get_manager().entry(kind, name).record


def load(kind: str, name: str) -> Any:
    """Import and return the implementation of ``name``."""
    return get(kind, name).load()


def resolve_impl(kind: str, ref: Any) -> Any:
    """``ref`` itself, the object a ``"module:attr"`` string names, or registered item ``ref``."""
    if not isinstance(ref, str):
        return ref
    return load_object(ref) if ":" in ref else load(kind, ref)


def provider(kind: str, name: str) -> str:
    """Which distribution (and version) registers ``name``."""
    return get_manager().entry(kind, name).plugin.origin


def items(kind: str) -> dict[str, Record]:
    """Every usable record of ``kind`` (conflicts left out), by name, sorted."""
    manager = get_manager()
    winners = {name: manager.winner(kind, name) for name in manager.registries[kind]}
    return {name: winners[name].record for name in sorted(winners) if winners[name] is not None}


def listing(kind: str) -> list[tuple[str, Record, str, str]]:
    """``(name, record, provider, note)`` for every registration of ``kind``, sorted by name;
    the note says ``conflict`` or ``overridden`` where more than one plugin registers a name."""
    manager = get_manager()
    rows = []
    for name in sorted(manager.registries[kind]):
        winner = manager.winner(kind, name)
        for entry in manager.registries[kind][name]:
            note = "" if entry is winner else "overridden" if winner else "conflict"
            rows.append((name, entry.record, entry.plugin.origin, note))
    return rows


def family_for_model_type(model_type: str) -> ModelFamilyRecord:
    """The family whose ``hf_model_types`` include ``model_type`` (from config.json)."""
    from rlcore.plugins.lookup import unknown_item_error

    families = items("families")
    for record in families.values():
        if model_type in record.hf_model_types:
            return record  # type: ignore[return-value]
    known = sorted({t for r in families.values() for t in r.hf_model_types})  # type: ignore[attr-defined]
    raise unknown_item_error("model family for model_type", model_type, known)


def hooks() -> Any:
    """The pluggy hook relay, for lifecycle hooks: ``hooks().rlcore_step_end(...)``."""
    return get_manager().pm.hook
