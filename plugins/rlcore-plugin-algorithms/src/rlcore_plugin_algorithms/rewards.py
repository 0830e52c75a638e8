"""Reward functions as a graph node: registered rule rewards scoring the actor's responses.

The node runs on a role with no neural model (backend ``none``). Each response is decoded
without special tokens and scored by every function, ``fn(completions, samples, **params)``
with its ``reward.params``; the weighted sum is the sequence's reward. A function that
raises, returns the wrong number of scores or a non-finite score stops the run with an error
naming it and the sample id. ``check_reward_params`` checks the parameters before any process
starts; this module imports torch only when it scores.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rlcore.sdk import INPUT_IDS as IDS
from rlcore.sdk import (
    NO_EOS,
    PROMPT_MASK,
    REWARDS,
    ConfigError,
    DataError,
    ModelHandle,
    ModelInterface,
    RlcoreError,
    registry,
)
from rlcore_plugin_rewards.rules import bind_params

if TYPE_CHECKING:
    from rlcore.sdk import PackedBatch




class RewardFunctionError(RlcoreError):
    """A reward function failed or returned unusable scores."""


class RewardParamsError(RewardFunctionError, ConfigError):
    """``reward.params`` names an unknown function or parameter, or a value of the wrong type."""


def check_params(name: str, fn: Callable, params: dict[str, Any] | None) -> None:
    """Raise RewardParamsError unless ``params`` fit ``fn``'s keyword parameters: each known,
    of its annotated type, every required one given, values accepted by the function. The
    message names the function and the parameter and lists the accepted ones."""
    bound_params(name, fn, params)


def bound_params(name: str, fn: Callable, params: dict[str, Any] | None) -> dict[str, Any]:
    """``params`` checked as by ``check_params`` and converted to the annotated types."""
    try:
        return bind_params(name, fn, params)
    except RewardParamsError:
        raise
    except RlcoreError as exc:  # ConfigError, or an unknown function inside ``weighted``
        raise RewardParamsError(str(exc)) from None


def check_reward_params(functions: list[str],
                        params: dict[str, dict[str, Any]] | None) -> None:
    """Raise RewardParamsError (or UnknownItemError for an unregistered name) unless every
    function in ``functions`` is registered and ``params`` fit them: no params for a function
    that is not listed, none unknown or ill-typed, every required one given. Torch-free."""
    load_functions(functions, params)


def load_functions(functions: list[str], params: dict[str, dict[str, Any]] | None
                   ) -> list[tuple[str, Callable, dict[str, Any]]]:
    """``(name, function, checked params)`` for each of ``functions``, loaded from the registry."""
    params = {} if params is None else params
    if not isinstance(params, dict):
        raise RewardParamsError(f"reward.params must map reward function names to their "
                                f"parameters, e.g. {{math_answer: {{tolerance: 0.01}}}}; got "
                                f"{params!r}")
    extra = [str(name) for name in params if name not in functions]
    if extra:
        raise RewardParamsError(
            f"reward.params sets parameters of {', '.join(map(repr, extra))}, which "
            f"{'is' if len(extra) == 1 else 'are'} not in reward.functions "
            f"({', '.join(functions) or 'empty'}); add it to reward.functions or remove its "
            "params")
    loaded = []
    for name in functions:
        fn = registry.load("rewards", name)  # unknown names: an error with close matches
        loaded.append((name, fn, bound_params(name, fn, params.get(name))))
    return loaded


def responses(tokenizer: Any, data: PackedBatch) -> tuple[list[str], list[dict], list[str]]:
    """Each sequence's decoded response, its sample's fields (plus ``id``, ``truncated``), its id."""
    prompt_mask = data.data[PROMPT_MASK].bool()
    no_eos = data.data[NO_EOS].bool().tolist() if NO_EOS in data.data \
        else None
    rows = data.sample_dicts()
    tokens, samples, seq_ids = [], [], []
    start = 0
    for i, lens in enumerate(data.seqlens[IDS]):
        for j, n in enumerate(lens):
            piece = slice(start, start + n)
            tokens.append(data.data[IDS][piece][~prompt_mask[piece]].tolist())
            seq_id = f"{data.ids[i]}#{j}" if len(lens) > 1 else data.ids[i]
            fields = {**rows[i], "id": seq_id}
            if no_eos is not None:
                fields["truncated"] = no_eos[len(seq_ids)]
            samples.append(fields)
            seq_ids.append(seq_id)
            start += n
    texts = tokenizer.batch_decode(tokens, skip_special_tokens=True)
    return texts, samples, seq_ids


def _some(seq_ids: list[str], n: int = 4) -> str:
    """The distinct samples of ``seq_ids`` (``line:4#2`` -> ``line:4``), the first ``n``."""
    samples = list(dict.fromkeys(str(s).split("#")[0] for s in seq_ids))
    return ", ".join(samples[:n]) + (f" and {len(samples) - n} more" if len(samples) > n else "")


def check_answers(samples: list[tuple[str, dict]], functions: list[str], where: str) -> None:
    """Raise DataError naming the file, the row and the field when a sample lacks the answer
    that one of ``functions`` (registered reward functions) reads, or a field it declares in
    ``fn.required_fields`` (``code_tests``: ``tests``). Before the first step."""
    from rlcore_plugin_rewards.rules import missing_answer

    for name in functions:
        for field in getattr(registry.load("rewards", name), "required_fields", ()):
            for sample_id, fields in samples:
                if fields.get(field) is None:
                    row = str(sample_id).replace(":", " ", 1)
                    raise DataError(f"{where}, {row}: no {field!r} field. Reward function "
                                    f"{name!r} reads it (rlcore info rewards {name}): give "
                                    f"every row a {field!r}, or choose another reward")
    users = [n for n in functions if getattr(registry.load("rewards", n), "needs_answer", False)]
    if not users:
        return
    for sample_id, fields in samples:
        why = missing_answer(fields)
        if why is not None:
            row = str(sample_id).replace(":", " ", 1)
            raise DataError(f"{where}, {row}: {why}. Reward function {users[0]!r} compares each "
                            "response with it: give every row an 'answer', or choose a reward "
                            "that needs none (rlcore list rewards)")


def call_reward(name: str, fn: Any, texts: list[str], samples: list[dict],
                seq_ids: list[str], params: dict[str, Any] | None = None) -> list[float]:
    """``fn(texts, samples, **params)``, checked: one finite number per response."""
    try:
        scores = fn(texts, samples, **(params or {}))
    except Exception as exc:
        raise RewardFunctionError(
            f"reward function {name!r} raised {type(exc).__name__}: {exc} (scoring "
            f"{len(seq_ids)} responses of samples {_some(seq_ids)})") from exc
    if hasattr(scores, "tolist") and not isinstance(scores, list):  # a tensor or an array
        scores = scores.tolist()
    try:
        scores = list(scores)
    except TypeError:
        raise RewardFunctionError(f"reward function {name!r} returned a "
                                  f"{type(scores).__name__}, not a list of scores") from None
    if len(scores) != len(texts):
        raise RewardFunctionError(
            f"reward function {name!r} returned {len(scores)} scores for {len(texts)} responses "
            f"(samples {_some(seq_ids)}); it must return one score per response")
    out = []
    for sid, s in zip(seq_ids, scores, strict=True):
        try:
            value = float(s)
        except (TypeError, ValueError):
            raise RewardFunctionError(f"reward function {name!r} returned {s!r} for sample "
                                      f"{sid}, not a number") from None
        if not math.isfinite(value):
            raise RewardFunctionError(f"reward function {name!r} returned {value} for sample "
                                      f"{sid}; rewards must be finite")
        out.append(value)
    return out


def per_sequence(data: PackedBatch, key: str, values: list[float]) -> PackedBatch:
    """One float per sequence of ``data[IDS]`` under ``key``, grouped by sample."""
    import torch

    from rlcore.sdk import PackedBatch

    rows, start = [], 0
    for lens in data.seqlens[IDS]:
        rows.append([[v] for v in values[start : start + len(lens)]])
        start += len(lens)
    return PackedBatch.from_sequences(data.ids, {key: rows}, dtypes={key: torch.float32})


class RewardFunctionInterface(ModelInterface):
    """inference: ``rewards`` = weighted sum of registered reward functions over the responses,
    each called with its ``params`` (``{function name: {parameter: value}}``)."""

    def __init__(self, functions: list[str], weights: list[float] | None = None,
                 params: dict[str, dict[str, Any]] | None = None):
        if not functions:
            raise RewardFunctionError("no reward functions given; name registered ones "
                                      "(`rlcore list rewards`)")
        weights = list(weights) if weights is not None else [1.0] * len(functions)
        if len(weights) != len(functions):
            raise RewardFunctionError(f"{len(weights)} weights for {len(functions)} functions")
        self.functions = [(name, fn, float(w), bound) for (name, fn, bound), w
                          in zip(load_functions(list(functions), params), weights, strict=True)]

    def inference(self, handle: ModelHandle, data: PackedBatch
                  ) -> tuple[PackedBatch, dict[str, float]]:
        """The weighted rewards, and each function's mean score as metric ``reward/<name>``."""
        texts, samples, seq_ids = responses(handle.tokenizer, data)
        total = [0.0] * len(texts)
        means = {}
        for name, fn, weight, params in self.functions:
            scores = call_reward(name, fn, texts, samples, seq_ids, params)
            total = [t + weight * s for t, s in zip(total, scores, strict=True)]
            means[f"/reward/{name}"] = sum(scores) / max(len(scores), 1)
        return per_sequence(data, REWARDS, total), means
