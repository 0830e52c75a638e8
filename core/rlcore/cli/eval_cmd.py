"""``rlcore eval``: score a checkpoint or HF model on a prompt file, as the in-training eval does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from rlcore.cli.model_source import (
    MODEL_HELP,
    ROLE_HELP,
    ModelSource,
    load,
    resolve,
    say_source,
)
from rlcore.errors import ConfigError, DataError


def evaluate(
    model: Path = typer.Argument(..., help=MODEL_HELP),
    data: Path | None = typer.Option(None, "--data", "-d", help=(
        "Prompt file with answers (.jsonl, .json, .parquet, .csv, as the datasets read it); "
        "default: the run's eval data (eval.path, or the embedded eval split).")),
    dataset: str | None = typer.Option(None, "--dataset", help="Registered dataset that reads --data (default: the run's eval.name, else prompt)."),
    fmt: str | None = typer.Option(None, "--format", help="File reader of --data (jsonl, parquet, csv, ...); default: from the suffix."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Score only the first N prompts (default: all; a run's eval data: eval.size)."),
    metric: str | None = typer.Option(None, "--metric", "-m", help="Reward function whose score > 0 is correct (default: the run's eval.metric, else the first of reward.functions, else exact_match)."),
    metric_args: list[str] = typer.Option([], "--metric-arg", help="KEY=VALUE parameter of --metric, e.g. pattern='####' (repeatable; default: the run's)."),
    rewards: list[str] = typer.Option([], "--reward", "-r", help="Also report this reward function's mean (repeatable; default: the run's reward.functions)."),
    samples: int = typer.Option(1, "--samples", "-n", min=1, help="Completions per prompt."),
    pass_k: list[int] = typer.Option([], "--pass-k", "-k", help="Report pass@K (repeatable; default: 1 and --samples)."),
    temperature: float = typer.Option(0.0, "--temperature", "-t", min=0.0, help="0: greedy; > 0: sample."),
    top_p: float = typer.Option(1.0, "--top-p", help="Nucleus sampling (1: off)."),
    top_k: int = typer.Option(0, "--top-k", min=0, help="Top-k sampling (0: off)."),
    max_new_tokens: int | None = typer.Option(None, "--max-new-tokens", min=1, help="Generation budget (default: the run's eval.max_new_tokens, else 256)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the sampling noise."),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="Sequences generated at once."),
    output: Path | None = typer.Option(None, "--output", "-o", help="JSONL of every completion (default: RUN_DIR/eval/step-N.jsonl, else completions.jsonl)."),
    role: str = typer.Option("actor", "--role", help=ROLE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as one JSON object."),
) -> None:
    """Score a model on prompts with answers: pass@1, pass@k, each reward's mean, lengths.

    At a run's checkpoint with no --data it scores the run's own eval prompts with the run's
    metric and generation budget, and prints the accuracy the run logged at that step.
    Examples:

    * `rlcore eval runs/sft`
    * `rlcore eval runs/grpo --data test.jsonl --metric math_answer --samples 8 --temperature 1`
    * `rlcore eval /models/my-llama --data test.parquet --max-new-tokens 512 -o out.jsonl`
    """
    from rlcore.models.generation import GenerationConfig
    from rlcore.scoring import eos_ids, eval_functions, reward_functions, score_prompts

    source = resolve(model, role)
    if temperature == 0 and samples > 1:
        raise ConfigError(f"--samples {samples} with greedy decoding gives {samples} copies of one "
                          "completion; set --temperature (e.g. 1.0) to sample")
    run_names, params, run_metric = eval_functions(source.config)
    metric = metric or run_metric
    if metric_args:
        params[metric] = _key_values(metric_args, reward_functions([metric])[0][1])
    names = list(dict.fromkeys([*(rewards or run_names), metric]))
    functions = reward_functions(names, params)  # unknown names: an error before loading weights
    say_source(source)
    module, tokenizer, _ = load(source)
    batch = _prompts(source, tokenizer, data, dataset, fmt, limit)
    eval_cfg = source.config.get("eval") or {}
    gconfig = GenerationConfig(
        max_new_tokens=max_new_tokens or eval_cfg.get("max_new_tokens") or 256,
        greedy=temperature == 0, temperature=temperature or 1.0, top_p=top_p, top_k=top_k,
        eos_token_ids=eos_ids(module, tokenizer))
    from rlcore.data.trajectory import PROMPTS

    prompts = [batch.sequences(PROMPTS, i)[0].tolist() for i in range(len(batch))]
    rows = batch.sample_dicts()
    scores = score_prompts(module, tokenizer, prompts, rows, gconfig, functions, metric, n=samples,
                           seed=seed, ks=pass_k or sorted({1, samples}), batch_size=batch_size)
    out = output or _default_output(source)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w") as f:
        for record in scores.records(rows):
            f.write(json.dumps(record) + "\n")
    metrics = scores.metrics()
    if as_json:
        typer.echo(json.dumps({"step": source.step, "prompts": len(prompts), "samples": samples,
                               "metric": metric, **metrics}))
    else:
        how = "greedy" if gconfig.greedy else f"sampled at temperature {temperature}"
        typer.echo(f"{len(prompts)} prompts x {samples} completion(s), {how}, metric {metric}")
        width = max(len(k) for k in metrics)
        for key, value in metrics.items():
            typer.echo(f"  {key:<{width}}  {value:.4f}")
    typer.echo(f"completions: {out}", err=True)


def _key_values(items: list[str], fn: Any) -> dict[str, Any]:
    """``["k=v", ...]`` as a dict: text for a ``str`` parameter of ``fn``, else read as YAML."""
    import inspect

    import yaml

    kinds = {n: p.annotation for n, p in inspect.signature(fn).parameters.items()}
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--metric-arg {item!r} is not KEY=VALUE, e.g. --metric-arg tolerance=0.01")
        out[key] = value if kinds.get(key) in (str, "str") else yaml.safe_load(value)
    return out


def _prompts(source: ModelSource, tokenizer: Any, data: Path | None, dataset: str | None,
             fmt: str | None, limit: int | None) -> Any:
    """The prompts (with their answers) as one packed batch, read as the in-training eval reads them."""
    from rlcore.data.config import DatasetConfig
    from rlcore.data.select import build_named

    cfg, ev = source.config, source.config.get("eval") or {}
    ds = cfg.get("dataset") or {}
    common = {"shuffle": False, "max_length": ds.get("max_length", 1024),
              "embedded_max_operand": ds.get("embedded_max_operand", 99)}
    if data is not None:
        if not data.exists():
            raise DataError(f"--data {data}: no such file; give a .jsonl, .json, .parquet or .csv "
                            "file of prompts with their answers")
        config = DatasetConfig(path=str(data), format=fmt, max_rows=limit, **common)
        name = dataset or "prompt"
    elif ev and (ev.get("path") or not ds.get("path")):  # the run's own eval data
        size = limit or ev.get("size") or 64
        config = DatasetConfig(path=ev.get("path"), format=ev.get("format"), max_rows=size,
                               embedded_split="eval", embedded_size=size, **common)
        name = dataset or ev.get("name") or "prompt"
    else:
        raise DataError(f"{source.model_dir}: no eval data to score; give --data FILE (a .jsonl "
                        "or .parquet of prompts with their answers)")
    built = build_named(name, config, tokenizer, where="--data" if data else "eval")
    if len(built) == 0:
        raise DataError(f"{data or config.path}: no prompts to score; check the file")
    return built.collate([built[i] for i in range(len(built))])


def _default_output(source: ModelSource) -> Path:
    if source.checkpoint is not None:
        return source.checkpoint.parent.parent / "eval" / f"{source.checkpoint.name}.jsonl"
    return Path("completions.jsonl")


def register(app: typer.Typer) -> None:
    """Attach ``rlcore eval`` to the root app."""
    app.command("eval")(evaluate)
