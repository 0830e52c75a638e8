"""The dataset-plugin recipe of docs/data.md works as written."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from rlcore.data.config import DatasetConfig
from rlcore.data.dataset import PackedDataset, Sample, fit_prompt
from rlcore.data.loader import BatchIterator
from rlcore.data.sources import check_str, require
from rlcore.errors import DataError


@dataclass
class QAConfig(DatasetConfig):
    question_field: str = "question"


class QADataset(PackedDataset):
    kind = "qa"
    dtypes = {"packed_prompts": torch.int64}

    def build_sample(self, row):
        text = check_str(row, self.config.question_field,
                         require(row, self.config.question_field, "a string"))
        ids = np.asarray(self.tokenizer(text)["input_ids"])
        fitted, reason = fit_prompt(ids, 0, self.config, self.tokenizer.bos_token_id)
        if fitted is None:
            self.summary.drop(reason, row.ref)
            return []
        return [Sample(f"{row.ref.unit}:{row.ref.number}", {"packed_prompts": [fitted[0]]},
                       self.carried(row, [self.config.question_field]))]


def test_custom_dataset_recipe(write_jsonl, tok):
    path = write_jsonl([{"question": "1+1=", "id": 7}, {"question": "2+2=", "id": 8}])
    ds = QADataset(QAConfig(path=path), tok)
    batches = list(BatchIterator(ds, batch_size=2, shuffle=False))
    assert batches[0].metadata == {"id": [7, 8]}
    assert batches[0].seqlens["packed_prompts"] == [[5], [5]]
    with pytest.raises(DataError, match=r"line 1, field 'question': missing; expected a string"):
        QADataset(QAConfig(path=write_jsonl([{"q": "x"}], name="b.jsonl")), tok)
    with pytest.raises(NotImplementedError, match="no embedded task"):
        QADataset(QAConfig(), tok)
