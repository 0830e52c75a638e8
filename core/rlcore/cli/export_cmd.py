"""``rlcore export``: a clean HF model directory from a run or checkpoint, for transformers."""

from __future__ import annotations

import os
import shutil
from enum import StrEnum
from pathlib import Path

import typer

from rlcore.cli.model_source import MODEL_HELP, ROLE_HELP, resolve, say_source
from rlcore.errors import ConfigError


class Dtype(StrEnum):
    """Weights' dtype in the exported directory."""

    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


def export(
    model: Path = typer.Argument(..., help=MODEL_HELP),
    out: Path = typer.Argument(..., help="New directory to write (must not exist or be empty)."),
    dtype: Dtype | None = typer.Option(None, "--dtype", help="Cast the weights (default: as saved)."),
    role: str = typer.Option("actor", "--role", help=ROLE_HELP),
    force: bool = typer.Option(False, "--force", help="Replace OUT if it holds files."),
) -> None:
    """Write a trained role as a clean HF directory: config.json, generation_config.json,
    safetensors weights and the tokenizer; no optimizer or engine state; files mode 0644.

    `transformers.AutoModelForCausalLM.from_pretrained(OUT)` loads it with the logits rlcore
    computes. Examples:

    * `rlcore export runs/sft exported/sft`
    * `rlcore export runs/grpo/checkpoints/step-00000300 exported/grpo --dtype bf16`
    """
    import torch

    from rlcore.cli.model_source import load
    from rlcore.models.hf_io import GENERATION, save_pretrained

    source = resolve(model, role)
    out = out.absolute()
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise ConfigError(f"{out} already holds files; give a new directory, or --force to "
                          "replace it")
    if out.resolve() == source.model_dir.resolve():
        raise ConfigError(f"{out} is the model being exported; give another directory")
    say_source(source)
    torch_dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
    module, tokenizer, family = load(source, dtype=torch_dtype[dtype] if dtype else None, lm=False)
    if dtype is None:  # keep the saved dtype
        module.to(_saved_dtype(source.model_dir))
    tmp = out.with_name(f".{out.name}.tmp-export")
    shutil.rmtree(tmp, ignore_errors=True)
    save_pretrained(module, family, tmp, tokenizer=tokenizer)
    tokenizer.save_pretrained(str(tmp))
    if not (tmp / GENERATION).is_file():
        (tmp / GENERATION).write_text("{}\n")
    for path in tmp.rglob("*"):
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    os.chmod(tmp, 0o755)
    if out.exists():
        shutil.rmtree(out) if out.is_dir() else out.unlink()
    out.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, out)
    n = sum(p.numel() for p in module.parameters())
    typer.echo(f"exported {n:,} parameters ({str(module.embed.weight.dtype).removeprefix('torch.')}) "
               f"to {out}: {', '.join(sorted(p.name for p in out.iterdir()))}")


def _saved_dtype(model_dir: Path):
    """The dtype of the directory's weights, from config.json (float32 when it says none)."""
    import torch

    from rlcore.models.hf_io import read_hf_config

    name = read_hf_config(model_dir).get("dtype") or read_hf_config(model_dir).get("torch_dtype")
    return getattr(torch, str(name), torch.float32) if name else torch.float32


def register(app: typer.Typer) -> None:
    """Attach ``rlcore export`` to the root app."""
    app.command("export")(export)
