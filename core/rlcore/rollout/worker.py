"""A rollout worker process: ``python -m rlcore.rollout.worker``, started by the launcher.

It holds its own inference copy of the actor and answers trainer rank 0 over the rollout group
(:mod:`rlcore.rollout.wire`): ``init`` builds the model, ``weights`` loads a version and scores
the probe (the sync check), ``generate`` samples a batch's jobs, ``close`` ends it. An inbox
thread receives while the worker generates, so the trainers never wait on a send; weights not
loaded yet are replaced by newer ones. It exits when its launcher dies, so a killed run leaves
no worker behind.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import threading
import time

import torch

from rlcore.rollout import RANK_ENV, wire

WAIT_S = 7 * 24 * 3600.0  # a worker waits for the trainers as long as its launcher lives


def probe_logprobs(model, ids: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """Log-probs of each next token of the probe sequence ``ids`` under ``model``: the number
    trainer and workers compare after a weight sync."""
    from rlcore.models.token_logprobs import TokenQuery

    ids = ids.to(device)
    cu = torch.tensor([0, ids.numel()], dtype=torch.int32, device=device)
    positions = torch.arange(ids.numel() - 1, device=device)
    with torch.no_grad():
        logp, _ = model(ids, cu, TokenQuery(positions, ids[1:]))
    return logp.float().cpu()


class Inbox:
    """Messages from trainer rank 0, in order, received on a thread of their own; a ``weights``
    message is a wake-up, its tensors wait in one slot that a newer version overwrites."""

    def __init__(self, group) -> None:
        self.group, self.messages = group, queue.Queue()
        self._weights: tuple[dict, dict] | None = None
        self._lock = threading.Lock()
        threading.Thread(target=self._receive, daemon=True).start()

    def _receive(self) -> None:
        while True:
            try:
                kind, meta, tensors = wire.recv(self.group, 0)
            except Exception as exc:  # the trainers are gone: end the worker
                print(f"rollout worker: the trainers stopped answering ({exc}); exiting", flush=True)
                kind, meta, tensors = "close", {}, {}
            if kind == "weights":
                with self._lock:
                    self._weights = (meta, tensors)
                meta, tensors = {}, {}
            self.messages.put((kind, meta, tensors))
            if kind == "close":
                return

    def newest_weights(self) -> tuple[dict, dict] | None:
        """The newest weights not taken yet (``(meta, tensors)``), or None."""
        with self._lock:
            out, self._weights = self._weights, None
        return out


class Outbox:
    """Replies to trainer rank 0, sent in order by a thread of their own, so the worker goes
    on sampling while a reply waits for the trainer to read it."""

    def __init__(self, group) -> None:
        self.group, self.messages = group, queue.Queue()
        threading.Thread(target=self._send, daemon=True).start()

    def _send(self) -> None:
        while True:
            wire.send(self.group, 0, *self.messages.get())

    def put(self, kind: str, meta: dict, tensors: dict) -> None:
        self.messages.put((kind, meta, tensors))


class Worker:
    """The state of one worker: its module, the weight version it holds, its idle time."""

    def __init__(self, group) -> None:
        self.group, self.module, self.version = group, None, -1
        self.inbox: Inbox | None = None
        self.outbox: Outbox | None = None
        self.idle_s = 0.0  # waiting for work since the last rollout was sent

    def reply(self, kind: str, meta: dict, tensors: dict) -> None:
        """Send to trainer rank 0 (from the outbox thread once serving)."""
        if self.outbox is None:
            wire.send(self.group, 0, kind, meta, tensors)
        else:
            self.outbox.put(kind, meta, tensors)

    def serve(self) -> None:
        """Answer the inbox's messages until ``close``."""
        self.inbox, self.outbox = Inbox(self.group), Outbox(self.group)
        while True:
            start = time.perf_counter()
            kind, meta, tensors = self.inbox.messages.get()
            self.idle_s += time.perf_counter() - start
            if kind == "weights":
                newest = self.inbox.newest_weights()
                if newest is None:  # already loaded mid-generation (rollout.partial)
                    continue
                meta, tensors = newest
            if not self.handle(kind, meta, tensors):
                return

    def handle(self, kind: str, meta: dict, tensors: dict) -> bool:
        """Act on one message; False once told to close."""
        from rlcore.models.config import TransformerConfig
        from rlcore.models.transformer import Transformer

        if kind == "init":
            self.module = Transformer(TransformerConfig(**meta["model"])).eval()
            if meta.get("lora"):  # the trainer's adapters: later syncs send only those
                from rlcore.models.lora import add_adapters
                from rlcore.runtime.options import LoraOptions

                add_adapters(self.module, LoraOptions(**meta["lora"])).eval()
        elif kind == "weights":
            self.module.load_state_dict(tensors, strict=False)
            self.version = int(meta["version"])
            probe = probe_logprobs(self.module, torch.tensor(meta["probe"]))
            self.reply("probe", {"version": self.version}, {"logprobs": probe})
        elif kind == "generate":
            self.generate(meta, tensors)
        elif kind == "close":
            return False
        return True

    def _load_newer(self) -> None:
        """rollout.partial: load weights that arrived during a generation, between tokens."""
        newest = self.inbox.newest_weights() if self.inbox is not None else None
        if newest is not None:
            self.handle("weights", *newest)

    def generate(self, meta: dict, tensors: dict) -> None:
        """Sample each job of a batch; with ``partial``, newer weights are loaded between tokens
        and every token is tagged with the version that produced it."""
        from rlcore.models.generation import GenerationConfig

        config = GenerationConfig(**meta["config"])
        out_meta = {"ticket": meta.get("ticket", 0), "finish": [], "masked": []}
        out: dict[str, torch.Tensor] = {}
        for j, job in enumerate(meta["jobs"]):
            prompts = [p.tolist() for p in wire.unpack(tensors[f"prompts{j}"],
                                                       tensors[f"prompt_lengths{j}"])]
            res, step_versions = self._sample(prompts, config, int(job["seed"]),
                                              bool(meta.get("partial")))
            eos = set(config.eos_token_ids)
            out_meta["finish"].append(["stop" if int(t[-1]) in eos else "length"
                                       for t in res.tokens])
            out[f"tokens{j}"], out[f"lengths{j}"] = wire.pack(res.tokens)
            out[f"logprobs{j}"], _ = wire.pack([lp.float() for lp in res.logprobs])
            out[f"step_versions{j}"] = torch.tensor(step_versions, dtype=torch.int64)
            cut = [k for k in res.kept if k is not None]
            out_meta["masked"].append([k is not None for k in res.kept])
            if cut:  # what sampling kept, compact: ids + per-token counts
                out[f"kept_ids{j}"], _ = wire.pack([k.ids for k in cut])
                out[f"kept_counts{j}"], _ = wire.pack([k.counts for k in cut])
            if res.routing is not None:  # each token's experts [L, layers, k], flattened
                out[f"routing{j}"], out[f"routing_lengths{j}"] = wire.pack(
                    [r.to(torch.int32).reshape(-1) for r in res.routing])
                out_meta["routing_shape"] = list(res.routing[0].shape[1:])
        out_meta["idle_s"], self.idle_s = self.idle_s, 0.0
        self.reply("rollout", out_meta, out)

    def _sample(self, prompts: list[list[int]], config, seed: int, partial: bool):
        """One job's generation and the weight version of each decoding step (token t of
        every response comes from step t)."""
        from rlcore.models.generation import generate

        step_versions = [self.version]

        def before_decode() -> None:
            if partial:
                self._load_newer()
            step_versions.append(self.version)

        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            res = generate(self.module, prompts, config, generator=generator,
                           before_decode=before_decode)
        return res, step_versions


def _exit_with_parent() -> None:
    parent = os.getppid()
    while True:
        time.sleep(2.0)
        if os.getppid() != parent:
            os._exit(1)


def main() -> None:
    rank = int(os.environ[RANK_ENV])
    threading.Thread(target=_exit_with_parent, daemon=True).start()
    group, _ = wire.connect(rank, WAIT_S)
    Worker(group).serve()


def model_config(module) -> dict:
    """The JSON-safe config a worker builds its copy of ``module`` from."""
    return dataclasses.asdict(module.config)


if __name__ == "__main__":
    main()
