"""The ``worker`` rollout engine: sampling on separate rollout processes (``rollout.procs``).

Every trainer rank hands its prompts to trainer rank 0, which spreads the jobs over the workers
and hands each rank its responses back. ``update_weights`` sends the trainer's weights with a
version; each worker then scores a fixed probe sequence, and a difference from the trainer's
own score above ``sync_check_tol`` stops the run naming the worker and the version, since a
sync that silently failed would look like staleness. A sync slower than ``sync_timeout_s``
fails with a message instead of hanging.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch

from rlcore.errors import RlcoreError
from rlcore.models.kept_tokens import KeptTokens
from rlcore.rollout import wire
from rlcore.rollout.engine import Rollout
from rlcore.rollout.worker import model_config, probe_logprobs
from rlcore.runtime import distributed

if TYPE_CHECKING:
    from rlcore.models.generation import GenerationConfig
    from rlcore.runtime.interface import ModelHandle

PROBE_LENGTH = 24


class WorkerEngine:
    """Samples on the run's rollout worker processes; trainer rank 0 talks to them."""

    def __init__(self, handle: ModelHandle, sync_check_tol: float = 1e-4,
                 sync_timeout_s: float = 60.0, wait_timeout_s: float = 600.0):
        env = wire.rollout_env()
        if env is None:
            raise RlcoreError("rollout.engine=worker needs rollout processes: set rollout.procs=K "
                              "and launch with --nproc N (N > K): K processes sample, N-K train")
        self.handle, self.workers = handle, env[2]
        self.tol, self.sync_timeout_s = sync_check_tol, sync_timeout_s
        self.rank = distributed.rank()
        self.group = wire.connect(0, wait_timeout_s)[0] if self.rank == 0 else None
        self._version = -1  # no weights sent yet
        self.metrics: dict[str, float] = {}
        vocab = handle.module.config.vocab_size
        self.probe = torch.arange(PROBE_LENGTH, dtype=torch.int64) * 7919 % vocab
        for w in self._workers():
            wire.send(self.group, w, "init", {"model": model_config(handle.module)})

    def _workers(self) -> range:
        return range(1, self.workers + 1) if self.rank == 0 else range(0)

    @property
    def version(self) -> int:
        return self._version

    def update_weights(self, version: int,
                       weights: Mapping[str, torch.Tensor] | None = None) -> None:
        """Send ``weights`` (default: the trainer's, gathered on every rank) and check them."""
        start = time.perf_counter()
        state = dict(weights) if weights is not None else self.handle.model.full_state_dict()
        expected = probe_logprobs(self.handle.model, self.probe, self.handle.device)
        meta = {"version": int(version), "probe": self.probe.tolist()}
        for w in self._workers():
            wire.send(self.group, w, "weights", meta, state, timeout_s=self.sync_timeout_s)
        worst, bad = 0.0, 0.0
        for w in self._workers():
            _, _, out = wire.recv(self.group, w, timeout_s=self.sync_timeout_s)
            diff = float((out["logprobs"] - expected).abs().max())
            if diff > worst:
                worst, bad = diff, float(w)
        worst, bad = distributed.all_reduce([worst, bad], "max")  # every rank stops together
        if worst > self.tol:
            raise RlcoreError(
                f"weight sync check failed: rollout worker {int(bad)} scores the probe up to "
                f"{worst:.3g} away from the trainer after loading version {version} "
                f"(rollout.sync_check_tol={self.tol:g}); its weights are not the trainer's")
        self._version = int(version)
        self.metrics = {"/rollout/sync_check": worst,
                        "/time/weight_sync": time.perf_counter() - start}

    def generate(self, prompts: list[list[int]], config: GenerationConfig, seed: int) -> Rollout:
        """This rank's responses; every trainer rank calls it together."""
        jobs = distributed.all_gather_object((prompts, seed))
        results = self._dispatch(jobs, config) if self.rank == 0 else None
        return Rollout(*distributed.scatter_object(results))

    def _dispatch(self, jobs: list[tuple[list[list[int]], int]], config: Any) -> list[tuple]:
        """Rank 0: every rank's job to a worker (round robin), each rank's rollout back."""
        assignment = {w: [j for j in range(len(jobs)) if j % self.workers == w - 1]
                      for w in self._workers()}
        for w, mine in assignment.items():
            tensors, meta_jobs = {}, []
            for i, j in enumerate(mine):
                flat, lengths = wire.pack([torch.tensor(p, dtype=torch.int64) for p in jobs[j][0]])
                tensors[f"prompts{i}"], tensors[f"prompt_lengths{i}"] = flat, lengths
                meta_jobs.append({"seed": jobs[j][1]})
            wire.send(self.group, w, "generate", {"config": dataclasses.asdict(config),
                                                  "jobs": meta_jobs}, tensors)
        results: list[tuple] = [()] * len(jobs)
        for w, mine in assignment.items():
            _, meta, out = wire.recv(self.group, w)
            for i, j in enumerate(mine):
                tokens = wire.unpack(out[f"tokens{i}"], out[f"lengths{i}"])
                logprobs = wire.unpack(out[f"logprobs{i}"], out[f"lengths{i}"])
                versions = [torch.full((len(t),), meta["version"], dtype=torch.int64)
                            for t in tokens]
                results[j] = (tokens, logprobs, versions, meta["finish"][i],
                              _kept(out, i, meta["masked"][i], tokens))
        return results

    def release_memory(self) -> None:
        """Workers keep their copy: their memory is not the trainers'."""

    def resume_memory(self) -> None:
        """Nothing was released."""

    def close(self) -> None:
        for w in self._workers():
            wire.send(self.group, w, "close")


def _kept(out: dict[str, torch.Tensor], job: int, masked: list[bool],
          tokens: list[torch.Tensor]) -> list[KeptTokens | None]:
    """Each response's kept tokens (None where nothing was cut), from the compact arrays."""
    if f"kept_counts{job}" not in out:
        return [None] * len(tokens)
    cut = KeptTokens(out[f"kept_ids{job}"], out[f"kept_counts{job}"])
    parts = iter(cut.split([len(t) for t, has in zip(tokens, masked, strict=True) if has]))
    return [next(parts) if has else None for has in masked]

