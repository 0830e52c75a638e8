"""Experiments name their dataset (dataset.name, dataset.options) and eval set (eval.name)."""

from __future__ import annotations

import pytest
from custom_qa import Plugin, QAConfig, QADataset

from rlcore.config import resolve
from rlcore.errors import ConfigError, RlcoreError
from rlcore.runtime.experiment import build_experiment
from rlcore_plugin_algorithms.config import SFTConfig


@pytest.fixture
def qa_plugin(rlcore_plugins):
    rlcore_plugins.register(Plugin(), name="custom-qa")
    return rlcore_plugins


def sft(*sets):
    return build_experiment("sft", resolve(SFTConfig, None, list(sets)))


def test_dataset_name_picks_a_registered_dataset_with_its_own_options(qa_plugin, tmp_path):
    data = tmp_path / "qa.csv"
    data.write_text("q,answer\n1+2=,3\n2+2=,4\n")
    exp = sft("dataset.name=my_csv_qa", f"dataset.path={data}", "dataset.options.question_field=q",
              "dataset.max_length=32")
    ds = exp.build_dataset(exp.build_tokenizer())
    assert isinstance(ds, QADataset) and isinstance(ds.config, QAConfig)
    assert ds.config.question_field == "q" and ds.config.max_length == 32
    assert len(ds) == 2


def test_unknown_dataset_option_names_the_key(qa_plugin):
    exp = sft("dataset.name=my_csv_qa", "dataset.options.question_feld=q")
    with pytest.raises(ConfigError, match=r"unknown config key 'dataset.options.question_feld'.*"
                                          r"Did you mean 'dataset.options.question_field'\? Its own settings: "
                                          r"question_field\."):
        exp.build_dataset(exp.build_tokenizer())


def test_an_option_that_repeats_a_shared_key_is_refused(qa_plugin):
    exp = sft("dataset.name=my_csv_qa", "dataset.options.max_length=8")
    with pytest.raises(ConfigError, match="dataset.options.max_length repeats dataset.max_length"):
        exp.build_dataset(exp.build_tokenizer())


def test_unknown_dataset_name_suggests_the_closest(qa_plugin):
    exp = sft("dataset.name=my_csv_q")
    with pytest.raises(RlcoreError, match="my_csv_q.*Did you mean 'my_csv_qa'"):
        exp.build_dataset(exp.build_tokenizer())


def test_eval_set_by_name_and_format(qa_plugin, tmp_path):
    data = tmp_path / "eval.txt"
    data.write_text("prompt,answer\n1+2=,3\n2+2=,4\n5+5=,10\n")
    exp = sft(f"eval.path={data}", "eval.format=csv")
    assert len(exp.eval_prompts) == 3
    assert exp.eval_prompts.metadata["answer"] == ["3", "4", "10"]
