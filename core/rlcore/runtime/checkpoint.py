"""Checkpoints: atomic, HF-format weights plus everything needed to resume exactly.

Layout of ``RUN_DIR/checkpoints/step-00000010/``::

    COMPLETE              written last; a directory without it is ignored
    trainer_state.json    step, data-iterator state, config, interface state
    rng/rank-00000.json   python / numpy / torch RNG of every rank
    <role>/               HF weights (config.json + model.safetensors) of each trained role
    <role>/engine/        optimizer, scheduler and ZeRO partitions (DeepSpeed's format)

Every rank writes into ``.tmp-step-…`` and rank 0 renames it into place once all
are done, so a crash never leaves a checkpoint that looks complete. The run
directory must be on storage every rank sees (one machine, or a shared file system).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from rlcore.errors import RlcoreError
from rlcore.runtime import distributed
from rlcore.runtime.interface import ModelHandle
from rlcore.runtime.seeding import rng_state, set_rng_state

COMPLETE = "COMPLETE"
_STEP_DIR = re.compile(r"^step-(\d+)$")


class CheckpointError(RlcoreError):
    """A checkpoint is missing, incomplete or does not match the run."""


# ---------------------------------------------------------------------- weights


def save_weights(handle: ModelHandle, path: Path) -> None:
    """Write a role's full weights as safetensors (HF layout when it has a family).

    Collective: under ZeRO-3 every rank takes part in gathering; rank 0 writes.
    """
    gather = getattr(handle.model, "gathered_parameters", None)
    ctx = gather() if gather is not None else contextlib.nullcontext()
    with ctx:
        if distributed.rank() != 0:
            return
        path.mkdir(parents=True, exist_ok=True)
        if handle.family:
            from rlcore.models.hf_io import save_pretrained

            with _owned_parameters(handle.module):
                save_pretrained(handle.module, handle.family, str(path))
            if hasattr(handle.tokenizer, "save_pretrained"):  # a complete HF model directory
                handle.tokenizer.save_pretrained(str(path))
        else:
            from safetensors.torch import save_file

            tensors, aliases = _unique_tensors(handle.module.state_dict())
            save_file(tensors, str(path / "model.safetensors"), metadata={
                "format": "pt", "aliases": json.dumps(aliases)})


def _unique_tensors(sd: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict]:
    """Own, contiguous CPU copies; a tensor shared under two names (tied) is stored once."""
    out: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    seen: dict[tuple, str] = {}
    for name, t in sd.items():
        key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), t.dtype)
        if t.numel() and key in seen:
            aliases[name] = seen[key]
            continue
        seen[key] = name
        out[name] = t.detach().to("cpu", copy=True).contiguous()
    return out, aliases


@contextlib.contextmanager
def _owned_parameters(module: torch.nn.Module):
    """Give each parameter its own storage for the duration, then put the originals back.

    Gathered ZeRO-3 parameters on the CPU are views into one flat buffer, which
    safetensors refuses to write as separate tensors.
    """
    originals = [(p, p.data) for p in module.parameters()]
    try:
        for p, data in originals:
            p.data = data.clone()
        yield
    finally:
        for p, data in originals:
            p.data = data


def _fsync_json(path: Path, obj: Any) -> None:
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
        f.flush()
        os.fsync(f.fileno())


# ---------------------------------------------------------------------- manager


# Run settings that may differ on resume: they change how long and how visibly a run goes, not
# what it computes.
RESUMABLE_KEYS = frozenset({"max_steps", "epochs", "eval_every", "eval_at_start", "save_every",
                            "keep_last", "progress", "collective_timeout_s"})


def config_changes(saved: Any, current: Any, prefix: str = "") -> list[str]:
    """``key: old -> new`` for each dotted key whose value differs, except RESUMABLE_KEYS."""
    if isinstance(saved, dict) and isinstance(current, dict):
        out = []
        for key in sorted(set(saved) | set(current), key=str):
            out += config_changes(saved.get(key), current.get(key), f"{prefix}{key}.")
        return out
    key = prefix.rstrip(".")
    if saved == current or key.rsplit(".", 1)[-1] in RESUMABLE_KEYS:
        return []
    return [f"{key}: {saved!r} -> {current!r}"]


class CheckpointManager:
    """Saves every ``save_every`` steps and at the end, keeps the last ``keep_last``."""

    def __init__(self, run_dir: str | os.PathLike, keep_last: int = 2):
        self.root = Path(run_dir) / "checkpoints"
        self.keep_last = keep_last

    @staticmethod
    def step_dir_name(step: int) -> str:
        return f"step-{step:08d}"

    def complete(self) -> list[Path]:
        """Complete checkpoints, oldest first."""
        if not self.root.is_dir():
            return []
        found = []
        for p in self.root.iterdir():
            m = _STEP_DIR.match(p.name)
            if m and (p / COMPLETE).is_file():
                found.append((int(m.group(1)), p))
        return [p for _, p in sorted(found)]

    def latest(self) -> Path | None:
        """The newest complete checkpoint, or None."""
        done = self.complete()
        return done[-1] if done else None

    @staticmethod
    def trainer_state(path: Path) -> dict[str, Any]:
        """What ``save`` recorded in checkpoint ``path``: step, config, data and interface state."""
        return json.loads((Path(path) / "trainer_state.json").read_text())

    def set_aside(self) -> Path | None:
        """Rename the checkpoints of an earlier run (rank 0) so a fresh run never resumes them."""
        if distributed.rank() != 0 or not self.complete():
            return None
        stamp = time.strftime("%Y%m%d-%H%M%S")
        aside = self.root.with_name(f"checkpoints-before-{stamp}")
        n = 1
        while aside.exists():
            n += 1
            aside = self.root.with_name(f"checkpoints-before-{stamp}-{n}")
        os.replace(self.root, aside)
        return aside

    def save(
        self,
        step: int,
        handles: Mapping[str, ModelHandle],
        trainer_state: Mapping[str, Any],
        extras: Callable[[str, Path], None] | None = None,
    ) -> Path:
        """Write checkpoint ``step`` atomically (collective: call on every rank).

        ``extras(role, role_dir)`` runs on rank 0 for each trained role before the
        checkpoint is marked complete (interfaces' ``save``).
        """
        rank = distributed.rank()
        final = self.root / self.step_dir_name(step)
        tmp = self.root / f".tmp-{self.step_dir_name(step)}"
        if rank == 0:
            if tmp.exists():
                shutil.rmtree(tmp)  # left over by a crash
            (tmp / "rng").mkdir(parents=True)
        distributed.barrier()
        trained = {role: h for role, h in handles.items() if h.trainable}
        for role, h in sorted(trained.items()):
            save_weights(h, tmp / role)
            h.model.save_state(tmp / role / "engine")
        _fsync_json(tmp / "rng" / f"rank-{rank:05d}.json", rng_state())
        if rank == 0 and extras is not None:
            for role in sorted(trained):
                extras(role, tmp / role)
        distributed.barrier()
        if rank == 0:
            state = dict(trainer_state)
            state.update(step=step, roles=sorted(trained), world_size=distributed.world_size())
            _fsync_json(tmp / "trainer_state.json", state)
            _fsync_json(tmp / COMPLETE, {"step": step, "time": time.time()})
            stale = None
            if final.exists():  # the same step from an earlier run: swap, then delete
                stale = final.with_name(f".old-{final.name}")
                shutil.rmtree(stale, ignore_errors=True)
                os.replace(final, stale)
            os.replace(tmp, final)
            if stale is not None:
                shutil.rmtree(stale, ignore_errors=True)
            self._prune()
        distributed.barrier()
        return final

    def _prune(self) -> None:
        if self.keep_last <= 0:
            return
        for old in self.complete()[: -self.keep_last]:
            shutil.rmtree(old, ignore_errors=True)

    def load(self, path: str | os.PathLike, handles: Mapping[str, ModelHandle],
             config: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Restore weights, optimizer, scheduler and this rank's RNG; return the trainer state.

        With ``config``, first refuse a checkpoint written under another config.
        """
        path = Path(path)
        if not (path / COMPLETE).is_file():
            raise CheckpointError(
                f"{path} is not a complete checkpoint (no {COMPLETE} marker); "
                f"complete ones: {[p.name for p in self.complete()] or 'none'}"
            )
        state = self.trainer_state(path)
        changed = [] if config is None else config_changes(state.get("config", {}), config)
        if changed:
            raise CheckpointError(
                f"{path} was written with another config ({'; '.join(changed)}); resuming would "
                "mix the two runs. Undo the change, start fresh with --no-resume (resume=False), "
                f"or use another --run-dir. Only run.{', run.'.join(sorted(RESUMABLE_KEYS))} may "
                "change on resume.")
        if state.get("world_size") != distributed.world_size():
            raise CheckpointError(
                f"{path} was written by {state.get('world_size')} ranks and this run has "
                f"{distributed.world_size()}; resume with the same --nproc"
            )
        trained = sorted(r for r, h in handles.items() if h.trainable)
        if trained != state.get("roles"):
            raise CheckpointError(
                f"{path} holds trained roles {state.get('roles')} but this run trains "
                f"{trained}; resume the same experiment"
            )
        for role in trained:
            handles[role].model.load_state(path / role / "engine")
        rng_file = path / "rng" / f"rank-{distributed.rank():05d}.json"
        set_rng_state(json.loads(rng_file.read_text()))
        return state
