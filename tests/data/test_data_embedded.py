"""The embedded addition task and its tokenizer; loading local tokenizers."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rlcore.data import embedded
from rlcore.data.tokenizer import chat_segments, load_tokenizer
from rlcore.errors import DataError


def test_tokenizer_specials_round_trip_and_chat_template(tok, tmp_path):
    assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id) == (0, 1, 2)
    ids = tok("23+41=", add_special_tokens=True)["input_ids"]
    assert ids[0] == tok.bos_token_id and len(ids) == 7  # one token per character
    assert tok.decode(ids, skip_special_tokens=True) == "23+41="
    assert tok.decode(tok("Hello, world!\n")["input_ids"], skip_special_tokens=True) == \
        "Hello, world!\n"
    chat = [{"role": "user", "content": "1+2="}, {"role": "assistant", "content": "3"}]
    assert tok.apply_chat_template(chat, tokenize=False) == "<bos><|user|>1+2=<|assistant|>3<eos>"
    assert chat_segments(tok, chat) == [("<bos><|user|>1+2=<|assistant|>", False),
                                        ("3<eos>", True)]
    # Saved like any HF tokenizer, and loads back through load_tokenizer.
    d = embedded.save_embedded_tokenizer(tmp_path / "tok")
    again = load_tokenizer(d)  # through AutoTokenizer: the same class as the embedded one
    assert type(again) is type(tok)
    assert again("7+8=")["input_ids"] == tok("7+8=")["input_ids"]
    assert again.chat_template == tok.chat_template
    assert load_tokenizer(None) is tok


def test_load_tokenizer_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_tokenizer(tmp_path / "nope")
    with pytest.raises(DataError, match="holds no tokenizer: expected one of tokenizer.json"):
        load_tokenizer(tmp_path)


def test_rows_are_deterministic_and_correct():
    assert embedded.sft_rows(50, seed=3) == embedded.sft_rows(50, seed=3)
    assert embedded.sft_rows(50, seed=3) != embedded.sft_rows(50, seed=4)
    for row in embedded.sft_rows(200):
        a, b = row["prompt"].removesuffix("=").split("+")
        assert row["answer"] == str(int(a) + int(b)) and int(a) <= 99 and int(b) <= 99
    for row in embedded.pair_rows(200):
        a, b = row["prompt"].removesuffix("=").split("+")
        assert row["chosen"] == str(int(a) + int(b))
        assert row["rejected"] != row["chosen"] and int(row["rejected"]) >= 0
    for row in embedded.prompt_rows(20):
        assert set(row) == {"prompt", "answer", "data_source"}


def test_train_and_eval_splits_are_disjoint():
    train = set(embedded.problems(3000, split="train"))
    held = set(embedded.problems(3000, split="eval"))
    assert not train & held
    assert 0.05 < len(held) / (len(held) + len(train)) < 0.3
    with pytest.raises(ValueError, match="split"):
        embedded.problems(1, split="test")


def test_rule_score():
    assert embedded.score(" 64 ", "64") == 1.0
    assert embedded.score("65", "64") == 0.0
    assert embedded.score("", "64") == 0.0


def test_importing_rlcore_data_does_not_import_torch():
    code = ("import sys, rlcore, rlcore.data, rlcore.data.embedded, rlcore.data.sources, "
            "rlcore.data.config; embedded = rlcore.data.embedded; embedded.sft_rows(3); "
            "assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
