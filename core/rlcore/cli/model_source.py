"""What ``eval``, ``generate``, ``chat`` and ``export`` take as MODEL: a run dir, a
checkpoint or an HF model directory, resolved to one HF directory (and its run's config)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from rlcore.errors import ModelLoadError

MODEL_HELP = ("A run dir (its newest checkpoint), a checkpoint dir (RUN/checkpoints/step-N) "
              "or an HF model directory.")
ROLE_HELP = "Which trained role of a run or checkpoint (default actor)."
WHAT = ("give a run dir (runs/sft), a checkpoint (runs/sft/checkpoints/step-00000010) or an HF "
        "model directory (with config.json)")


@dataclass
class ModelSource:
    """An HF model directory and, when it came from a run, that run's checkpoint and config."""

    model_dir: Path
    checkpoint: Path | None = None
    config: dict[str, Any] = field(default_factory=dict)
    step: int | None = None


def resolve(path: Path, role: str = "actor") -> ModelSource:
    """``path`` as a ModelSource, or a one-line ModelLoadError saying what to give instead."""
    from rlcore.models.peft_io import is_model_dir
    from rlcore.runtime.checkpoint import COMPLETE, CheckpointManager

    if not path.exists():
        raise ModelLoadError(f"{path}: no such directory; {WHAT}")
    if not path.is_dir():
        raise ModelLoadError(f"{path} is a file, not a directory; {WHAT}")
    if is_model_dir(path):
        return ModelSource(path)
    checkpoint = path if (path / COMPLETE).is_file() else None
    if checkpoint is None and (path / "checkpoints").is_dir():
        checkpoint = CheckpointManager(path).latest()
        if checkpoint is None:
            raise ModelLoadError(f"{path} has no complete checkpoint in {path / 'checkpoints'}; "
                                 "train until one is saved (run.save_every, or the end of the "
                                 "run), or give an HF model directory")
    if checkpoint is None:
        raise ModelLoadError(f"{path} is not a model: no config.json, no checkpoint marker "
                             f"({COMPLETE}) and no checkpoints/ folder; {WHAT}")
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    if not is_model_dir(checkpoint / role):
        roles = sorted(p.name for p in checkpoint.iterdir() if is_model_dir(p))
        raise ModelLoadError(f"{checkpoint} holds no HF model for role {role!r}; its roles: "
                             f"{', '.join(roles) or 'none'} (pick one with --role)")
    return ModelSource(checkpoint / role, checkpoint, state.get("config") or {}, state.get("step"))


resolve_model = resolve  # the SDK's name of it


def load(source: ModelSource, dtype: Any = None, lm: bool = True) -> tuple[Any, Any, str]:
    """The core Transformer (eval mode), its tokenizer and its family name; ``lm``: refuse a
    reward model (a value head generates nothing)."""
    from rlcore.data.tokenizer import load_tokenizer
    from rlcore.models.hf_io import load_pretrained, read_hf_config
    from rlcore.runtime.experiment import check_model_dir

    check_model_dir(source.model_dir, str(source.model_dir))
    archs = read_hf_config(source.model_dir).get("architectures") or []
    value_head = any(a.endswith("ForSequenceClassification") for a in archs)  # rm: a scorer
    if value_head and lm:
        raise ModelLoadError(f"{source.model_dir} is a reward model ({archs[0]}: a value head, "
                             "no LM head), which cannot generate; give a causal LM (an sft, dpo, "
                             "ppo or grpo run's actor)")
    model, family = load_pretrained(source.model_dir, dtype=dtype, value_head=value_head)
    return model.eval().requires_grad_(False), load_tokenizer(source.model_dir), family


def say_source(source: ModelSource) -> None:
    """One line on stderr: which weights are used."""
    where = f" (checkpoint step {source.step})" if source.step is not None else ""
    typer.echo(f"model: {source.model_dir}{where}", err=True)
