"""Conformance suite for dataset plugins: schema, iteration, resume and bad input.

Signature: subclass :class:`DatasetConformance` and set ``dataset`` (a registered
name or the class), ``rows`` (good rows) and ``bad_rows``::

    from rlcore.testing.datasets import DatasetConformance

    class TestQA(DatasetConformance):
        dataset = "qa"                                  # or QADataset
        rows = [{"question": f"{i}+1="} for i in range(8)]
        bad_rows = {"no question": ({"q": "x"}, "question")}   # row, text the error names
        options = {"question_field": "question"}        # fields of the dataset's own config

The rows are written to a ``.jsonl`` file; every test builds the dataset from it with
the embedded tokenizer (override ``make_tokenizer`` for another one).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pytest

from rlcore.errors import DataError


class DatasetConformance:
    """Base of a dataset's conformance tests; set ``dataset``, ``rows`` and ``bad_rows``."""

    dataset: ClassVar[str | type | None] = None
    rows: ClassVar[list[dict[str, Any]]] = []
    bad_rows: ClassVar[dict[str, tuple[dict[str, Any], str]]] = {}
    options: ClassVar[dict[str, Any]] = {}
    batch_size: ClassVar[int] = 2

    # ------------------------------------------------------------------ helpers

    def make_tokenizer(self) -> Any:
        """The tokenizer every test uses (default: the embedded one)."""
        from rlcore.data.embedded import embedded_tokenizer

        return embedded_tokenizer()

    def dataset_class(self) -> type:
        if self.dataset is None:
            pytest.fail(f"{type(self).__name__} must set `dataset` (a registered name or class)")
        from rlcore.plugins.registry import resolve_impl

        return resolve_impl("datasets", self.dataset)

    def config_class(self) -> type:
        """The registered config class, else the constructor's annotation, else DatasetConfig."""
        if isinstance(self.dataset, str):
            from rlcore.plugins import registry
            from rlcore.plugins.records import load_object

            record = registry.get("datasets", self.dataset)
            if record.config is not None:
                return load_object(record.config)
        import typing

        hints = typing.get_type_hints(self.dataset_class().__init__)
        cfg = hints.get("config")
        if isinstance(cfg, type):
            return cfg
        from rlcore.data.config import DatasetConfig

        return DatasetConfig

    def write(self, path: Path, rows: list[Any]) -> Path:
        """``rows`` as a JSONL file (strings are written as raw lines)."""
        path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
        return path

    def build(self, path: Path | None, **fields: Any) -> Any:
        """The dataset over ``path`` with ``options`` and ``fields`` set on its config."""
        config = self.config_class()(path=None if path is None else str(path),
                                     **{**self.options, **fields})
        return self.dataset_class()(config, self.make_tokenizer())

    @pytest.fixture
    def data_file(self, tmp_path: Path) -> Path:
        if not self.rows:
            pytest.fail(f"{type(self).__name__} must set `rows` (good rows, as dicts)")
        return self.write(tmp_path / "rows.jsonl", self.rows)

    # ------------------------------------------------------------------ the tests

    def test_schema(self, data_file):
        """Every sample holds the keys of ``dtypes``; a batch of them validates with those dtypes."""
        ds = self.build(data_file)
        assert len(ds) >= 1, "no sample from the good rows"
        assert ds.dtypes, f"{type(ds).__name__}.dtypes is empty; name the dtype of every key"
        ids = [ds[i].id for i in range(len(ds))]
        assert len(set(ids)) == len(ids), "sample ids repeat; ids must be unique"
        for i in range(len(ds)):
            missing = set(ds.dtypes) - set(ds[i].sequences)
            assert not missing, f"sample {ds[i].id} lacks keys {sorted(missing)} of dtypes"
        batch = ds.collate([ds[i] for i in range(len(ds))])
        batch.validate()
        for key, dtype in ds.dtypes.items():
            assert batch.data[key].dtype == dtype, f"{key}: {batch.data[key].dtype} != {dtype}"
        assert list(batch.ids) == ids

    def test_iteration_visits_every_sample_once_per_epoch(self, data_file):
        """Two epochs of batches: each sample once per epoch, the same order for the same seed."""
        from rlcore.data.loader import BatchIterator

        ds = self.build(data_file)
        seen = [list(b.ids) for b in BatchIterator(ds, batch_size=self.batch_size, epochs=2)]
        flat = [i for b in seen for i in b]
        assert sorted(flat) == sorted([ds[i].id for i in range(len(ds))] * 2)
        again = [list(b.ids) for b in BatchIterator(ds, batch_size=self.batch_size, epochs=2)]
        assert again == seen, "the batch order is not reproducible under the same seed"

    def test_resume_continues_with_the_next_batch(self, data_file):
        """state_dict() after one batch, loaded in a fresh iterator, yields the remaining ones."""
        from rlcore.data.loader import BatchIterator

        ds = self.build(data_file)
        it = BatchIterator(ds, batch_size=self.batch_size, epochs=2)
        stream = iter(it)
        next(stream)
        state = json.loads(json.dumps(it.state_dict()))  # what a checkpoint stores
        rest = [list(b.ids) for b in stream]
        fresh = BatchIterator(self.build(data_file), batch_size=self.batch_size, epochs=2)
        fresh.load_state_dict(state)
        assert [list(b.ids) for b in fresh] == rest

    def test_max_rows(self, data_file):
        """``max_rows=1`` keeps the first row only."""
        ds = self.build(data_file, max_rows=1)
        assert ds.summary.rows == 1

    def test_missing_and_empty_files_are_data_errors(self, tmp_path):
        """A missing or empty file raises DataError naming the path."""
        for path in (tmp_path / "missing.jsonl", self.write(tmp_path / "empty.jsonl", [])):
            with pytest.raises(DataError) as info:
                self.build(path)
            assert str(path) in str(info.value)

    def test_bad_rows_name_file_line_and_field(self, tmp_path):
        """Each bad row, after the good ones, raises DataError naming the file, line and text."""
        if not self.bad_rows:
            pytest.skip("no bad_rows declared")
        for label, (row, expected) in self.bad_rows.items():
            path = self.write(tmp_path / f"bad-{len(label)}.jsonl", [*self.rows, row])
            with pytest.raises(DataError) as info:
                self.build(path)
            message = str(info.value)
            where = f"{path} line {len(self.rows) + 1}"
            assert where in message, f"{label}: the error does not say {where!r}: {message}"
            assert expected in message, f"{label}: the error does not name {expected!r}: {message}"
