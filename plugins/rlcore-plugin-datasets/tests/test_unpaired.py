"""The unpaired (KTO) form of the paired dataset: labelled completions with mismatched partners."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlcore.data.embedded import embedded_tokenizer
from rlcore.errors import DataError
from rlcore_plugin_datasets.config import PairedConfig
from rlcore_plugin_datasets.paired import PairedDataset

U = lambda c: {"role": "user", "content": c}  # noqa: E731
A = lambda c: {"role": "assistant", "content": c}  # noqa: E731


@pytest.fixture(scope="module")
def tok():
    return embedded_tokenizer()


def write(tmp_path: Path, rows: list[dict]) -> str:
    p = tmp_path / "data.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(p)


def decoded(tok, ds):
    b = ds.collate(ds.samples)
    seqs = [[tok.decode(s) for s in b.sequences("packed_input_ids", i)] for i in range(len(b))]
    answers = [[tok.decode(s[m]) for s, m in zip(b.sequences("packed_input_ids", i),
                                                   b.sequences("loss_mask", i), strict=True)]
               for i in range(len(b))]
    return b, seqs, answers


def test_labelled_rows_pair_each_prompt_with_the_previous_rows_completion(tmp_path, tok):
    rows = [{"prompt": "1+2=", "completion": "3", "label": True},
            {"prompt": "2+2=", "completion": "5", "label": False},
            {"prompt": [U("3+3=")], "completion": [A("6")], "label": True}]
    ds = PairedDataset(PairedConfig(path=write(tmp_path, rows), unpaired=True), tok)
    b, seqs, answers = decoded(tok, ds)
    assert [s.id for s in ds.samples] == ["line:1", "line:2", "line:3"]
    assert seqs[0] == ["<bos>1+2=3<eos>", "<bos>1+2=6<eos>"]  # the last row's completion
    assert seqs[1] == ["<bos>2+2=5<eos>", "<bos>2+2=3<eos>"]
    assert seqs[2] == ["<bos><|user|>3+3=<|assistant|>6<eos>", "<bos><|user|>3+3=<|assistant|>5<eos>"]
    assert answers[1] == ["5<eos>", "3<eos>"]  # the loss mask covers both completions
    assert b.data["desirable"].tolist() == [True, False, True]


def test_preference_rows_split_into_a_desirable_and_an_undesirable_completion(tmp_path, tok):
    rows = [{"prompt": "1+2=", "chosen": "3", "rejected": "4"},
            {"prompt": "5+5=", "pos_answers": ["10", "10 "], "neg_answers": ["11", "9"]}]
    ds = PairedDataset(PairedConfig(path=write(tmp_path, rows), unpaired=True), tok)
    b, seqs, _ = decoded(tok, ds)
    assert [s.id for s in ds.samples] == ["line:1/chosen", "line:1/rejected", "line:2/0/chosen",
                                          "line:2/0/rejected", "line:2/1/chosen",
                                          "line:2/1/rejected"]
    assert b.data["desirable"].tolist() == [True, False] * 3
    # never the same prompt's other answer: row 1 borrows row 2's completions, row 2 row 1's
    assert seqs[0][1] == "<bos>1+2=10<eos>" and seqs[1][1] == "<bos>1+2=11<eos>"
    assert [s[1] for s in seqs[2:]] == ["<bos>5+5=3<eos>", "<bos>5+5=4<eos>"] * 2


def test_a_mismatched_completion_is_cut_to_fit_max_length(tmp_path, tok):
    rows = [{"prompt": "1+2=", "completion": "3", "label": True},
            {"prompt": "2+2=", "completion": "4444444", "label": False}]
    ds = PairedDataset(PairedConfig(path=write(tmp_path, rows), unpaired=True, max_length=7), tok)
    b, seqs, _ = decoded(tok, ds)
    assert seqs[0] == ["<bos>1+2=3<eos>", "<bos>1+2=44"]
    assert all(n <= 7 for n in b.flat_seqlens("packed_input_ids"))


@pytest.mark.parametrize("row, message", [
    ({"prompt": "1+2=", "completion": "3", "label": "yes"},
     "line 2, field 'label': expected true (desirable) or false (undesirable), got str ('yes')"),
    ({"prompt": "1+2=", "completion": "3"}, "line 2, field 'label': missing; unpaired rows are"),
    ({"prompt": "1+2=", "label": False}, "line 2, field 'completion': missing"),
    ({"prompt": "1+2=", "completion": 3, "label": False},
     "line 2, field 'completion': expected a string"),
    ({"prompt": [U("1+2=")], "completion": [U("3")], "label": False},
     "line 2, field 'completion[0].role': expected an assistant message"),
])
def test_bad_unpaired_rows_name_file_line_and_field(tmp_path, tok, row, message):
    path = write(tmp_path, [{"prompt": "1+1=", "completion": "2", "label": True}, row])
    with pytest.raises(DataError, match="data.jsonl") as err:
        PairedDataset(PairedConfig(path=path, unpaired=True), tok)
    assert message in str(err.value)


def test_labelled_rows_without_unpaired_say_which_loss_reads_them(tmp_path, tok):
    path = write(tmp_path, [{"prompt": "1+1=", "completion": "2", "label": True}])
    with pytest.raises(DataError, match=r"line 1, field 'completion': .*dpo.loss_type=kto"):
        PairedDataset(PairedConfig(path=path), tok)


def test_split_pairs_finds_both_halves_or_none():
    from rlcore_plugin_datasets.unpaired import split_pairs

    ids = ["line:2/rejected", "line:1/chosen", "line:2/chosen", "line:1/rejected"]
    assert split_pairs(ids) == ([1, 2], [3, 0])
    assert split_pairs(["line:1/chosen", "line:2"]) is None  # a labelled completion
    assert split_pairs(["line:1/chosen", "line:2/rejected"]) is None  # halves of other pairs
