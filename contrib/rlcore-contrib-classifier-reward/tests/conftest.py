"""A tiny random sentiment classifier (BERT-style, its own WordPiece vocabulary), built once."""

import sys
from pathlib import Path

import pytest

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:  # --import-mode=importlib: let test modules share helpers
    sys.path.insert(0, HERE)

CORPUS = ["great good happy love", "bad awful sad hate", "the answer is 12 + 30 = 42",
          "0 1 2 3 4 5 6 7 8 9 + = ?"] * 20


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Tiny models on shared cores: one torch thread (fixture from rlcore.testing)."""


@pytest.fixture(scope="session")
def classifier_dir(tmp_path_factory):
    """A saved BertForSequenceClassification (NEGATIVE/POSITIVE) and its trained tokenizer."""
    import tokenizers
    import torch
    import transformers
    from tokenizers import models, normalizers, pre_tokenizers, processors, trainers

    tok = tokenizers.Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(CORPUS, trainers.WordPieceTrainer(vocab_size=120, special_tokens=special))
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
        sep_token="[SEP]", mask_token="[MASK]")
    config = transformers.BertConfig(
        vocab_size=len(fast), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64, num_labels=2,
        id2label={0: "NEGATIVE", 1: "POSITIVE"}, label2id={"NEGATIVE": 0, "POSITIVE": 1},
        pad_token_id=0)
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(config)
    path = tmp_path_factory.mktemp("sentiment")
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return path
