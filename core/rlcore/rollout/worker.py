"""A rollout worker process: ``python -m rlcore.rollout.worker``, started by the launcher.

It holds its own inference copy of the actor and answers trainer rank 0 over the rollout group
(:mod:`rlcore.rollout.wire`): ``init`` builds the model, ``weights`` loads a version and scores
the probe (the sync check), ``generate`` samples jobs, ``close`` ends it. It exits when its
launcher dies, so a killed run leaves no worker behind.
"""

from __future__ import annotations

import dataclasses
import os
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


class Worker:
    """The state of one worker: its module and the weight version it holds."""

    def __init__(self, group) -> None:
        self.group, self.module, self.version = group, None, -1

    def handle(self, kind: str, meta: dict, tensors: dict) -> bool:
        """Act on one message; False once told to close."""
        from rlcore.models.config import TransformerConfig
        from rlcore.models.transformer import Transformer

        if kind == "init":
            self.module = Transformer(TransformerConfig(**meta["model"])).eval()
        elif kind == "weights":
            self.module.load_state_dict(tensors, strict=False)
            self.version = int(meta["version"])
            probe = probe_logprobs(self.module, torch.tensor(meta["probe"]))
            wire.send(self.group, 0, "probe", {}, {"logprobs": probe})
        elif kind == "generate":
            self.generate(meta, tensors)
        elif kind == "close":
            return False
        return True

    def generate(self, meta: dict, tensors: dict) -> None:
        from rlcore.models.generation import GenerationConfig, generate

        config = GenerationConfig(**meta["config"])
        out_meta, out = {"version": self.version, "finish": [], "masked": []}, {}
        for j, job in enumerate(meta["jobs"]):
            prompts = [p.tolist() for p in wire.unpack(tensors[f"prompts{j}"],
                                                       tensors[f"prompt_lengths{j}"])]
            generator = torch.Generator().manual_seed(int(job["seed"]))
            with torch.no_grad():
                res = generate(self.module, prompts, config, generator=generator)
            eos = set(config.eos_token_ids)
            out_meta["finish"].append(["stop" if int(t[-1]) in eos else "length"
                                       for t in res.tokens])
            out[f"tokens{j}"], out[f"lengths{j}"] = wire.pack(res.tokens)
            out[f"logprobs{j}"], _ = wire.pack([lp.float() for lp in res.logprobs])
            cut = [k for k in res.kept if k is not None]
            out_meta["masked"].append([k is not None for k in res.kept])
            if cut:  # what sampling kept, compact: ids + per-token counts
                out[f"kept_ids{j}"], _ = wire.pack([k.ids for k in cut])
                out[f"kept_counts{j}"], _ = wire.pack([k.counts for k in cut])
        wire.send(self.group, 0, "rollout", out_meta, out)


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
    worker = Worker(group)
    while worker.handle(*wire.recv(group, 0)):
        pass


def model_config(module) -> dict:
    """The JSON-safe config a worker builds its copy of ``module`` from."""
    return dataclasses.asdict(module.config)


if __name__ == "__main__":
    main()
