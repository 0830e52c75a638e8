"""User modules for the API tests, written as a user of rlcore.api would write them.

``Policy``/``Reference``: tiny core Transformers over the embedded tokenizer that
score character sequences of the embedded addition task. ``Teacher``/``Student``:
tiny torch MLPs on float features, for the mechanics of the default flow.
"""

from __future__ import annotations

import torch
from torch import nn

from rlcore.api import Module
from rlcore.data import embedded
from rlcore.models.config import TransformerConfig
from rlcore.models.transformer import Transformer


def tiny_transformer(tokenizer, seed: int) -> Transformer:
    torch.manual_seed(seed)
    cfg = TransformerConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                            n_layers=2, n_q_heads=4, max_positions=64)
    return Transformer(cfg.validate())


def token_logprobs(model, ids: torch.Tensor, cu: torch.Tensor) -> torch.Tensor:
    """log p(token t | tokens < t) for every token; 0 at each sequence's first token."""
    logits = model(ids, cu).float()
    out = torch.zeros(ids.shape[0], device=logits.device)
    out[1:] = logits[:-1].log_softmax(-1).gather(1, ids[1:, None])[:, 0]
    return out.index_fill(0, cu[:-1].long(), 0.0)


def not_first(cu: torch.Tensor, n: int) -> torch.Tensor:
    mask = torch.ones(n, dtype=torch.bool)
    mask[cu[:-1].long().cpu()] = False
    return mask


class Reference(Module):
    """Frozen: per-token log-probs of ``input_ids`` under a fixed random model."""

    input_keys = ("input_ids",)
    output_keys = ("ref_logprobs",)

    def setup(self):
        self.model = tiny_transformer(self.tokenizer, seed=0)

    def forward_step(self, data):
        ids = data.data["input_ids"].to(self.device)
        cu = data.cu_seqlens("input_ids").to(self.device)
        return {"ref_logprobs": token_logprobs(self.wrapped_model, ids, cu)}


class Policy(Module):
    """Trainable: next-token loss on ``input_ids`` plus a small penalty for drifting from
    the reference's log-probs; ``forward_step`` scores sequences (for evaluation)."""

    input_keys = ("input_ids",)
    output_keys = ("logprobs",)
    train_keys = ("input_ids", "ref_logprobs")
    drift_coef = 0.01

    def setup(self):
        self.model = tiny_transformer(self.tokenizer, seed=1)

    def forward_step(self, data):
        ids = data.data["input_ids"].to(self.device)
        cu = data.cu_seqlens("input_ids").to(self.device)
        return {"logprobs": token_logprobs(self.wrapped_model, ids, cu)}

    def train_step(self, data):
        ids = data.data["input_ids"].to(self.device)
        cu = data.cu_seqlens("input_ids").to(self.device)
        mask = not_first(cu, ids.shape[0]).to(self.device)
        lp = token_logprobs(self.wrapped_model, ids, cu)[mask]
        ref = data.data["ref_logprobs"].to(self.device)[mask]
        nll = -lp.mean()
        drift = (lp - ref).pow(2).mean()
        return {"loss": nll + self.drift_coef * drift, "nll": nll.detach(), "drift": drift.detach()}


def addition_items(n: int, split: str = "train", seed: int = 0) -> list[dict]:
    """``{"input_ids": "23+41=64"}`` items: the string is tokenized by the engine."""
    return [{"input_ids": r["prompt"] + r["answer"], "answer": int(r["answer"])}
            for r in embedded.sft_rows(n, seed=seed, split=split)]


def mean_nll(batches) -> dict[str, float]:
    """Evaluator eval_fn: mean next-token NLL over the eval set (this rank's share)."""
    total, count = 0.0, 0
    for b in batches:
        mask = not_first(b.cu_seqlens("input_ids"), b.num_tokens("input_ids"))
        total += float(-b.data["logprobs"][mask].sum())
        count += int(mask.sum())
    return {"nll": total / count, "samples": float(sum(len(b) for b in batches))}


# ---------------------------------------------------------------------- tiny torch modules

DIM = 4


class Teacher(Module):
    """Frozen: labels every token's features with a fixed nonlinear function."""

    input_keys = ("x",)
    output_keys = ("target",)

    def setup(self):
        torch.manual_seed(1234)
        self.model = nn.Linear(DIM, 1)

    def forward_step(self, data):
        x = data.data["x"].to(self.device)
        return {"target": torch.sin(3 * self.wrapped_model(x)).squeeze(-1)}


class Student(Module):
    """Trainable: regresses onto the teacher's labels; steps itself (backward/step)."""

    train_keys = ("x", "target")
    calls = 0

    def setup(self):
        torch.manual_seed(99)
        self.model = nn.Sequential(nn.Linear(DIM, 32), nn.Tanh(), nn.Linear(32, 1))

    def train_step(self, data):
        self.calls += 1
        x = data.data["x"].to(self.device)
        y = data.data["target"].to(self.device)
        loss = (self.wrapped_model(x).squeeze(-1) - y).pow(2).mean()
        self.backward(loss)
        stats = self.step()
        return {"loss": loss.item(), "tokens": float(x.shape[0]), **stats}


def feature_items(n: int, seed: int = 0) -> list[dict]:
    """Items of 2..7 tokens with DIM float features each (a 2-D array = one row per token)."""
    g = torch.Generator().manual_seed(seed)
    items = []
    for _ in range(n):
        t = int(torch.randint(2, 8, (1,), generator=g))
        items.append({"x": torch.randn(t, DIM, generator=g)})
    return items
