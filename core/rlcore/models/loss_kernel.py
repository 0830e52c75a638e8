"""Which kernel scores token log-probs: the portable chunked head, or Liger's fused linear CE on CUDA.

``chunked`` (default) is :mod:`rlcore.models.token_logprobs`, on any device. ``liger`` runs
Liger-Kernel's fused linear cross-entropy (Triton, CUDA only; ``pip install 'rlcore[liger]'``).
``auto`` is ``liger`` on a CUDA model when the package is installed, else ``chunked``. Liger has
no logits mask or entropy, so queries that ask for either go through the chunked head anyway.
"""

from __future__ import annotations

import importlib.util

import torch

from rlcore.errors import ConfigError

LOSS_KERNELS = ("chunked", "liger", "auto")


def liger_installed() -> bool:
    """Whether the ``liger_kernel`` package can be imported."""
    return importlib.util.find_spec("liger_kernel") is not None


def check_loss_kernel(name: str, where: str = "loss_kernel", cuda: bool | None = None) -> str:
    """Return ``name`` if it can run here (``cuda``: default, whether CUDA is available), else raise."""
    if name not in LOSS_KERNELS:
        raise ConfigError(f"{where}={name!r} is not a loss kernel; choose one of {', '.join(LOSS_KERNELS)}")
    if name != "liger":
        return name
    if not liger_installed():
        raise ConfigError(f"{where}=liger needs the liger-kernel package (CUDA only): "
                          f"pip install 'rlcore[liger]', or set {where}=chunked (any device) "
                          "or auto (liger where it can run)")
    if not (torch.cuda.is_available() if cuda is None else cuda):
        raise ConfigError(f"{where}=liger runs on CUDA only (Liger's Triton kernels) and this model "
                          f"is not on a CUDA device; set {where}=chunked or auto")
    return name


def use_liger(name: str, device: torch.device) -> bool:
    """Whether kernel ``name`` means Liger for a model on ``device`` (raises if it cannot run)."""
    if name == "auto":
        return device.type == "cuda" and liger_installed()
    return check_loss_kernel(name, cuda=device.type == "cuda") == "liger"


def liger_logprobs(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                   temperature: float) -> torch.Tensor:
    """fp32 log-probs ``[N]`` of ``targets`` under ``hidden [N, C] @ weight.T / temperature`` (Liger)."""
    from liger_kernel.transformers.functional import liger_fused_linear_cross_entropy

    if temperature != 1.0:  # (h / t) W^T = (h W^T) / t: the same logits, scaled before the matmul
        hidden = hidden / temperature
    loss = liger_fused_linear_cross_entropy(hidden, weight, targets, reduction="none",
                                            accum_dtype=torch.float32)
    return -loss.float()
