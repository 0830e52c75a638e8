"""Fields every dataset config shares. Plain dataclasses: importing this never imports torch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

TRUNCATION_POLICIES = ("truncate_prompt_left", "drop")


@dataclass
class DatasetConfig:
    """Where the rows come from, how long a sample may be, and how to shuffle.

    ``path=None`` uses the embedded addition task (``rlcore.data.embedded``).
    """

    # A local .jsonl, .json or .parquet file; None → the embedded task.
    path: str | None = None
    # For a .json file holding an object: the key of the list of rows.
    json_field: str | None = None
    # Longest prompt in tokens (None: only max_length applies).
    max_prompt_length: int | None = None
    # Longest full sequence (prompt + answer) in tokens.
    max_length: int = 1024
    # Too long: cut the prompt from the left, or drop the row.
    truncation: Literal["truncate_prompt_left", "drop"] = "truncate_prompt_left"
    # Row fields carried to batch metadata (None: every field the dataset does not consume).
    carry_fields: list[str] | None = None
    # Keep only the first N rows (None: all).
    max_rows: int | None = None
    # Shuffling of the batch iterator.
    shuffle: bool = True
    seed: int = 1
    # The embedded task: how many rows, which split, operands up to this value.
    embedded_size: int = 4096
    embedded_split: Literal["train", "eval"] = "train"
    embedded_max_operand: int = 99

    def check(self) -> None:
        """Raise ConfigError on values that cannot work."""
        from rlcore.errors import ConfigError

        if self.truncation not in TRUNCATION_POLICIES:
            raise ConfigError(
                f"truncation: expected one of {', '.join(TRUNCATION_POLICIES)}, "
                f"got {self.truncation!r}"
            )
        if self.max_length < 2:
            raise ConfigError(f"max_length: expected at least 2 tokens, got {self.max_length}")
        if self.max_prompt_length is not None and self.max_prompt_length < 1:
            raise ConfigError(
                f"max_prompt_length: expected at least 1 token or null, got {self.max_prompt_length}"
            )
        if self.max_rows is not None and self.max_rows < 1:
            raise ConfigError(f"max_rows: expected at least 1 or null, got {self.max_rows}")
        if self.embedded_size < 1:
            raise ConfigError(f"embedded_size: expected at least 1, got {self.embedded_size}")
        if self.embedded_split not in ("train", "eval"):
            raise ConfigError(f"embedded_split: expected 'train' or 'eval', got "
                              f"{self.embedded_split!r}")
