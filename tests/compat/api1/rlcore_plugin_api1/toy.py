"""A tiny real training flow, as rlcore 0.1.0's runtime tests wrote it (plugin API 1).

A frozen "teacher" (inference backend) labels each token's features; a "student"
MLP with dropout (DeepSpeed backend) regresses onto those labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from rlcore.data.batch import PackedBatch
from rlcore.dfg import MFC
from rlcore.runtime.experiment import Experiment, RoleSpec
from rlcore.runtime.interface import ModelHandle, ModelInterface
from rlcore.runtime.options import (
    DeepSpeedOptions,
    InferenceOptions,
    OptimizerOptions,
    RunOptions,
    SchedulerOptions,
)

DIM = 4


class TokenDataset:
    """``n`` samples of 2..7 tokens, each token ``DIM`` float features."""

    def __init__(self, n: int, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.samples = []
        for i in range(n):
            t = int(torch.randint(2, 8, (1,), generator=g))
            x = torch.randn(t, DIM, generator=g)
            self.samples.append(PackedBatch([f"s{i}"], {"x": x}, {"x": [[t]]}))

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> PackedBatch:
        return self.samples[i]

    def num_tokens(self, i: int) -> int:
        return self.samples[i].num_tokens()

    def collate(self, samples: list[PackedBatch]) -> PackedBatch:
        return PackedBatch.concat(samples)


class Teacher(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(DIM, 1)

    def forward(self, x):
        return torch.sin(3 * self.proj(x)).squeeze(-1)


class Student(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(DIM, 32), nn.Tanh(), nn.Dropout(0.1), nn.Linear(32, 1))

    def forward(self, x):
        return self.net(x).squeeze(-1)


class LabelInterface(ModelInterface):
    """inference: ``features`` -> ``pred`` (one value per token)."""

    def inference(self, model: ModelHandle, data: PackedBatch) -> PackedBatch:
        x = data.data["features"].to(model.device, model.engine.dtype)
        pred = model.engine(x).float().cpu()
        return PackedBatch(data.ids, {"pred": pred}, {"pred": data.seqlens["features"]})


class RegressionInterface(ModelInterface):
    """train_step: MSE of the student on ``x`` against ``target``."""

    def train_step(self, model: ModelHandle, data: PackedBatch) -> dict[str, float]:
        x = data.data["x"].to(model.device, model.engine.dtype)
        y = data.data["target"].to(model.device).float()
        loss = ((model.engine(x).float() - y) ** 2).mean()
        model.engine.backward(loss)
        stats = model.engine.step()
        return {"loss": loss.item(), "tokens": float(x.shape[0]), **stats}

    def save(self, model: ModelHandle, path: str) -> None:
        from pathlib import Path

        (Path(path) / "regression.txt").write_text(f"version {model.version}\n")


@dataclass
class ToyConfig:
    run: RunOptions = field(default_factory=lambda: RunOptions(batch_size=8, epochs=3,
                                                               progress=False))
    student: DeepSpeedOptions = field(default_factory=lambda: DeepSpeedOptions(
        optimizer=OptimizerOptions(lr=3e-2),
        scheduler=SchedulerOptions(kind="cosine", warmup_steps=2, min_lr_ratio=0.1)))
    teacher: InferenceOptions = field(default_factory=InferenceOptions)
    n_samples: int = 64
    n_minibatches: int = 1


class ToyExperiment(Experiment):
    name = "api1_regression"
    config_class = ToyConfig

    def roles(self):
        c = self.config
        return [RoleSpec("teacher", options=c.teacher),
                RoleSpec("student", trainable=True, options=c.student)]

    def mfcs(self):
        c = self.config
        return [
            MFC("train", "student", "train_step", "api1_regression",
                ["x", "target"], n_minibatches=c.n_minibatches),
            MFC("label", "teacher", "inference", "api1_label", ["x"],
                ["target"], input_remap={"x": "features"}, output_remap={"pred": "target"}),
        ]

    def dataset_keys(self):
        return ["x"]

    def build_dataset(self, tokenizer):
        return TokenDataset(self.config.n_samples)

    def evaluate(self, step, handles):
        """MSE of the student against the teacher on a fixed held-out set."""
        held_out = TokenDataset(16, seed=7)
        x = torch.cat([s.data["x"] for s in held_out.samples])
        student, teacher = handles["student"].engine, handles["teacher"].engine
        student.eval()
        with torch.no_grad():
            pred = student(x.to(student.device, student.dtype)).float().cpu()
        target = teacher(x.to(teacher.device, teacher.dtype)).float().cpu()
        return {"mse": float(((pred - target) ** 2).mean())}

    def build_model(self, role, tokenizer):
        # Same weights on every rank: seeded per role, independent of call order.
        torch.manual_seed(1234 if role.name == "teacher" else 99)
        return (Teacher() if role.name == "teacher" else Student()), None
