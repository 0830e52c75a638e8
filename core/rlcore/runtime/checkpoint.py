"""Checkpoints: atomic, HF-format weights plus everything needed to resume exactly.

Layout of ``RUN_DIR/checkpoints/step-00000010/``::

    COMPLETE              written last: the manifest (size and sha256 of every other file)
    trainer_state.json    step, data-iterator state, config, interface state
    rng/rank-00000.json   python / numpy / torch RNG of every rank
    <role>/               a clean HF model directory of each trained role: config.json,
                          generation_config.json, model.safetensors, the tokenizer; of a LoRA
                          role, its adapters in PEFT format (adapter_config.json,
                          adapter_model.safetensors) and rlcore_base.json (base path, sha256)
    lora_base/<role>/     (beside the step dirs) the base of a LoRA role that had no directory
    engine_state/<role>/  module, optimizer, scheduler (engine.*; ZeRO: optimizer-rank-NNNNN.*);
                          checkpoints before this layout kept it in <role>/engine/, still read

Resume state is safetensors + JSON only (``safe_state``): loading never unpickles, and a
checkpoint holding a pickle is refused. Every rank writes into ``.tmp-step-…`` and rank 0
renames it into place once all are done, so a crash never leaves a checkpoint that looks
complete; the manifest is checked before a resume. The run directory must be on storage
every rank sees (one machine, or a shared file system).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from rlcore.errors import CheckpointError, DiskFullError
from rlcore.models.hf_io import shared_mode
from rlcore.runtime import distributed
from rlcore.runtime.diskspace import writing as _writing
from rlcore.runtime.interface import ModelHandle
from rlcore.runtime.safe_state import unique_tensors
from rlcore.runtime.seeding import rng_state, set_rng_state

COMPLETE = "COMPLETE"
LORA_BASE = "lora_base"  # checkpoints/lora_base/<role>: the base of a LoRA role that had no directory
ENGINE_STATE = "engine_state"  # beside the HF model directories, so that they hold weights only
_STEP_DIR = re.compile(r"^step-(\d+)$")
_PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".pkl", ".pickle", ".ckpt")
_PICKLE_MAGIC = (b"\x80", b"PK\x03\x04")  # pickle protocol 2+, torch.save's zip archive




# ---------------------------------------------------------------------- weights


def save_weights(handle: ModelHandle, path: Path, own_base: Path | None = None) -> None:
    """Write a role's full weights as safetensors (HF layout when it has a family); with LoRA,
    its adapters in PEFT format (a base with no directory of its own is written to ``own_base``
    once).

    Collective: under ZeRO-3 every rank takes part in gathering; rank 0 writes.
    """
    from rlcore.models.lora import has_adapters

    with handle.model.gathered_parameters():
        if distributed.rank() != 0:
            return
        path.mkdir(parents=True, exist_ok=True)
        if has_adapters(handle.module) and handle.family:
            _save_adapters(handle, path, own_base)
        elif handle.family:
            from rlcore.models.hf_io import save_pretrained

            with _owned_parameters(handle.module):
                save_pretrained(handle.module, handle.family, str(path), tokenizer=handle.tokenizer)
            if hasattr(handle.tokenizer, "save_pretrained"):  # a complete HF model directory
                handle.tokenizer.save_pretrained(str(path))
        else:
            from safetensors.torch import save_file

            tensors, aliases = unique_tensors(handle.module.state_dict())
            save_file(tensors, str(path / "model.safetensors"), metadata={
                "format": "pt", "aliases": json.dumps(aliases)})
            shared_mode(path / "model.safetensors")


def _save_adapters(handle: ModelHandle, path: Path, own_base: Path | None) -> None:
    """The adapters of a LoRA role (PEFT format) and its tokenizer; the base is referenced."""
    from rlcore.models.hf_io import save_pretrained
    from rlcore.models.lora import base_state_dict
    from rlcore.models.peft_io import base_record, save_adapter
    from rlcore.models.transformer import Transformer

    module = handle.module
    sd = {k: v.detach().cpu() for k, v in module.state_dict().items()}
    base = module.lora_base
    if base is None:  # a tiny random base: written once beside the checkpoints
        if own_base is None:
            raise CheckpointError(f"role {handle.role!r}: its LoRA base has no directory to "
                                  "reference; give the role a model path")
        if not (own_base / "config.json").is_file():
            with torch.device("meta"):
                plain = Transformer(module.config)
            plain.load_state_dict({k: v.clone() for k, v in base_state_dict(sd).items()},
                                  assign=True)
            plain.hf_generation = getattr(module, "hf_generation", None)
            tmp = own_base.with_name(f".tmp-{own_base.name}")
            shutil.rmtree(tmp, ignore_errors=True)
            with _writing(tmp):
                save_pretrained(plain, handle.family, tmp, tokenizer=handle.tokenizer)
            os.replace(tmp, own_base)
        base = own_base
    save_adapter(sd, module, handle.family, path, base_record(base))
    if hasattr(handle.tokenizer, "save_pretrained"):
        handle.tokenizer.save_pretrained(str(path))


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
RESUMABLE_KEYS = frozenset({"max_steps", "epochs", "eval_every", "eval_at_start", "save_every", "save_every_s",
                            "keep_last", "progress", "collective_timeout_s", "loggers",
                            "flat_loss_steps", "log_every_s"})


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

    def clean_partial(self) -> list[Path]:
        """Remove ``.tmp-step-*`` / ``.old-step-*`` left by a killed run (rank 0); return them."""
        if distributed.rank() != 0 or not self.root.is_dir():
            return []
        partial = sorted(p for p in self.root.iterdir()
                         if p.is_dir() and p.name.startswith((".tmp-step-", ".old-step-")))
        for p in partial:
            shutil.rmtree(p, ignore_errors=True)
        return partial

    def save(
        self,
        step: int,
        handles: Mapping[str, ModelHandle],
        trainer_state: Mapping[str, Any],
        extras: Callable[[str, Path], None] | None = None,
    ) -> Path:
        """Write checkpoint ``step`` atomically (collective: call on every rank).

        ``extras(role, role_dir)`` runs on rank 0 for each trained role before the
        checkpoint is marked complete (interfaces' ``save``). When the disk fills up, the
        partial checkpoint is removed and every rank raises :class:`DiskFullError`.
        """
        rank = distributed.rank()
        final = self.root / self.step_dir_name(step)
        tmp = self.root / f".tmp-{self.step_dir_name(step)}"
        if rank == 0:
            if tmp.exists():
                shutil.rmtree(tmp)  # left over by a crash
            with _writing(tmp):
                (tmp / "rng").mkdir(parents=True)
        distributed.barrier()
        trained = {role: h for role, h in handles.items() if h.trainable}
        failure = None
        try:
            for role, h in sorted(trained.items()):
                with _writing(tmp / role):
                    save_weights(h, tmp / role, own_base=self.root / LORA_BASE / role)
                with _writing(tmp / ENGINE_STATE / role):
                    h.model.save_state(tmp / ENGINE_STATE / role)
            rng_file = tmp / "rng" / f"rank-{rank:05d}.json"
            with _writing(rng_file):
                _fsync_json(rng_file, rng_state())
            if rank == 0 and extras is not None:
                for role in sorted(trained):
                    with _writing(tmp / role):
                        extras(role, tmp / role)
        except DiskFullError as err:
            failure = (str(err), err.remedy)
        failures = [f for f in distributed.all_gather_object(failure) if f]  # also the barrier
        if failures:
            if rank == 0:
                shutil.rmtree(tmp, ignore_errors=True)
            message, remedy = failures[0]
            raise DiskFullError(f"{message}; removed the partial checkpoint {tmp.name}, the "
                                f"earlier checkpoints are intact. {remedy}, then run again to "
                                "resume", remedy=remedy)
        if rank == 0:
            state = dict(trainer_state)
            state.update(step=step, roles=sorted(trained), world_size=distributed.world_size())
            try:
                with _writing(tmp / "trainer_state.json"):
                    _fsync_json(tmp / "trainer_state.json", state)
                with _writing(tmp / COMPLETE):  # the manifest, last: it marks the checkpoint complete
                    _fsync_json(tmp / COMPLETE, {"step": step, "time": time.time(),
                                                 "files": _manifest(tmp)})
            except DiskFullError as err:
                shutil.rmtree(tmp, ignore_errors=True)
                raise DiskFullError(f"{err}; removed the partial checkpoint {tmp.name}, the "
                                    f"earlier checkpoints are intact. {err.remedy}, then run "
                                    "again to resume", remedy=err.remedy) from None
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

    # ------------------------------------------------------------------ integrity

    @staticmethod
    def problem(path: str | os.PathLike) -> str | None:
        """Why checkpoint ``path`` cannot be resumed (one line naming the file), or None."""
        path = Path(path)
        marker = path / COMPLETE
        if not marker.is_file():
            return f"{path} is not a complete checkpoint (no {COMPLETE} marker)"
        for file in sorted(path.rglob("*")):
            if file.is_file() and _is_pickle(file):
                return (f"{file} is a pickle, which could run code when loaded; rlcore never "
                        "unpickles resume state (it writes safetensors and JSON). Resume from a "
                        "checkpoint written by this rlcore, or start fresh with --no-resume")
        try:
            files = json.loads(marker.read_text())["files"]
        except (ValueError, KeyError, TypeError):
            return f"{marker} is not a valid checkpoint manifest (damaged, or written by an older rlcore)"
        for rel, want in sorted(files.items()):
            file = path / rel
            if not file.is_file():
                return f"{file} is missing"
            size = file.stat().st_size
            if size != want["bytes"]:
                return f"{file} is damaged: {size} bytes, the manifest says {want['bytes']}"
            if _sha256(file) != want["sha256"]:
                return f"{file} is damaged: its checksum does not match the manifest"
        return None

    def verify(self, path: str | os.PathLike) -> None:
        """Raise CheckpointError when ``path`` is damaged (rank 0 checks; every rank raises)."""
        problem = self.problem(path) if distributed.rank() == 0 else None
        problem = distributed.all_gather_object(problem)[0]
        if problem:
            raise CheckpointError(problem)

    def newest_intact(self, say: Callable[[str], None] = print) -> Path | None:
        """The newest checkpoint that passes its manifest, saying which damaged ones it skipped."""
        found: str | None = None
        skipped: list[str] = []
        if distributed.rank() == 0:
            for p in reversed(self.complete()):
                problem = self.problem(p)
                if problem is None:
                    found = str(p)
                    break
                skipped.append(problem)
        found, skipped = distributed.all_gather_object((found, skipped))[0]
        if distributed.rank() == 0:
            for problem in skipped:
                say(f"skipping a damaged checkpoint: {problem}")
            if skipped and found:
                say(f"falling back to {found}, the newest intact checkpoint")
        if skipped and not found:
            raise CheckpointError(f"no intact checkpoint in {self.root} ({skipped[0]}); resume "
                                  "from a copy with --resume PATH or start fresh with --no-resume")
        return Path(found) if found else None

    # ------------------------------------------------------------------ resume

    def load(self, path: str | os.PathLike, handles: Mapping[str, ModelHandle],
             config: Mapping[str, Any] | None = None, verify: bool = True) -> dict[str, Any]:
        """Restore weights, optimizer, scheduler and this rank's RNG; return the trainer state.

        First checks the manifest (unless ``verify=False``: the caller just did); with
        ``config``, refuses a checkpoint written under another config.
        """
        path = Path(path)
        if not (path / COMPLETE).is_file():
            raise CheckpointError(
                f"{path} is not a complete checkpoint (no {COMPLETE} marker); "
                f"complete ones: {[p.name for p in self.complete()] or 'none'}"
            )
        if verify:
            self.verify(path)
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
            _check_lora_base(path / role)
            handles[role].model.load_state(engine_state_dir(path, role))
        rng_file = path / "rng" / f"rank-{distributed.rank():05d}.json"
        set_rng_state(json.loads(rng_file.read_text()))
        return state


# ---------------------------------------------------------------------- files


def _check_lora_base(role_dir: Path) -> None:
    """A LoRA role's adapters resume only onto the base they were trained on."""
    from rlcore.errors import ModelLoadError
    from rlcore.models.peft_io import BASE_RECORD, check_base

    if (role_dir / BASE_RECORD).is_file():
        try:
            check_base(json.loads((role_dir / BASE_RECORD).read_text()), str(role_dir))
        except ModelLoadError as err:
            raise CheckpointError(f"{err}; resume with that base, or start fresh with "
                                  "--no-resume") from None


def engine_state_dir(checkpoint: Path, role: str) -> Path:
    """Where ``role``'s engine state is: ``engine_state/<role>``, or ``<role>/engine`` in a
    checkpoint written before that layout."""
    new = checkpoint / ENGINE_STATE / role
    return new if new.is_dir() or not (checkpoint / role / "engine").is_dir() else checkpoint / role / "engine"


def _manifest(root: Path) -> dict[str, dict[str, Any]]:
    """Size and sha256 of every file under ``root`` (but the manifest itself)."""
    return {str(f.relative_to(root)): {"bytes": f.stat().st_size, "sha256": _sha256(f)}
            for f in sorted(root.rglob("*")) if f.is_file() and f.name != COMPLETE}


def _sha256(file: Path) -> str:
    h = hashlib.sha256()
    with open(file, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _is_pickle(file: Path) -> bool:
    """A pickle or ``torch.save`` archive, by name or by its first bytes (not JSON/safetensors)."""
    if file.suffix in _PICKLE_SUFFIXES:
        return True
    if file.suffix in (".json", ".safetensors"):
        return False
    with open(file, "rb") as f:
        return f.read(4).startswith(_PICKLE_MAGIC)
