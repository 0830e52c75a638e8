"""Rule rewards: ``fn(completions, samples) -> list[float]``, one score per completion."""

from __future__ import annotations

import re

from rlcore.errors import DataError

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_MARKED = (re.compile(r"####\s*(-?[\d,.]+)"), re.compile(r"\\boxed\{\s*(-?[\d,.]+)\s*\}"))


def reference_answer(sample: dict, index: int) -> str:
    """The sample's expected answer, from ``answer`` or ``ground_truth``."""
    for field in ("answer", "ground_truth"):
        if sample.get(field) is not None:
            return str(sample[field])
    raise DataError(
        f"sample {sample.get('id', index)!r} has no 'answer' or 'ground_truth' field; "
        f"rule rewards need one (fields present: {sorted(sample)})"
    )


def _check_lengths(completions: list[str], samples: list[dict]) -> None:
    if len(completions) != len(samples):
        raise ValueError(f"got {len(completions)} completions for {len(samples)} samples")


def exact_match(completions: list[str], samples: list[dict]) -> list[float]:
    """1.0 when the completion, stripped of whitespace, equals the answer."""
    _check_lengths(completions, samples)
    return [
        float(c.strip() == reference_answer(s, i).strip())
        for i, (c, s) in enumerate(zip(completions, samples, strict=True))
    ]


def final_number(text: str) -> float | None:
    """The answer a completion commits to: a ``#### n`` or ``\\boxed{n}`` mark, else its last number."""
    for pattern in _MARKED:
        found = pattern.findall(text)
        if found:
            return _to_float(found[-1])
    numbers = _NUMBER.findall(text)
    return _to_float(numbers[-1]) if numbers else None


def _to_float(text: str) -> float | None:
    try:
        return float(text.replace(",", "").rstrip("."))
    except ValueError:
        return None


def math_answer(completions: list[str], samples: list[dict]) -> list[float]:
    """1.0 when the completion's final number equals the answer's number."""
    _check_lengths(completions, samples)
    scores = []
    for i, (completion, sample) in enumerate(zip(completions, samples, strict=True)):
        expected = final_number(reference_answer(sample, i))
        got = final_number(completion)
        scores.append(float(expected is not None and got is not None and abs(got - expected) < 1e-6))
    return scores


def format_penalty(completions: list[str], samples: list[dict]) -> list[float]:
    """-1.0 for an empty completion or one whose sample says it hit the length limit."""
    _check_lengths(completions, samples)
    return [
        -1.0 if not c.strip() or s.get("truncated", False) else 0.0
        for c, s in zip(completions, samples, strict=True)
    ]
