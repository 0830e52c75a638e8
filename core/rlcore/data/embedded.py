"""The embedded default task: addition of small numbers, with its own char-level tokenizer.

``"23+41="`` → ``"64"``. Generated deterministically from a seed, with no files, so
that ``rlcore train sft|rm|dpo|ppo|grpo`` runs with no dataset or model path. A
tiny transformer (hidden 64, 2 layers) learns it in minutes on a laptop CPU.

The rows have the same dict forms that the file datasets read:

- SFT: ``{"prompt": "23+41=", "answer": "64"}``
- preference pairs: ``{"prompt": ..., "chosen": "64", "rejected": "65"}``
- RL prompts: ``{"prompt": ..., "answer": "64", "data_source": "rlcore/addition"}``;
  a rule reward compares the completion with ``answer`` (see :func:`score`).

Problems split into disjoint train and eval sets by a fixed hash of the operands.
No torch import here.
"""

from __future__ import annotations

import functools
import random
import tempfile
from pathlib import Path
from typing import Any

DATA_SOURCE = "rlcore/addition"
MAX_OPERAND = 99
EVAL_FRACTION_DENOM = 10  # one problem in ten is held out for eval

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
ROLE_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>", "<|tool|>")
SPECIAL_TOKENS = (PAD, BOS, EOS, UNK, *ROLE_TOKENS)
# Printable ASCII plus newline: one token per character.
CHARACTERS = tuple(chr(c) for c in range(32, 127)) + ("\n",)

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>{{ message['content'] }}"
    "{% if message['role'] == 'assistant' %}{{ eos_token }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


# ---------------------------------------------------------------------- tokenizer


def build_tokenizer_object():
    """The raw ``tokenizers.Tokenizer``: one token per character, ``<bos>`` prepended."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS + CHARACTERS)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Split(pattern="", behavior="isolated")
    tok.add_special_tokens(list(SPECIAL_TOKENS))
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, vocab[BOS])]
    )
    tok.decoder = decoders.Fuse()
    return tok


def save_embedded_tokenizer(path: str | Path) -> Path:
    """Write the embedded tokenizer as a Hugging Face tokenizer directory; return it."""
    from transformers import PreTrainedTokenizerFast

    hf = PreTrainedTokenizerFast(
        tokenizer_object=build_tokenizer_object(),
        bos_token=BOS, eos_token=EOS, pad_token=PAD, unk_token=UNK,
        model_max_length=4096,
    )
    hf.chat_template = CHAT_TEMPLATE
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    hf.save_pretrained(str(out))
    return out


@functools.lru_cache(maxsize=1)
def _embedded_tokenizer_cached():
    # The class AutoTokenizer resolves for this directory, named directly: AutoTokenizer would
    # import transformers.models (about a second at start-up) to find it.
    from transformers import PreTrainedTokenizerFast

    with tempfile.TemporaryDirectory(prefix="rlcore-embedded-tok-") as d:
        save_embedded_tokenizer(d)
        return PreTrainedTokenizerFast.from_pretrained(d, local_files_only=True)


def embedded_tokenizer():
    """The embedded task's tokenizer, saved and loaded back like any HF tokenizer.

    Built in memory from fixed tables (deterministic, no cache to go stale) and
    shared within a process: do not mutate it.
    """
    return _embedded_tokenizer_cached()


# ---------------------------------------------------------------------- the task


def _is_eval(a: int, b: int) -> bool:
    """Fixed hash of the operands: about one problem in ten belongs to the eval split."""
    return ((a * 1009 + b * 9176) * 2654435761 >> 7) % EVAL_FRACTION_DENOM == 0


def problems(n: int, seed: int = 0, split: str = "train",
             max_operand: int = MAX_OPERAND) -> list[tuple[int, int]]:
    """``n`` operand pairs ``(a, b)`` with ``0 <= a, b <= max_operand`` from ``split``."""
    if split not in ("train", "eval"):
        raise ValueError(f"split must be 'train' or 'eval', got {split!r}")
    if max_operand < 1:
        raise ValueError(f"max_operand must be at least 1, got {max_operand}")
    pool = [(a, b) for a in range(max_operand + 1) for b in range(max_operand + 1)
            if _is_eval(a, b) == (split == "eval")]
    if not pool:
        raise ValueError(f"the {split} split is empty for max_operand={max_operand}")
    rng = random.Random(f"rlcore-addition:{seed}:{split}")
    return [pool[rng.randrange(len(pool))] for _ in range(n)]


def prompt_text(a: int, b: int) -> str:
    """The prompt for ``a + b``."""
    return f"{a}+{b}="


def wrong_answer(correct: int, rng: random.Random) -> int:
    """A plausible wrong sum: off by one or ten, or digits swapped."""
    candidates = {correct + 1, correct - 1, correct + 10, correct - 10, correct + 2}
    digits = str(correct)
    if len(digits) > 1:
        candidates.add(int(digits[::-1]))
    options = sorted(c for c in candidates if c >= 0 and c != correct)
    return options[rng.randrange(len(options))]


def sft_rows(n: int, seed: int = 0, split: str = "train",
             max_operand: int = MAX_OPERAND) -> list[dict[str, Any]]:
    """SFT rows ``{"prompt", "answer"}``."""
    return [{"prompt": prompt_text(a, b), "answer": str(a + b)}
            for a, b in problems(n, seed, split, max_operand)]


def pair_rows(n: int, seed: int = 0, split: str = "train",
              max_operand: int = MAX_OPERAND) -> list[dict[str, Any]]:
    """Preference rows ``{"prompt", "chosen", "rejected"}``: the right sum beats a wrong one."""
    rng = random.Random(f"rlcore-addition-wrong:{seed}:{split}")
    return [
        {"prompt": prompt_text(a, b), "chosen": str(a + b),
         "rejected": str(wrong_answer(a + b, rng))}
        for a, b in problems(n, seed, split, max_operand)
    ]


def prompt_rows(n: int, seed: int = 0, split: str = "train",
                max_operand: int = MAX_OPERAND) -> list[dict[str, Any]]:
    """RL rows ``{"prompt", "answer", "data_source"}``; rewards check ``answer``."""
    return [{"prompt": prompt_text(a, b), "answer": str(a + b), "data_source": DATA_SOURCE}
            for a, b in problems(n, seed, split, max_operand)]


def score(completion: str, answer: str) -> float:
    """Rule reward: 1.0 when the completion (surrounding whitespace ignored) is the answer."""
    return 1.0 if completion.strip() == str(answer).strip() else 0.0
