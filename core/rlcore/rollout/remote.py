"""The ``worker`` rollout engine: sampling on separate rollout processes (``rollout.procs``).

Every trainer rank hands its prompts to trainer rank 0, which spreads the jobs over the workers
and hands each rank its responses back. ``submit`` starts a batch and ``collect`` waits for it,
so workers can sample ahead while the trainers train (``rollout.max_staleness``); ``generate``
is the two at once. ``update_weights`` sends the trainer's weights with a version; each worker
scores a fixed probe sequence when it loads them, and a difference from the trainer's own score
above ``sync_check_tol`` stops the run naming the worker and the version, since a sync that
silently failed would look like staleness. The check runs before any token of that version is
handed out. A sync slower than ``sync_timeout_s`` fails with a message instead of hanging. With
LoRA the workers hold the same adapters: the first sync sends the base too, later ones only the
adapters (``rollout/sync_mb`` says how much moved).
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

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
                 sync_timeout_s: float = 60.0, wait_timeout_s: float = 600.0,
                 partial: bool = False):
        from rlcore.models.transformer import Transformer

        if not isinstance(handle.module, Transformer):
            raise RlcoreError(f"rollout.engine=worker samples with rlcore's core transformer; "
                              f"role {handle.role!r} holds a {type(handle.module).__name__}: "
                              "build it as rlcore.models.Transformer, or sample locally")
        self.rank = distributed.rank()
        env = wire.rollout_env()
        if env is None and self.rank == 0:  # only trainer rank 0 talks to the workers
            raise RlcoreError("rollout.engine=worker needs rollout processes: set rollout.procs=K "
                              "and launch with --nproc N (N > K): K processes sample, N-K train")
        self.handle, self.partial = handle, partial
        self.workers = env[2] if self.rank == 0 else 0
        self.tol, self.sync_timeout_s, self.wait_timeout_s = sync_check_tol, sync_timeout_s, wait_timeout_s
        self.group = wire.connect(0, wait_timeout_s)[0] if self.rank == 0 else None
        self._version = -1  # no weights sent yet
        self._tickets = itertools.count()
        self.outstanding: dict[int, dict[int, list[int]]] = {}  # ticket -> worker -> job ranks
        self._early: dict[tuple[int, int], tuple[dict, dict]] = {}  # (worker, ticket) -> reply
        self._expected: dict[int, torch.Tensor] = {}  # version -> the trainer's probe score
        self._answered = dict.fromkeys(self._workers(), -1)
        self._checks: list[tuple[float, int, int]] = []  # (difference, worker, version)
        self._sync_s: float | None = None
        self.metrics: dict[str, float] = {}
        vocab = handle.module.config.vocab_size
        self.probe = torch.arange(PROBE_LENGTH, dtype=torch.int64) * 7919 % vocab
        self._sent_base = False
        lora = getattr(handle.module, "lora", None)
        for w in self._workers():
            wire.send(self.group, w, "init", {"model": model_config(handle.module),
                                              "lora": dataclasses.asdict(lora) if lora else None})
        self.update_weights(handle.version)  # the workers start from the trainer's weights

    def _workers(self) -> range:
        return range(1, self.workers + 1) if self.rank == 0 else range(0)

    @property
    def version(self) -> int:
        return self._version

    def update_weights(self, version: int,
                       weights: Mapping[str, torch.Tensor] | None = None) -> None:
        """Send ``weights`` (default: the trainer's, gathered on every rank); the workers'
        probe scores are checked as they arrive, before tokens of ``version`` are used."""
        start = time.perf_counter()
        state = dict(weights) if weights is not None else self.handle.model.full_state_dict()
        if weights is None and self._sent_base and getattr(self.handle.module, "lora", None):
            from rlcore.models.lora import trainable_keys

            state = {k: state[k] for k in trainable_keys(state)}  # the base never changes
        self._sent_base = True
        self._sync_mb = sum(t.numel() * t.element_size() for t in state.values()) / 2**20
        expected = probe_logprobs(self.handle.model, self.probe, self.handle.device)
        if self.rank == 0:
            self._expected[int(version)] = expected
            meta = {"version": int(version), "probe": self.probe.tolist()}
            for w in self._workers():
                wire.send(self.group, w, "weights", meta, state, timeout_s=self.sync_timeout_s)
        self._version = int(version)
        self._sync_s = time.perf_counter() - start

    def generate(self, prompts: list[list[int]], config: GenerationConfig, seed: int) -> Rollout:
        """This rank's responses; every trainer rank calls it together."""
        return self.collect(self.submit(prompts, config, seed))

    def submit(self, prompts: list[list[int]], config: GenerationConfig, seed: int) -> int:
        """Hand this rank's prompts to the workers and return at once with a ticket for
        :meth:`collect`; every trainer rank calls it together, in the same order."""
        jobs = distributed.all_gather_object((prompts, seed))
        ticket = next(self._tickets)
        assignment = {w: [j for j in range(len(jobs)) if j % self.workers == w - 1]
                      for w in self._workers()}
        self.outstanding[ticket] = assignment
        for w in self._workers():
            tensors, meta_jobs = {}, []
            for i, j in enumerate(assignment[w]):
                flat, lengths = wire.pack([torch.tensor(p, dtype=torch.int64) for p in jobs[j][0]])
                tensors[f"prompts{i}"], tensors[f"prompt_lengths{i}"] = flat, lengths
                meta_jobs.append({"seed": jobs[j][1]})
            wire.send(self.group, w, "generate", {
                "ticket": ticket, "partial": self.partial, "config": dataclasses.asdict(config),
                "jobs": meta_jobs}, tensors)
        return ticket

    def collect(self, ticket: int) -> Rollout:
        """Wait for ``ticket``'s responses (every trainer rank together) and set ``metrics``:
        the sync check, the waits of both sides and the batches still queued."""
        start = time.perf_counter()
        assignment = self.outstanding.pop(ticket)
        shares, error, idle = self._receive(ticket, assignment) if self.rank == 0 else (None, None, 0)
        checks, self._checks = self._checks, []
        extra = {"/rollout/sync_check": max(c[0] for c in checks)} if checks else {}
        share, error, extra, idle = distributed.scatter_object(
            [(s, error, extra, idle) for s in shares] if self.rank == 0 else None)
        if error:
            raise RlcoreError(error)
        self.metrics = {**extra, "/time/rollout_wait": time.perf_counter() - start,
                        "/time/train_wait": idle, "/rollout/queue": float(len(self.outstanding))}
        if self._sync_s is not None:
            self.metrics["/time/weight_sync"], self._sync_s = self._sync_s, None
            self.metrics["/rollout/sync_mb"] = self._sync_mb
        return Rollout(*share)

    def _receive(self, ticket: int, assignment: dict[int, list[int]]):
        """Rank 0: each rank's share of ``ticket``, the first failed sync check (or None), and
        the workers' mean idle time since their last reply."""
        shares: list[tuple] = [()] * sum(len(jobs) for jobs in assignment.values())
        idle = []
        for w, mine in assignment.items():
            meta, out = self._reply(w, ticket)
            idle.append(meta["idle_s"])
            for i, j in enumerate(mine):
                tokens = wire.unpack(out[f"tokens{i}"], out[f"lengths{i}"])
                logprobs = wire.unpack(out[f"logprobs{i}"], out[f"lengths{i}"])
                steps = out[f"step_versions{i}"]
                versions = [steps[: len(t)].clone() for t in tokens]
                shares[j] = (tokens, logprobs, versions, meta["finish"][i],
                             _kept(out, i, meta["masked"][i], tokens), _routing(out, i, meta))
        bad = [c for c in self._checks if c[0] > self.tol]
        error = None
        if bad:
            diff, w, version = bad[0]
            error = (f"weight sync check failed: rollout worker {w} scores the probe up to "
                     f"{diff:.3g} away from the trainer after loading version {version} "
                     f"(rollout.sync_check_tol={self.tol:g}); its weights are not the trainer's")
        return shares, error, sum(idle) / len(idle)

    def _reply(self, w: int, ticket: int) -> tuple[dict, dict]:
        """Worker ``w``'s rollout for ``ticket``, checking the probe scores that come first."""
        while (w, ticket) not in self._early:
            kind, meta, out = wire.recv(self.group, w, timeout_s=self.wait_timeout_s)
            if kind == "probe":
                self._check_probe(w, int(meta["version"]), out["logprobs"])
            elif kind == "rollout":
                self._early[(w, int(meta["ticket"]))] = (meta, out)
        return self._early.pop((w, ticket))

    def _check_probe(self, w: int, version: int, logprobs: torch.Tensor) -> None:
        """Record how far worker ``w``'s probe score is from the trainer's for ``version``."""
        expected = self._expected.get(version)
        if expected is None:
            raise RlcoreError(f"rollout worker {w} reports weight version {version}, which was "
                              "never sent")
        self._checks.append((float((logprobs - expected).abs().max()), w, version))
        self._answered[w] = version
        oldest = min(self._answered.values())
        self._expected = {v: e for v, e in self._expected.items() if v >= oldest}

    def release_memory(self) -> None:
        """Workers keep their copy: their memory is not the trainers'."""

    def resume_memory(self) -> None:
        """Nothing was released."""

    def close(self) -> None:
        for w in self._workers():
            wire.send(self.group, w, "close")


def _routing(out: dict[str, torch.Tensor], job: int, meta: dict) -> list[torch.Tensor] | None:
    """Each response's recorded experts, int16 ``[prompt + response, layers, k]`` (None when
    the generation did not record them)."""
    if f"routing{job}" not in out:
        return None
    flat = wire.unpack(out[f"routing{job}"], out[f"routing_lengths{job}"])
    return [r.reshape(-1, *meta["routing_shape"]).to(torch.int16) for r in flat]


def _kept(out: dict[str, torch.Tensor], job: int, masked: list[bool],
          tokens: list[torch.Tensor]) -> list[KeptTokens | None]:
    """Each response's kept tokens (None where nothing was cut), from the compact arrays."""
    if f"kept_counts{job}" not in out:
        return [None] * len(tokens)
    cut = KeptTokens(out[f"kept_ids{job}"], out[f"kept_counts{job}"])
    parts = iter(cut.split([len(t) for t, has in zip(tokens, masked, strict=True) if has]))
    return [next(parts) if has else None for has in masked]
