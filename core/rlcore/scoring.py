"""Scoring a model on prompts: k completions each, reward functions, pass@k.

One function, :func:`score_prompts`, serves both the in-training eval (the algorithms
plugin's ``evaluate``) and ``rlcore eval``, so that the same weights give the same accuracy
in both. A completion is *correct* when the metric function scores it above 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rlcore.errors import ConfigError, RlcoreError

RewardFn = tuple[str, Callable[..., Any], dict[str, Any]]  # (name, function, its parameters)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from ``n`` samples of which ``c`` are correct (Chen et al. 2021, Codex)."""
    if not 1 <= k <= n:
        raise ConfigError(f"pass@{k} needs 1 <= k <= samples per prompt ({n})")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def reward_functions(names: Sequence[str], params: dict[str, dict[str, Any]] | None = None
                     ) -> list[RewardFn]:
    """``(name, function, params)`` for registered reward functions (unknown: a clear error)."""
    from rlcore.plugins import registry

    params = params or {}
    return [(name, registry.load("rewards", name), dict(params.get(name) or {})) for name in names]


def eval_functions(config: dict[str, Any]) -> tuple[list[str], dict[str, dict[str, Any]], str]:
    """From a run's plain config: the reward functions eval scores with, their parameters,
    and the metric (``eval.metric``; null: the first of ``reward.functions``, else exact_match)."""
    reward = config.get("reward") or {}
    names: list[str] = []
    params: dict[str, dict[str, Any]] = {}
    if reward and not (reward.get("path") or reward.get("url") or reward.get("interface")):
        names, params = list(reward.get("functions") or []), dict(reward.get("params") or {})
        if reward.get("args") and names:
            params[names[0]] = dict(reward["args"])
    ev = config.get("eval") or {}
    metric = ev.get("metric") or (names[0] if names else "exact_match")
    if ev.get("metric_args"):
        params[metric] = dict(ev["metric_args"])
    return (names if metric in names else [*names, metric]), params, metric


@dataclass
class Scores:
    """Per prompt: its completions, their token counts and each function's scores."""

    prompts: list[str]
    completions: list[list[str]]
    lengths: list[list[int]]
    scores: dict[str, list[list[float]]]
    metric: str
    ks: list[int] = field(default_factory=lambda: [1])

    def correct(self) -> list[list[bool]]:
        return [[s > 0 for s in row] for row in self.scores[self.metric]]

    def metrics(self) -> dict[str, float]:
        """``accuracy`` (pass@1), ``pass@k``, ``reward/<name>`` means and response lengths."""
        correct = self.correct()
        out = {"accuracy": _mean([pass_at_k(len(r), sum(r), 1) for r in correct])}
        for k in self.ks:
            if k != 1:
                out[f"pass@{k}"] = _mean([pass_at_k(len(r), sum(r), k) for r in correct])
        for name, rows in self.scores.items():
            out[f"reward/{name}"] = _mean([s for row in rows for s in row])
        flat = [n for row in self.lengths for n in row]
        out["length/mean"] = _mean(flat)
        out["length/max"] = float(max(flat, default=0))
        return out

    def records(self, samples: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """One JSON-ready row per completion: prompt, sample fields, completion, scores."""
        rows = []
        for i, texts in enumerate(self.completions):
            for j, text in enumerate(texts):
                rows.append({"index": i, "sample": j, "prompt": self.prompts[i],
                             "completion": text, "tokens": self.lengths[i][j],
                             "correct": self.scores[self.metric][i][j] > 0,
                             "scores": {n: s[i][j] for n, s in self.scores.items()},
                             "fields": _jsonable(samples[i])})
        return rows


def score_prompts(module: Any, tokenizer: Any, prompts: list[list[int]], samples: list[dict],
                  gconfig: Any, functions: list[RewardFn], metric: str, n: int = 1,
                  seed: int = 0, ks: Sequence[int] = (1,), batch_size: int = 64) -> Scores:
    """Generate ``n`` completions per prompt with ``module`` (a core Transformer, eval mode),
    decode them and score each with every function; ``metric`` decides what is correct."""
    import torch

    from rlcore.models.generation import generate

    if metric not in [name for name, _, _ in functions]:
        raise ConfigError(f"the metric {metric!r} is not among the reward functions scored "
                          f"({', '.join(f[0] for f in functions)})")
    for k in ks:
        pass_at_k(n, 0, k)  # checks 1 <= k <= n
    flat = [p for p in prompts for _ in range(n)]
    generator = torch.Generator(module.embed.weight.device).manual_seed(seed)
    tokens: list[list[int]] = []
    with torch.no_grad():
        for start in range(0, len(flat), batch_size):
            out = generate(module, flat[start:start + batch_size], gconfig, generator=generator)
            tokens += [t.tolist() for t in out.tokens]
    texts = tokenizer.batch_decode(tokens, skip_special_tokens=True)
    expanded = [dict(s) for s in samples for _ in range(n)]
    scores = {}
    for name, fn, params in functions:
        flat_scores = call_function(name, fn, texts, expanded, params)
        scores[name] = [flat_scores[i * n:(i + 1) * n] for i in range(len(prompts))]
    return Scores(prompts=tokenizer.batch_decode(prompts, skip_special_tokens=True),
                  completions=[texts[i * n:(i + 1) * n] for i in range(len(prompts))],
                  lengths=[[len(t) for t in tokens[i * n:(i + 1) * n]] for i in range(len(prompts))],
                  scores=scores, metric=metric, ks=sorted(set(ks)))


def call_function(name: str, fn: Callable[..., Any], texts: list[str], samples: list[dict],
                  params: dict[str, Any]) -> list[float]:
    """``fn(texts, samples, **params)`` as one float per text, or an error naming ``name``."""
    try:
        scores = fn(texts, samples, **params)
        scores = [float(s) for s in (scores.tolist() if hasattr(scores, "tolist") else scores)]
    except RlcoreError:
        raise
    except Exception as exc:
        raise RlcoreError(f"reward function {name!r} raised {type(exc).__name__}: {exc}") from exc
    if len(scores) != len(texts):
        raise RlcoreError(f"reward function {name!r} returned {len(scores)} scores for "
                          f"{len(texts)} completions; it must return one per completion")
    return scores


def eos_ids(model: Any, tokenizer: Any) -> list[int]:
    """Where generation stops: the model's generation_config.json eos ids, else the tokenizer's."""
    eos = (getattr(model, "hf_generation", None) or {}).get("eos_token_id")
    eos = eos if eos is not None else tokenizer.eos_token_id
    return [e for e in (eos if isinstance(eos, list) else [eos]) if e is not None]


def _mean(values: Sequence[float]) -> float:
    return float(sum(values) / len(values)) if values else 0.0


def _jsonable(sample: dict[str, Any]) -> dict[str, Any]:
    """The sample's plain fields (numbers, strings, lists, dicts); tensors are left out."""
    return {k: v for k, v in sample.items() if isinstance(v, (str, int, float, bool, list, dict))
            or v is None}
