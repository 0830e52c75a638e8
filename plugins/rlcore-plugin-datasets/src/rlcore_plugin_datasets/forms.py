"""Turn the accepted row forms into token arrays with loss masks.

Plain text prompts are tokenized with the tokenizer's own special tokens (e.g. bos);
answers get an eos. Chats are rendered by the tokenizer's chat template, split so that
assistant replies can be masked exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rlcore.sdk import DataError, Row, chat_segments, encode, has_chat_template, render_chat

INT = np.int64


def ids(values: list[int]) -> np.ndarray:
    return np.asarray(values, dtype=INT)


def require_template(tokenizer: Any, row: Row, field: str) -> None:
    """A DataError naming the row when chats cannot be rendered."""
    if not has_chat_template(tokenizer):
        raise row.ref.error(
            "chat messages need a tokenizer with a chat template, and this tokenizer has "
            "none; use the plain prompt/answer form or a tokenizer that defines chat_template",
            field,
        )


def encode_many(tokenizer: Any, texts: list[str], add_special_tokens: bool) -> dict[str, list[int]]:
    """Token ids of each distinct text from one batched call: what ``encode`` gives text by
    text, without the tokenizer's per-call overhead (thousands of rows at start-up)."""
    distinct = list(dict.fromkeys(texts))
    if not distinct:
        return {}
    found = tokenizer(distinct, add_special_tokens=add_special_tokens)["input_ids"]
    return dict(zip(distinct, map(list, found), strict=True))


def text_prompt(tokenizer: Any, text: str, known: dict[str, list[int]] | None = None) -> np.ndarray:
    """A plain prompt with the tokenizer's special tokens (e.g. a leading bos); ``known`` holds
    ids from :func:`encode_many` (with special tokens)."""
    if known is not None and text in known:
        return ids(known[text])
    return ids(encode(tokenizer, text, add_special_tokens=True))


def text_answer(tokenizer: Any, text: str, add_eos: bool,
                known: dict[str, list[int]] | None = None) -> np.ndarray:
    """A plain answer, followed by eos when ``add_eos``; ``known`` holds ids from
    :func:`encode_many` (without special tokens)."""
    if known is not None and text in known:
        out = list(known[text])
    else:
        out = encode(tokenizer, text, add_special_tokens=False)
    eos = tokenizer.eos_token_id
    if add_eos and eos is not None and (not out or out[-1] != eos):
        out.append(eos)
    return ids(out)


def _encode_segments(tokenizer: Any, segments: list[tuple[str, bool]]) -> tuple[np.ndarray, np.ndarray]:
    toks: list[int] = []
    mask: list[bool] = []
    for text, is_reply in segments:
        piece = encode(tokenizer, text, add_special_tokens=False)
        toks.extend(piece)
        mask.extend([is_reply] * len(piece))
    return ids(toks), np.asarray(mask, dtype=bool)


def chat_prompt(
    tokenizer: Any, row: Row, field: str, messages: list[dict[str, str]]
) -> tuple[np.ndarray, np.ndarray]:
    """A chat rendered up to the generation prompt; mask True on earlier assistant replies."""
    require_template(tokenizer, row, field)
    try:
        segments = chat_segments(tokenizer, messages)
        plain = render_chat(tokenizer, messages, add_generation_prompt=False)
        with_gen = render_chat(tokenizer, messages, add_generation_prompt=True)
    except DataError as e:
        raise row.ref.error(str(e), field) from None
    except Exception as e:  # a jinja template may raise anything on odd chats
        raise row.ref.error(f"the chat template failed on this conversation: {e}", field) from None
    if not with_gen.startswith(plain):
        raise row.ref.error("the chat template's generation prompt is not a suffix of the chat",
                            field)
    segments.append((with_gen[len(plain):], False))
    return _encode_segments(tokenizer, [(t, r) for t, r in segments if t])


def chat_reply(
    tokenizer: Any, row: Row, field: str, prompt: list[dict[str, str]],
    reply: list[dict[str, str]],
) -> np.ndarray:
    """The tokens the template adds for ``reply`` after ``prompt`` + generation prompt."""
    require_template(tokenizer, row, field)
    try:
        head = render_chat(tokenizer, prompt, add_generation_prompt=True)
        full = render_chat(tokenizer, prompt + reply, add_generation_prompt=False)
    except Exception as e:
        raise row.ref.error(f"the chat template failed on this conversation: {e}", field) from None
    if not full.startswith(head):
        raise row.ref.error(
            "the chat template does not render the reply as a continuation of the prompt, "
            "so the reply cannot be separated; use the plain prompt/chosen/rejected form",
            field,
        )
    return ids(encode(tokenizer, full[len(head):], add_special_tokens=False))


def check_reply_messages(row: Row, field: str, messages: list[dict[str, str]]) -> None:
    """Replies given as messages must be assistant messages."""
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            raise row.ref.error(f"expected an assistant message, got role {m['role']!r}",
                                f"{field}[{i}].role")
