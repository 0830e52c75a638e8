"""Bad user data gives a DataError naming the file, the line, the field and the expectation."""

from __future__ import annotations

import json

import pytest

from rlcore.data.sources import read_rows
from rlcore.errors import DataError, RlcoreError
from rlcore_plugin_datasets.config import PairedConfig, PromptAnswerConfig, PromptConfig
from rlcore_plugin_datasets.paired import PairedDataset
from rlcore_plugin_datasets.prompt import PromptDataset
from rlcore_plugin_datasets.prompt_answer import PromptAnswerDataset

GOOD = {"prompt": "1+2=", "answer": "3"}


def sft(path, tok, **kw):
    return PromptAnswerDataset(PromptAnswerConfig(path=path, **kw), tok)


def test_malformed_json_line(write_jsonl, tok):
    path = write_jsonl([GOOD, GOOD, '{"prompt": "1+1=", "answer": }'])
    with pytest.raises(DataError) as e:
        sft(path, tok)
    msg = str(e.value)
    assert msg.startswith(f"{path} line 3: malformed JSON at column")
    assert "expected one JSON object per line" in msg


def test_json_line_that_is_not_an_object(write_jsonl, tok):
    path = write_jsonl([GOOD, "[1, 2]"])
    with pytest.raises(DataError, match=r"line 2: expected a JSON object, got a list"):
        sft(path, tok)


def test_missing_key(write_jsonl, tok):
    path = write_jsonl([GOOD, {"prompt": "1+1="}])
    with pytest.raises(DataError) as e:
        sft(path, tok)
    assert str(e.value).startswith(f"{path} line 2, field 'answer': missing; expected 'answer' "
                                   "or 'completion'")
    assert "The row has keys ['prompt']" in str(e.value)


def test_missing_prompt_names_the_accepted_forms(write_jsonl, tok):
    path = write_jsonl([{"question": "1+1=", "answer": "2"}])
    with pytest.raises(DataError, match=r"line 1, field 'prompt': missing; expected one of the "
                                        r"forms \{\"prompt\", \"answer\"\}"):
        sft(path, tok)


def test_wrong_type(write_jsonl, tok):
    path = write_jsonl([GOOD, GOOD, GOOD, {"prompt": "1+1=", "answer": 2}])
    with pytest.raises(DataError) as e:
        sft(path, tok)
    assert str(e.value) == f"{path} line 4, field 'answer': expected a string, got an integer (2)"


def test_wrong_type_in_messages(write_jsonl, tok):
    path = write_jsonl([{"messages": [{"role": "user", "content": "hi"},
                                      {"role": "assistant", "content": ["x"]}]}])
    with pytest.raises(DataError, match=r"line 1, field 'messages\[1\].content': expected a "
                                        r"string, got a list"):
        sft(path, tok)
    path = write_jsonl([{"messages": [{"role": "bot", "content": "hi"}]}], name="b.jsonl")
    with pytest.raises(DataError, match=r"field 'messages\[0\].role': expected one of system, "
                                        r"user, assistant, tool, got 'bot'"):
        sft(path, tok)


def test_wrong_type_in_pairs_and_prompts(write_jsonl, tok):
    path = write_jsonl([{"prompt": "a", "pos_answers": ["x", "y"], "neg_answers": ["z"]}])
    with pytest.raises(DataError, match=r"line 1, field 'neg_answers': expected as many "
                                        r"neg_answers as pos_answers"):
        PairedDataset(PairedConfig(path=path), tok)
    path = write_jsonl([{"prompt": 5}], name="p.jsonl")
    with pytest.raises(DataError, match=r"p.jsonl line 1, field 'prompt': expected a string, "
                                        r"got an integer \(5\)"):
        PromptDataset(PromptConfig(path=path), tok)


@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_empty_jsonl(tmp_path, tok, content):
    p = tmp_path / "empty.jsonl"
    p.write_text(content)
    with pytest.raises(DataError, match=rf"{p}: the file (is empty|holds no rows); expected at "
                                        "least one row"):
        sft(str(p), tok)


def test_empty_json_and_parquet(tmp_path, tok):
    p = tmp_path / "empty.json"
    p.write_text("[]")
    with pytest.raises(DataError, match="holds no rows"):
        sft(str(p), tok)
    import pyarrow as pa
    import pyarrow.parquet as pq

    q = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"prompt": pa.array([], pa.string()),
                             "answer": pa.array([], pa.string())}), q)
    with pytest.raises(DataError, match=rf"{q}: the file holds no rows"):
        sft(str(q), tok)


def test_all_rows_too_long(write_jsonl, tok):
    path = write_jsonl([{"prompt": "1+2=", "answer": "3" * 30}, {"prompt": "1=", "answer": "4" * 40}])
    with pytest.raises(DataError) as e:
        sft(path, tok, max_length=16)
    msg = str(e.value)
    assert msg.startswith(f"{path}: all 2 rows are too long and were dropped: answer alone "
                          "reaches max_length=16 (e.g. line 1, line 2)")
    assert "The longest sequence has 44 tokens. Raise max_length (now 16)" in msg


def test_all_rows_too_long_under_drop_policy(write_jsonl, tok):
    path = write_jsonl([{"prompt": "123456789+1=", "answer": "3"}] * 2)
    with pytest.raises(DataError, match=r"all 2 rows are too long and were dropped: longer than "
                                        r"max_length=8 \(e.g. line 1, line 2\).*or set "
                                        r"truncation='truncate_prompt_left'"):
        sft(path, tok, max_length=8, truncation="drop")


def test_json_file_errors(tmp_path, tok):
    p = tmp_path / "bad.json"
    p.write_text('[\n {"prompt": "a", "answer": "b"},\n {"prompt": }\n]')
    with pytest.raises(DataError, match=rf"{p} line 3: malformed JSON"):
        sft(str(p), tok)
    p.write_text(json.dumps({"rows": [GOOD]}))
    with pytest.raises(DataError, match=r"expected a JSON list of rows; got an object. Set "
                                        r"'json_field'.*\['rows'\]"):
        sft(str(p), tok)
    assert len(sft(str(p), tok, json_field="rows")) == 1
    p.write_text(json.dumps([GOOD, {"prompt": "x", "answer": None}]))
    with pytest.raises(DataError, match=rf"{p} item 2, field 'answer': expected a string, got "
                                        "null"):
        sft(str(p), tok)


def test_parquet_row_errors(tmp_path, tok):
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = tmp_path / "d.parquet"
    pq.write_table(pa.table({"prompt": ["a", "b"], "answer": [1, 2]}), p)
    with pytest.raises(DataError, match=rf"{p} row 1, field 'answer': expected a string, got an "
                                        "integer"):
        sft(str(p), tok)
    p.write_text("not parquet at all")
    with pytest.raises(DataError, match="not a readable Parquet file"):
        sft(str(p), tok)


def test_file_level_errors(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_rows(tmp_path / "missing.jsonl")
    (tmp_path / "d.csv").write_text("a,b\n")
    with pytest.raises(DataError, match=r"unsupported file type '.csv'; expected one of .jsonl, "
                                        r".json, .parquet"):
        read_rows(tmp_path / "d.csv")
    with pytest.raises(DataError, match="is a directory"):
        read_rows(tmp_path)


def test_errors_are_for_people(write_jsonl, tok):
    """Every data error is an RlcoreError (printed by the CLI), never a KeyError/TypeError."""
    bad_rows = [
        "{", "3", '"text"', "null", {}, {"prompt": None, "answer": "x"},
        {"prompt": "a", "completion": {"x": 1}}, {"messages": "hi"}, {"messages": []},
        {"messages": [{"role": "user"}]}, {"messages": [{"role": "user", "content": "x"}]},
        {"prompt": [{"role": "user", "content": "x"}], "completion": [{"role": "user",
                                                                       "content": "y"}]},
    ]
    for i, row in enumerate(bad_rows):
        path = write_jsonl([row], name=f"bad{i}.jsonl")
        with pytest.raises(RlcoreError, match=rf"bad{i}.jsonl line 1"):
            sft(path, tok)
    pair_rows = [
        {"prompt": "a", "chosen": "b"}, {"prompt": "a", "pos_answers": "x", "neg_answers": ["y"]},
        {"prompt": "a", "pos_answers": [], "neg_answers": []},
        {"chosen": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}],
         "rejected": [{"role": "user", "content": "OTHER"}, {"role": "assistant", "content": "c"}]},
        {"chosen": "b", "rejected": "c"},
    ]
    for i, row in enumerate(pair_rows):
        path = write_jsonl([row], name=f"pair{i}.jsonl")
        with pytest.raises(RlcoreError, match=rf"pair{i}.jsonl line 1"):
            PairedDataset(PairedConfig(path=path), tok)
    for i, row in enumerate([{"text": "x"}, {"messages": [{"role": "assistant", "content": "x"}]}]):
        path = write_jsonl([row], name=f"prompt{i}.jsonl")
        with pytest.raises(RlcoreError, match=rf"prompt{i}.jsonl line 1"):
            PromptDataset(PromptConfig(path=path), tok)


def test_messages_without_chat_template(tmp_path, write_jsonl):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from rlcore.data.tokenizer import load_tokenizer

    raw = Tokenizer(models.WordLevel({"<unk>": 0, "<eos>": 1, "a": 2, "b": 3}, unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=raw, eos_token="<eos>", unk_token="<unk>") \
        .save_pretrained(tmp_path / "tok")
    plain = load_tokenizer(tmp_path / "tok")
    assert plain.pad_token == "<eos>"  # ensure_pad_token filled it in
    path = write_jsonl([{"messages": [{"role": "user", "content": "a"},
                                      {"role": "assistant", "content": "b"}]}])
    with pytest.raises(DataError, match=r"line 1, field 'messages': chat messages need a "
                                        r"tokenizer with a chat template"):
        sft(path, plain)
