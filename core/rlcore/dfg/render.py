"""Render a dataflow graph as plain text, a rich tree, mermaid or Graphviz dot."""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING, Any

from rlcore.dfg.errors import DataflowError
from rlcore.dfg.mfc import DATASET

if TYPE_CHECKING:  # annotations only: graph.py imports this module
    from rlcore.dfg.graph import DataflowGraph

FORMATS = ("text", "mermaid", "dot")


def _describe(m) -> str:
    # Parentheses, not brackets: the text is printed through rich, which reads [..] as markup.
    return f"{m.role}.{m.interface_type.value} ({m.interface})"


def _keys(m, which: str) -> str:
    keys = m.input_keys if which == "in" else m.output_keys
    remap = m.input_remap if which == "in" else {v: k for k, v in m.output_remap.items()}
    parts = [f"{k} (as {remap[k]})" if k in remap else k for k in keys]
    return ", ".join(parts) if parts else "-"


def render_text(graph: DataflowGraph) -> str:
    """One block per MFC in execution order; plain text that also prints well under rich."""
    lines = [f"dataset provides: {', '.join(sorted(graph.dataset_keys)) or '-'}", ""]
    for i, m in enumerate(graph.order, 1):
        after = graph.predecessors(m.name)
        lines.append(f"{i}. {m.name}: {_describe(m)}")
        lines.append(f"     in:  {_keys(m, 'in')}")
        if not m.is_train:
            lines.append(f"     out: {_keys(m, 'out')}")
        if after:
            lines.append(f"     after: {', '.join(after)}")
        if m.n_minibatches > 1:
            lines.append(f"     minibatches: {m.n_minibatches}")
        if m.interface_args:
            args = ", ".join(f"{k}={_arg(v)}" for k, v in m.interface_args.items())
            lines.append(f"     args: {args}")
    for w in graph.warnings:
        lines.append(f"warning: {w}")
    return "\n".join(lines)


def _arg(value: Any) -> str:
    """An interface argument; a config section shows as its type (the config holds its values)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return f"<{type(value).__name__}>"
    return repr(value)


def to_rich(graph: DataflowGraph) -> Any:
    """A ``rich.tree.Tree`` of the graph, for ``rich.print`` (imports rich on call)."""
    from rich.markup import escape
    from rich.tree import Tree

    tree = Tree(f"[bold]dataflow[/] (dataset: {escape(', '.join(sorted(graph.dataset_keys)))})")
    for m in graph.order:
        colour = {"generate": "cyan", "inference": "green", "train_step": "magenta"}[
            m.interface_type.value
        ]
        node = tree.add(f"[bold]{escape(m.name)}[/]: [{colour}]{escape(_describe(m))}[/]")
        node.add(f"in: {escape(_keys(m, 'in'))}")
        if not m.is_train:
            node.add(f"out: {escape(_keys(m, 'out'))}")
        after = graph.predecessors(m.name)
        if after:
            node.add(f"after: {escape(', '.join(after))}")
    for w in graph.warnings:
        tree.add(f"[yellow]warning:[/] {escape(w)}")
    return tree


def _ident(name: str) -> str:
    return "n_" + re.sub(r"\W", "_", name)


def render_mermaid(graph: DataflowGraph) -> str:
    """A mermaid ``flowchart`` (paste into a markdown ```mermaid block)."""
    out = ["flowchart TD"]
    if graph.dataset_keys:
        out.append(f'  {_ident(DATASET)}[("{DATASET}")]')
    for m in graph.order:
        label = f"{m.name}<br/>{m.role}.{m.interface_type.value}"
        out.append(f'  {_ident(m.name)}["{label}"]')
    for m in graph.order:
        from_ds = graph.dataset_inputs(m.name)
        if from_ds:
            out.append(f'  {_ident(DATASET)} -->|"{", ".join(from_ds)}"| {_ident(m.name)}')
    for e in graph.edges:
        if e.kind == "data":
            out.append(f'  {_ident(e.src)} -->|"{", ".join(e.keys)}"| {_ident(e.dst)}')
        else:
            out.append(f'  {_ident(e.src)} -.->|"weights"| {_ident(e.dst)}')
    return "\n".join(out)


def _q(s: str) -> str:
    s = s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return '"' + s + '"'


def render_dot(graph: DataflowGraph) -> str:
    """A Graphviz ``digraph`` (``dot -Tsvg``); parameter edges are dashed."""
    out = ["digraph dataflow {", "  rankdir=TB;", "  node [shape=box];"]
    if graph.dataset_keys:
        out.append(f"  {_q(DATASET)} [shape=cylinder];")
    for m in graph.order:
        out.append(f"  {_q(m.name)} [label={_q(m.name + chr(10) + _describe(m))}];")
    for m in graph.order:
        from_ds = graph.dataset_inputs(m.name)
        if from_ds:
            out.append(f"  {_q(DATASET)} -> {_q(m.name)} [label={_q(', '.join(from_ds))}];")
    for e in graph.edges:
        if e.kind == "data":
            out.append(f"  {_q(e.src)} -> {_q(e.dst)} [label={_q(', '.join(e.keys))}];")
        else:
            out.append(f'  {_q(e.src)} -> {_q(e.dst)} [style=dashed, label="weights"];')
    out.append("}")
    return "\n".join(out)


def render(graph: DataflowGraph, fmt: str = "text") -> str:
    """Dispatch on ``fmt`` (one of :data:`FORMATS`)."""
    renderers = {"text": render_text, "mermaid": render_mermaid, "dot": render_dot}
    if fmt not in renderers:
        raise DataflowError(f"unknown graph format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return renderers[fmt](graph)
