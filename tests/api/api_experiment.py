"""A small experiment written against the runtime directly (no rlcore.api modules),
for ``Engine.from_experiment("api_experiment:Regression", ...)``."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from rlcore.data.batch import PackedBatch
from rlcore.dfg import MFC
from rlcore.runtime.experiment import Experiment
from rlcore.runtime.interface import ModelInterface
from rlcore.runtime.options import DeepSpeedOptions, OptimizerOptions, RunOptions
from rlcore.runtime.roles import RoleSpec


class MSEInterface(ModelInterface):
    def train_step(self, handle, data):
        x, y = data.data["x"].to(handle.device), data.data["y"].to(handle.device)
        loss = (handle.model(x).squeeze(-1) - y).pow(2).mean()
        handle.model.backward(loss)
        return {"loss": loss.item(), "samples": float(len(data)), **handle.model.step()}


class LineDataset:
    """``y = 3x - 1`` on ``n`` single-token samples."""

    def __init__(self, n: int):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 1, generator=g)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return i

    def collate(self, idx):
        x = self.x[idx]
        return PackedBatch([str(i) for i in idx], {"x": x, "y": 3 * x[:, 0] - 1},
                           {"x": [[1]] * len(idx), "y": [[1]] * len(idx)})


@dataclass
class RegressionConfig:
    run: RunOptions = field(default_factory=lambda: RunOptions(max_steps=50, batch_size=8,
                                                               progress=False))
    train: DeepSpeedOptions = field(default_factory=lambda: DeepSpeedOptions(
        optimizer=OptimizerOptions(lr=5e-2)))
    n_samples: int = 64


class Regression(Experiment):
    name = "regression"
    config_class = RegressionConfig

    def roles(self):
        return [RoleSpec("model", trainable=True, options=self.config.train)]

    def mfcs(self):
        return [MFC("fit", "model", "train_step", "api_experiment:MSEInterface", ["x", "y"])]

    def build_dataset(self, tokenizer):
        return LineDataset(self.config.n_samples)

    def build_model(self, role, tokenizer):
        torch.manual_seed(0)
        return nn.Linear(1, 1), None
