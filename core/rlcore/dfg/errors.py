"""Errors and warnings of dataflow-graph definition and validation."""

from __future__ import annotations

from rlcore.errors import RlcoreError


class DataflowError(RlcoreError):
    """A dataflow graph is invalid; the message names the MFCs and keys involved."""


class MFCDefinitionError(DataflowError):
    """One MFC is malformed (bad type, remap of an undeclared key, ...)."""


class DuplicateMFCError(DataflowError):
    """Two MFCs share a name."""


class CycleError(DataflowError):
    """The MFCs depend on each other in a loop."""


class MissingInputError(DataflowError):
    """An MFC reads a key that no MFC produces and the dataset does not provide."""


class DuplicateProducerError(DataflowError):
    """A key is produced by two MFCs, or by an MFC and the dataset."""


class UnusedOutputWarning(UserWarning):
    """An MFC produces a key that nothing reads."""
