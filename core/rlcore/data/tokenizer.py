"""Load local Hugging Face tokenizers and the small helpers the datasets share.

Never downloads and never runs remote code. ``load_tokenizer(None)`` gives the
embedded task's tokenizer, so that ``rlcore train sft`` works with no paths at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rlcore.errors import DataError

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model")


def load_tokenizer(path: str | Path | None) -> Any:
    """A ``transformers`` tokenizer from a local directory (``None`` → the embedded one).

    The result always has a pad token (the eos token when the tokenizer defines none).
    """
    if path is None:
        from rlcore.data.embedded import embedded_tokenizer

        return embedded_tokenizer()
    p = Path(path)
    if not p.is_dir():
        raise DataError(f"tokenizer directory {p} does not exist; give a local model or "
                        "tokenizer directory (rlcore never downloads)")
    if not any((p / f).exists() for f in TOKENIZER_FILES):
        raise DataError(f"{p} holds no tokenizer: expected one of {', '.join(TOKENIZER_FILES)}")
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(p), trust_remote_code=False, local_files_only=True)
    except Exception as e:
        raise DataError(f"cannot load the tokenizer in {p}: {e}") from None
    return ensure_pad_token(tok)


def ensure_pad_token(tokenizer: Any) -> Any:
    """Give ``tokenizer`` a pad token (its eos) when it has none; return it."""
    if tokenizer.pad_token_id is None and tokenizer.eos_token_id is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def encode(tokenizer: Any, text: str, add_special_tokens: bool = False) -> list[int]:
    """Token ids of ``text``."""
    return list(tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"])


def has_chat_template(tokenizer: Any) -> bool:
    """Whether ``tokenizer`` can render ``messages``."""
    return bool(getattr(tokenizer, "chat_template", None))


def render_chat(tokenizer: Any, messages: list[dict[str, str]], add_generation_prompt: bool) -> str:
    """``messages`` rendered to text by the tokenizer's chat template (not tokenized)."""
    return tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=add_generation_prompt
    )


def chat_segments(
    tokenizer: Any, messages: list[dict[str, str]]
) -> list[tuple[str, bool]]:
    """Split a rendered chat into ``(text, is_assistant_reply)`` segments.

    Each assistant message's text is what the template adds after the generation
    prompt, so masks cover exactly the reply (and its end-of-turn tokens).
    """
    segments: list[tuple[str, bool]] = []
    done = ""
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        prompt = render_chat(tokenizer, messages[:i], add_generation_prompt=True)
        full = render_chat(tokenizer, messages[: i + 1], add_generation_prompt=False)
        if not prompt.startswith(done) or not full.startswith(prompt):
            raise DataError(
                "the tokenizer's chat template does not render conversations "
                "prefix-consistently, so assistant replies cannot be masked; use the "
                "prompt/answer form instead"
            )
        segments.append((prompt[len(done):], False))
        segments.append((full[len(prompt):], True))
        done = full
    final = render_chat(tokenizer, messages, add_generation_prompt=False)
    if not final.startswith(done):
        raise DataError(
            "the tokenizer's chat template renders the whole conversation differently from "
            "its prefixes, so assistant replies cannot be masked; use the prompt/answer form"
        )
    tail = final[len(done):]
    if tail:
        segments.append((tail, False))
    return [(t, a) for t, a in segments if t]
