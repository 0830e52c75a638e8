"""Shared fixtures for the data tests: tokenizers built locally, never downloaded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tok():
    from rlcore.data.embedded import embedded_tokenizer

    return embedded_tokenizer()


@pytest.fixture
def write_jsonl(tmp_path: Path):
    def write(rows, name: str = "data.jsonl") -> str:
        p = tmp_path / name
        p.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
        return str(p)

    return write
