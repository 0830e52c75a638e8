"""A dataset plugin: question/answer prompts for PPO or GRPO, read from a CSV file.

The guide docs/guides/custom-dataset.md walks through it. Run it to see it work:
``python docs/examples/csv_qa.py``.
"""

from __future__ import annotations

import csv
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

import rlcore
from rlcore.plugins.records import DatasetRecord
from rlcore.sdk import (
    DataError,
    DatasetConfig,
    PackedDataset,
    Row,
    RowRef,
    Sample,
    check_str,
    embedded,
    fit_prompt,
    require,
)


# --8<-- [start:config]
@dataclass
class CsvQAConfig(DatasetConfig):
    """Where the CSV's question and answer are (importing a config must not import torch)."""

    question_column: str = field(default="question", metadata={"help": "column of the prompt"})
    answer_column: str = field(default="answer", metadata={"help": "column carried as `answer`"})
    max_length: int = 512
# --8<-- [end:config]


# --8<-- [start:dataset]
class CsvQADataset(PackedDataset):
    """Prompts from a CSV file; each row's answer goes to the batch metadata for rewards."""

    kind: ClassVar[str] = "csv_qa"
    dtypes: ClassVar[dict[str, torch.dtype]] = {"packed_prompts": torch.int64}

    def load_rows(self) -> list[Row]:
        """CSV rows, each with its line number, so errors can name it."""
        path = self.config.path
        if path is None or not str(path).endswith(".csv"):
            return super().load_rows()  # the embedded task, or JSONL/JSON/Parquet files
        rows = []
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            for values in reader:
                present = {k: v for k, v in values.items() if v is not None}  # short lines
                rows.append(Row(RowRef(str(path), reader.line_num), present))
        if not rows:
            raise DataError(f"{path}: no rows under the header; expected at least one")
        return rows[: self.config.max_rows]

    def embedded_rows(self) -> list[dict[str, Any]]:
        """With no path: the embedded addition task, in this dataset's columns."""
        c = self.config
        return [{c.question_column: r["prompt"], c.answer_column: r["answer"]}
                for r in embedded.prompt_rows(c.embedded_size, c.seed, c.embedded_split)]

    def build_sample(self, row: Row) -> list[Sample]:
        c = self.config
        question = check_str(row, c.question_column,
                             require(row, c.question_column, "the question, a string"))
        check_str(row, c.answer_column, require(row, c.answer_column, "the answer, a string"))
        ids = np.asarray(self.tokenizer(question)["input_ids"])
        self.summary.longest = max(self.summary.longest, len(ids))
        fitted, reason = fit_prompt(ids, 0, c, self.tokenizer.bos_token_id)
        if fitted is None:
            self.summary.drop(reason, row.ref)
            return []
        if reason == "truncated":
            self.summary.truncate(row.ref)
        metadata = self.carried(row, [c.question_column])
        metadata["answer"] = metadata.pop(c.answer_column)  # reward functions read `answer`
        return [Sample(f"{row.ref.unit}:{row.ref.number}", {"packed_prompts": [fitted[0]]},
                       metadata)]
# --8<-- [end:dataset]


# --8<-- [start:register]
@rlcore.hookimpl
def rlcore_datasets() -> list[DatasetRecord]:
    """Register ``csv_qa`` (lazily: listing plugins does not import this module's torch code)."""
    return [DatasetRecord("csv_qa", impl="csv_qa:CsvQADataset", config="csv_qa:CsvQAConfig",
                          doc="Question/answer prompts from a CSV file, for PPO and GRPO.")]
# --8<-- [end:register]


def main() -> None:
    """Register the plugin in this process, load a CSV, batch it, and show a bad row's error."""
    import sys

    from rlcore.plugins import registry
    from rlcore.plugins.manager import get_manager
    from rlcore.sdk import BatchIterator

    get_manager().register(sys.modules[__name__], name="csv_qa")
    cls = registry.load("datasets", "csv_qa")
    tokenizer = embedded.embedded_tokenizer()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "qa.csv"
        path.write_text("question,answer,source\n12+30=,42,mine\n7+8=,15,mine\n1+1=,2,mine\n")
        dataset = cls(CsvQAConfig(path=str(path)), tokenizer)
        batch = next(iter(BatchIterator(dataset, batch_size=2, seed=0)))
        print(dataset.summary)
        print("batch keys:", list(batch.data), "metadata:", batch.metadata)
        assert len(dataset) == 3 and set(batch.data) == {"packed_prompts"}
        assert sorted(batch.metadata["answer"]) == sorted(
            dataset[i].metadata["answer"] for i in range(3) if dataset[i].id in batch.ids)

        path.write_text("question,answer\n12+30=,42\n7+8=\n")  # line 3 has no answer
        try:
            cls(CsvQAConfig(path=str(path)), tokenizer)
        except DataError as err:
            print("bad row:", err)
            assert "line 3" in str(err) and "'answer'" in str(err)
        else:
            raise AssertionError("a row without an answer must be refused")

    embedded_set = cls(CsvQAConfig(embedded_size=64), tokenizer)
    print(embedded_set.summary)
    assert len(embedded_set) == 64


if __name__ == "__main__":
    main()
