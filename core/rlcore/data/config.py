"""Fields every dataset config shares. Plain dataclasses: importing this never imports torch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

TRUNCATION_POLICIES = ("truncate_prompt_left", "drop")


@dataclass
class DatasetConfig:
    """Where the rows come from, how long a sample may be, and how to shuffle.

    ``path=None`` uses the embedded addition task (``rlcore.data.embedded``), generated
    from ``seed``. The batch order is the run's to decide (``run.seed``), not the dataset's.
    ``name`` picks a registered dataset instead of the experiment's own, ``options`` sets the
    fields its config adds, and ``format`` names the file reader (``rlcore.data.readers``).
    """

    name: str | None = field(default=None, metadata={
        "help": "registered dataset (`rlcore list datasets`); null: the experiment's own"})
    options: dict[str, Any] = field(default_factory=dict, metadata={
        "help": "settings the named dataset's config adds, e.g. {question_field: q}"})
    path: str | None = field(default=None, metadata={
        "help": "local .jsonl, .json, .parquet or .csv file, or a datasets save_to_disk "
                "folder; null: the embedded task"})
    format: str | None = field(default=None, metadata={
        "help": "file reader (jsonl, json, parquet, csv, hf_disk or a plugin's); "
                "null: from the suffix or folder"})
    json_field: str | None = field(default=None, metadata={
        "help": "for a .json file holding an object: the key of the list of rows"})
    max_prompt_length: int | None = field(default=None, metadata={
        "help": "longest prompt in tokens; null: only max_length applies", "range": "[1, inf)"})
    max_length: int = field(default=1024, metadata={
        "help": "longest sequence (prompt + answer) in tokens", "range": "[2, inf)"})
    truncation: Literal["truncate_prompt_left", "drop"] = field(
        default="truncate_prompt_left", metadata={"help": "too long: cut the prompt from the left, or drop the row"})
    carry_fields: list[str] | None = field(default=None, metadata={
        "help": "row fields carried to batch metadata; null: every field not consumed"})
    max_rows: int | None = field(default=None, metadata={
        "help": "keep only the first N rows; null: all", "range": "[1, inf)"})
    shuffle: bool = field(default=True, metadata={"help": "shuffle the batch order (under run.seed)"})
    seed: int = field(default=1, metadata={
        "help": "embedded task: seed of the generated rows (run.seed orders the batches)",
        "range": "[0, inf)"})
    embedded_size: int = field(default=4096, metadata={
        "help": "embedded task: rows generated", "range": "[1, inf)"})
    embedded_split: Literal["train", "eval"] = field(default="train", metadata={
        "help": "embedded task: split (eval problems never occur in train)"})
    embedded_max_operand: int = field(default=99, metadata={
        "help": "embedded task: largest operand", "range": "[1, inf)"})

    def check(self) -> None:
        """Raise ConfigError on values that cannot work (also for configs built in code)."""
        from rlcore.config.ranges import check_ranges
        from rlcore.errors import ConfigError

        if self.truncation not in TRUNCATION_POLICIES:
            raise ConfigError(
                f"truncation: expected one of {', '.join(TRUNCATION_POLICIES)}, "
                f"got {self.truncation!r}"
            )
        if self.embedded_split not in ("train", "eval"):
            raise ConfigError(f"embedded_split: expected 'train' or 'eval', got "
                              f"{self.embedded_split!r}")
        check_ranges(self, default_source="the dataset config")
