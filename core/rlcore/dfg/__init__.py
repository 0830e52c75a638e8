"""Dataflow graphs of model function calls (MFCs): definition, validation, rendering.

Torch-free: ``rlcore show`` imports this without loading any model code.
"""

from rlcore.dfg.errors import (
    CycleError,
    DataflowError,
    DuplicateMFCError,
    DuplicateProducerError,
    MFCDefinitionError,
    MissingInputError,
    UnusedOutputWarning,
)
from rlcore.dfg.graph import DataflowGraph, Edge, build_graph
from rlcore.dfg.mfc import MFC, InterfaceType
from rlcore.dfg.render import render, render_dot, render_mermaid, render_text, to_rich

__all__ = [
    "MFC",
    "CycleError",
    "DataflowError",
    "DataflowGraph",
    "DuplicateMFCError",
    "DuplicateProducerError",
    "Edge",
    "InterfaceType",
    "MFCDefinitionError",
    "MissingInputError",
    "UnusedOutputWarning",
    "build_graph",
    "render",
    "render_dot",
    "render_mermaid",
    "render_text",
    "to_rich",
]
