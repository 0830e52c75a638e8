"""File readers: CSV and HF datasets folders built in, a plugin's reader by name, clear errors."""

from __future__ import annotations

import builtins
import json
import re

import pytest

from rlcore.data.readers import Reader, read_source, readers, register_reader
from rlcore.data.sources import Row, RowRef
from rlcore.errors import DataError
from rlcore_plugin_datasets.config import PromptAnswerConfig
from rlcore_plugin_datasets.prompt_answer import PromptAnswerDataset


def test_csv_rows_with_quotes_bom_and_line_numbers(tmp_path):
    p = tmp_path / "qa.csv"
    p.write_bytes('\ufeffprompt,answer\n"1+2=","3"\n\n"say ""hi"", then 2+2=",4\n'.encode())
    rows = read_source(p)
    assert [r.values for r in rows] == [{"prompt": "1+2=", "answer": "3"},
                                        {"prompt": 'say "hi", then 2+2=', "answer": "4"}]
    assert [str(r.ref) for r in rows] == [f"{p} line 2", f"{p} line 4"]


def test_csv_trains_an_sft_dataset_and_bad_cells_name_the_line(tmp_path, tok):
    p = tmp_path / "qa.csv"
    p.write_text("prompt,answer\n1+2=,3\n2+2=,\n")
    with pytest.raises(DataError, match=rf"{p} line 3, field 'answer': expected a non-empty"):
        PromptAnswerDataset(PromptAnswerConfig(path=str(p)), tok)
    p.write_text("prompt,answer\n1+2=,3\n2+2=,4\n")
    ds = PromptAnswerDataset(PromptAnswerConfig(path=str(p)), tok)
    assert len(ds) == 2 and ds[1].id == "line:3"


@pytest.mark.parametrize("text, message", [
    ("", "the file is empty; expected a header row"),
    ("prompt,,answer\n", "line 1: the header has an empty column name (column 2)"),
    ("prompt,prompt\n", "line 1: the header repeats column 'prompt'"),
    ("prompt,answer\n1+2=,3\n1,2,3\n", "line 3: has 3 fields, the header has 2"),
])
def test_csv_errors(tmp_path, text, message):
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(DataError, match=re.escape(message)):
        read_source(p)


def test_unknown_suffix_and_format_list_the_readers(tmp_path):
    p = tmp_path / "data.tsv"
    p.write_text("a\tb\n")
    with pytest.raises(DataError, match=r"unsupported file type '.tsv'; expected one of .csv, "
                                        r".json, .jsonl, .parquet"):
        read_source(p)
    with pytest.raises(DataError, match=r"dataset.format 'cvs' is not a registered file reader. "
                                        r"Did you mean 'csv'\?"):
        read_source(p, "cvs")
    (tmp_path / "folder").mkdir()
    with pytest.raises(DataError, match="is a folder that no file reader recognises"):
        read_source(tmp_path / "folder")


def test_a_plugin_reader_by_format_and_suffix(tmp_path, tok):
    def read_tsv(path, config):
        lines = path.read_text().splitlines()
        names = lines[0].split("\t")
        return [Row(RowRef(str(path), n, "line"), dict(zip(names, line.split("\t"), strict=True)))
                for n, line in enumerate(lines[1:], start=2)]

    p = tmp_path / "qa.tsv"
    p.write_text("prompt\tanswer\n1+2=\t3\n")
    register_reader(Reader("tsv_test", read_tsv, (".tsv",), doc="tab-separated"))
    try:
        assert "tsv_test" in readers()
        ds = PromptAnswerDataset(PromptAnswerConfig(path=str(p)), tok)
        assert ds.summary.rows == 1
        renamed = tmp_path / "qa.txt"
        renamed.write_text(p.read_text())
        ds = PromptAnswerDataset(PromptAnswerConfig(path=str(renamed), format="tsv_test"), tok)
        assert ds.summary.rows == 1
        with pytest.raises(DataError, match="claims \\['.tsv'\\], which reader 'tsv_test' reads"):
            register_reader(Reader("other", read_tsv, (".tsv",)))
    finally:
        from rlcore.data import readers as module

        module._READERS.pop("tsv_test")


def test_hf_datasets_folder(tmp_path, tok):
    datasets = pytest.importorskip("datasets")
    folder = tmp_path / "hf"
    datasets.Dataset.from_list([{"prompt": "1+2=", "answer": 3},
                                {"prompt": "2+2=", "answer": 4}]).save_to_disk(str(folder))
    with pytest.raises(DataError, match=rf"{folder} row 1, field 'answer': expected a string"):
        PromptAnswerDataset(PromptAnswerConfig(path=str(folder)), tok)
    good = tmp_path / "good"
    datasets.Dataset.from_list([{"prompt": "1+2=", "answer": "3"}]).save_to_disk(str(good))
    assert len(PromptAnswerDataset(PromptAnswerConfig(path=str(good)), tok)) == 1
    split = tmp_path / "dict"
    datasets.DatasetDict({"train": datasets.Dataset.from_list([{"prompt": "a"}])}).save_to_disk(
        str(split))
    with pytest.raises(DataError, match=r"holds a DatasetDict with splits \['train'\]; point "
                                        rf"'path' at one split's folder, e.g. {split}/train"):
        read_source(split)


def test_hf_folder_without_datasets_names_the_package(tmp_path, monkeypatch):
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / "state.json").write_text(json.dumps({"_data_files": []}))
    real_import = builtins.__import__

    def no_datasets(name, *args, **kwargs):
        if name == "datasets":
            raise ImportError("No module named 'datasets'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_datasets)
    with pytest.raises(DataError, match=r"needs the 'datasets' package; install it with "
                                        r"`pip install datasets`"):
        read_source(folder)
