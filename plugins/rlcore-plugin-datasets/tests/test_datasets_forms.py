"""Every accepted row form loads from a file written here, with the right tokens and masks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rlcore.data.embedded import CHAT_TEMPLATE, embedded_tokenizer, save_embedded_tokenizer
from rlcore.data.tokenizer import encode, load_tokenizer
from rlcore_plugin_datasets import forms, rlcore_datasets
from rlcore_plugin_datasets.config import PairedConfig, PromptAnswerConfig, PromptConfig
from rlcore_plugin_datasets.paired import PairedDataset
from rlcore_plugin_datasets.prompt import PromptDataset
from rlcore_plugin_datasets.prompt_answer import PromptAnswerDataset

U = lambda c: {"role": "user", "content": c}  # noqa: E731
A = lambda c: {"role": "assistant", "content": c}  # noqa: E731


@pytest.fixture(scope="module")
def tok():
    return embedded_tokenizer()


def write(tmp_path: Path, rows: list[dict], suffix: str) -> str:
    p = tmp_path / f"data{suffix}"
    if suffix == ".jsonl":
        p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif suffix == ".json":
        p.write_text(json.dumps(rows, indent=1))
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        keys = list(dict.fromkeys(k for r in rows for k in r))  # a column for every field
        pq.write_table(pa.Table.from_pylist([{k: r.get(k) for k in keys} for r in rows]), p)
    return str(p)


def texts(tok, batch, key="packed_input_ids"):
    return [[tok.decode(s) for s in batch.sequences(key, i)] for i in range(len(batch))]


def masked(tok, batch, i=0, j=0):
    seq = batch.sequences("packed_input_ids", i)[j]
    mask = batch.sequences("loss_mask", i)[j]
    return tok.decode(seq[mask])


def test_batched_encoding_gives_the_per_text_ids(tok):
    texts_ = ["1+2=", "", " 3 \n", "1+2=", "<|user|>x<eos>"]
    for special in (True, False):
        assert forms.encode_many(tok, texts_, special) == \
            {t: encode(tok, t, add_special_tokens=special) for t in texts_}


@pytest.mark.parametrize("dataset, config", [(PromptAnswerDataset, PromptAnswerConfig),
                                             (PromptDataset, PromptConfig)])
def test_batched_samples_equal_row_by_row(tmp_path, tok, dataset, config):
    rows = [{"prompt": f"{i}+1=", "answer": str(i + 1)} for i in range(5)] + \
        [{"prompt": [U("2+2=")], "completion": [A("4")]}, {"prompt": "9+9=", "completion": "18"}]
    ds = dataset(config(path=write(tmp_path, rows, ".jsonl")), tok)
    one_by_one = [s for row in ds.load_rows() for s in ds.build_sample(row)]  # nothing known now
    assert len(ds) == len(one_by_one) == len(rows)
    for batched, single in zip(ds.samples, one_by_one, strict=True):
        for key, seqs in single.sequences.items():
            assert [a.tolist() for a in batched.sequences[key]] == [a.tolist() for a in seqs]


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".parquet"])
def test_prompt_answer_plain_and_completion(tmp_path, tok, suffix):
    rows = [{"prompt": "1+2=", "answer": "3", "source": "a"},
            {"prompt": "10+5=", "answer": "15", "source": "b"}]
    ds = PromptAnswerDataset(PromptAnswerConfig(path=write(tmp_path, rows, suffix)), tok)
    b = ds.collate([ds[0], ds[1]])
    assert b.keys == ["packed_input_ids", "loss_mask"]
    assert texts(tok, b) == [["<bos>1+2=3<eos>"], ["<bos>10+5=15<eos>"]]
    assert masked(tok, b, 0) == "3<eos>" and masked(tok, b, 1) == "15<eos>"
    assert b.metadata == {"source": ["a", "b"]}
    assert b.ids[0].endswith(":1")

    trl = [{"prompt": "7+1=", "completion": "8"}]
    ds = PromptAnswerDataset(PromptAnswerConfig(path=write(tmp_path, trl, suffix)), tok)
    b = ds.collate([ds[0]])
    assert texts(tok, b) == [["<bos>7+1=8<eos>"]] and masked(tok, b) == "8<eos>"


def test_prompt_answer_messages_masks_every_assistant_reply(tmp_path, tok):
    rows = [{"messages": [{"role": "system", "content": "add"}, U("1+1="), A("2"), U("2+2="),
                          A("4")]}]
    ds = PromptAnswerDataset(PromptAnswerConfig(path=write(tmp_path, rows, ".jsonl")), tok)
    b = ds.collate([ds[0]])
    assert texts(tok, b) == [["<bos><|system|>add<|user|>1+1=<|assistant|>2<eos><|user|>2+2="
                              "<|assistant|>4<eos>"]]
    assert masked(tok, b) == "2<eos>4<eos>"
    ds = PromptAnswerDataset(
        PromptAnswerConfig(path=write(tmp_path, rows, ".jsonl"), train_on_prompt=True), tok)
    assert bool(ds.collate([ds[0]]).data["loss_mask"].all())


def test_prompt_answer_conversational_prompt_completion(tmp_path, tok):
    rows = [{"prompt": [U("3+3=")], "completion": [A("6")]}]
    ds = PromptAnswerDataset(PromptAnswerConfig(path=write(tmp_path, rows, ".jsonl")), tok)
    b = ds.collate([ds[0]])
    assert texts(tok, b) == [["<bos><|user|>3+3=<|assistant|>6<eos>"]]
    assert masked(tok, b) == "6<eos>"


def test_chatml_style_template_masks_exactly(tmp_path, tok):
    d = save_embedded_tokenizer(tmp_path / "tok")
    chatml = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
              "{% if add_generation_prompt %}<|assistant|>{% endif %}")
    assert chatml != CHAT_TEMPLATE
    (d / "chat_template.jinja").write_text(chatml)
    other = load_tokenizer(d)
    rows = [{"messages": [U("1+1="), A("2")]}]
    ds = PromptAnswerDataset(PromptAnswerConfig(path=write(tmp_path, rows, ".jsonl")), other)
    b = ds.collate([ds[0]])
    assert texts(other, b) == [["<|user|>1+1=\n<|assistant|>2\n"]]
    assert masked(other, b) == "2\n"


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".parquet"])
def test_paired_plain(tmp_path, tok, suffix):
    rows = [{"prompt": "1+2=", "chosen": "3", "rejected": "4"}]
    ds = PairedDataset(PairedConfig(path=write(tmp_path, rows, suffix)), tok)
    b = ds.collate([ds[0]])
    assert b.seqlens["packed_input_ids"] == [[7, 7]]
    assert texts(tok, b) == [["<bos>1+2=3<eos>", "<bos>1+2=4<eos>"]]
    assert masked(tok, b, 0, 0) == "3<eos>" and masked(tok, b, 0, 1) == "4<eos>"


def test_paired_real_style_expands_pairs(tmp_path, tok):
    rows = [{"prompt": "5+5=", "pos_answers": ["10", "10 "], "neg_answers": ["11", "9"]},
            {"prompt": "1+1=", "pos_answers": ["2"], "neg_answers": ["3"]}]
    path = write(tmp_path, rows, ".jsonl")
    ds = PairedDataset(PairedConfig(path=path), tok)
    assert [s.id for s in ds.samples] == ["line:1/0", "line:1/1", "line:2"]
    b = ds.collate(ds.samples)
    assert texts(tok, b)[1] == ["<bos>5+5=10 <eos>", "<bos>5+5=9<eos>"]
    ds = PairedDataset(PairedConfig(path=path, max_pairs_per_prompt=1), tok)
    assert [s.id for s in ds.samples] == ["line:1/0", "line:2"]


def test_paired_messages_forms(tmp_path, tok):
    implicit = {"chosen": [U("1+1="), A("2")], "rejected": [U("1+1="), A("3")]}
    explicit = {"prompt": [U("1+1=")], "chosen": [A("2")], "rejected": [A("3")]}
    for row in (implicit, explicit):
        ds = PairedDataset(PairedConfig(path=write(tmp_path, [row], ".jsonl")), tok)
        b = ds.collate([ds[0]])
        assert texts(tok, b) == [["<bos><|user|>1+1=<|assistant|>2<eos>",
                                  "<bos><|user|>1+1=<|assistant|>3<eos>"]]
        assert masked(tok, b, 0, 1) == "3<eos>"


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".parquet"])
def test_prompt_carries_fields_for_rewards(tmp_path, tok, suffix):
    rows = [{"prompt": "2+2=", "answer": "4", "data_source": "math"},
            {"prompt": "3+3=", "ground_truth": "6", "data_source": "math"}]
    ds = PromptDataset(PromptConfig(path=write(tmp_path, rows, suffix)), tok)
    b = ds.collate(ds.samples)
    assert b.keys == ["packed_prompts"]
    assert texts(tok, b, "packed_prompts") == [["<bos>2+2="], ["<bos>3+3="]]
    dicts = b.sample_dicts()
    assert dicts[0]["answer"] == "4" and dicts[0]["data_source"] == "math"
    assert dicts[1]["ground_truth"] == "6" and dicts[1].get("answer") is None


def test_prompt_messages_form_and_carry_fields(tmp_path, tok):
    rows = [{"messages": [U("4+4="), A("8")], "data_source": "x", "noise": 1}]
    path = write(tmp_path, rows, ".jsonl")
    ds = PromptDataset(PromptConfig(path=path), tok)
    b = ds.collate(ds.samples)
    assert texts(tok, b, "packed_prompts") == [["<bos><|user|>4+4=<|assistant|>"]]
    assert b.sample_dicts() == [{"data_source": "x", "noise": 1, "answer": "8"}]
    ds = PromptDataset(PromptConfig(path=path, carry_fields=["answer"]), tok)
    assert ds.collate(ds.samples).sample_dicts() == [{"answer": "8"}]


def test_truncation_left_keeps_bos_and_summarises(tmp_path, tok):
    rows = [{"prompt": "0123456789+1=", "answer": "x"}, {"prompt": "1+1=", "answer": "2"},
            {"prompt": "1=", "answer": "y" * 20}]
    path = write(tmp_path, rows, ".jsonl")
    ds = PromptAnswerDataset(PromptAnswerConfig(path=path, max_length=10), tok)
    assert len(ds) == 2
    b = ds.collate(ds.samples)
    assert texts(tok, b)[0] == ["<bos>6789+1=x<eos>"]
    assert b.seqlens["packed_input_ids"] == [[10], [7]]
    s = ds.summary
    assert (s.rows, s.samples, s.truncated, sum(s.dropped.values())) == (3, 2, 1, 1)
    assert str(s) == (f"{path}: 3 rows → 2 samples; 1 prompts truncated from the left (e.g. "
                      "line 1); 1 dropped: answer alone reaches max_length=10 (e.g. line 3)")
    # max_prompt_length applies on its own
    ds = PromptAnswerDataset(PromptAnswerConfig(path=path, max_length=100,
                                                max_prompt_length=4), tok)
    assert texts(tok, ds.collate(ds.samples[:1]))[0] == ["<bos>+1=x<eos>"]


def test_truncation_drop_policy(tmp_path, tok):
    rows = [{"prompt": "0123456789+1=", "chosen": "x", "rejected": "yy"},
            {"prompt": "1+1=", "chosen": "2", "rejected": "3"}]
    ds = PairedDataset(PairedConfig(path=write(tmp_path, rows, ".jsonl"), max_length=10,
                                    truncation="drop"), tok)
    assert [s.id for s in ds.samples] == ["line:2"]
    assert dict(ds.summary.dropped) == {"longer than max_length=10": 1}
    ds = PairedDataset(PairedConfig(path=write(tmp_path, rows, ".jsonl"), max_length=10), tok)
    b = ds.collate(ds.samples[:1])
    # Both sequences share the prompt cut to fit the longer (rejected) answer.
    assert texts(tok, b)[0] == ["<bos>789+1=x<eos>", "<bos>789+1=yy<eos>"]


def test_prompt_dataset_truncates_prompts(tmp_path, tok):
    rows = [{"prompt": "0123456789", "answer": "1"}]
    ds = PromptDataset(PromptConfig(path=write(tmp_path, rows, ".jsonl"), max_length=5), tok)
    assert texts(tok, ds.collate(ds.samples), "packed_prompts") == [["<bos>6789"]]


def test_embedded_defaults_for_every_dataset(tok):
    sft = PromptAnswerDataset(PromptAnswerConfig(embedded_size=16), tok)
    pairs = PairedDataset(PairedConfig(embedded_size=16), tok)
    prompts = PromptDataset(PromptConfig(embedded_size=16), tok)
    assert len(sft) == len(pairs) == len(prompts) == 16
    b = sft.collate(sft.samples)
    assert b.data["loss_mask"].dtype == torch.bool
    first = texts(tok, b)[0][0]
    assert first.startswith("<bos>") and "=" in first and first.endswith("<eos>")
    pb = pairs.collate(pairs.samples)
    assert all(len(s) == 2 for s in pb.seqlens["packed_input_ids"])
    for chosen, rejected in texts(tok, pb):
        assert chosen != rejected and chosen.split("=")[0] == rejected.split("=")[0]
    qb = prompts.collate(prompts.samples)
    for (prompt,), meta in zip(texts(tok, qb, "packed_prompts"), qb.sample_dicts(), strict=True):
        a, b_ = prompt.removeprefix("<bos>").removesuffix("=").split("+")
        assert meta["answer"] == str(int(a) + int(b_))
        assert meta["data_source"] == "rlcore/addition"


def test_hook_returns_lazy_records_that_load():
    records = {r.name: r for r in rlcore_datasets()}
    assert sorted(records) == ["paired", "prompt", "prompt_answer"]
    assert records["prompt_answer"].load() is PromptAnswerDataset
    from rlcore.plugins.records import load_object

    assert load_object(records["paired"].config) is PairedConfig
    assert all(r.doc for r in records.values())


def test_plugin_and_config_import_without_torch():
    code = ("import sys, rlcore_plugin_datasets, rlcore_plugin_datasets.config; "
            "rlcore_plugin_datasets.rlcore_datasets(); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
