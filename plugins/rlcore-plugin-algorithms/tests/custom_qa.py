"""A third-party-style dataset for the dataset-selection tests: questions under a configurable field."""

from __future__ import annotations

from dataclasses import dataclass, field

import rlcore
from rlcore.data.sources import Row
from rlcore.plugins.records import DatasetRecord
from rlcore_plugin_datasets.config import PromptAnswerConfig
from rlcore_plugin_datasets.prompt_answer import PromptAnswerDataset


@dataclass
class QAConfig(PromptAnswerConfig):
    """prompt_answer rows whose prompt is under ``question_field``."""

    question_field: str = field(default="question", metadata={"help": "the prompt's column"})


class QADataset(PromptAnswerDataset):
    """Renames ``question_field`` to ``prompt``, then reads the row as prompt_answer does."""

    def build_sample(self, row: Row):
        values = dict(row.values)
        if self.config.question_field in values:
            values["prompt"] = values.pop(self.config.question_field)
        return super().build_sample(Row(row.ref, values))


class Plugin:
    @rlcore.hookimpl
    def rlcore_datasets(self):
        return [DatasetRecord("my_csv_qa", impl="custom_qa:QADataset", config="custom_qa:QAConfig",
                              doc="Questions and answers from a CSV file.")]
