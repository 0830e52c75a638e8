"""Backends wrap a role's model: a DeepSpeed-trained :class:`TrainableModel` for
trainable roles, a :class:`FrozenModel` for frozen ones. The core registers them as
``rlcore_backends`` records (``deepspeed`` and ``inference``), so a plugin can add
another the same way.

A backend is built from its options and ``wrap``s an ``nn.Module`` into the
backend's model wrapper. Both satisfy :class:`rlcore.runtime.protocols.WrappedModel`
(and the backends :class:`~rlcore.runtime.protocols.Backend`): ``module``,
``__call__``, ``train``/``eval``, ``version`` (optimizer steps so far),
``on_active``/``on_idle``, ``full_state_dict`` and ``save_state``/``load_state``.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from rlcore.runtime import distributed
from rlcore.runtime.options import DeepSpeedOptions, InferenceOptions, validate_deepspeed
from rlcore.runtime.schedule import lr_factor

if TYPE_CHECKING:
    from rlcore.runtime.protocols import Backend, TrainableWrappedModel, WrappedModel

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def deepspeed_config(opts: DeepSpeedOptions) -> dict[str, Any]:
    """The DeepSpeed JSON config for ``opts`` (one sample-batch per micro step)."""
    zero: dict[str, Any] = {"stage": opts.zero_stage}
    if opts.offload_optimizer:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": torch.cuda.is_available()}
    cfg: dict[str, Any] = {
        "train_micro_batch_size_per_gpu": 1,
        "gradient_accumulation_steps": opts.grad_accum_steps,
        "gradient_clipping": float(opts.grad_clip),
        "zero_optimization": zero,
        "bf16": {"enabled": opts.dtype == "bf16"},
        "fp16": {"enabled": opts.dtype == "fp16", "initial_scale_power": 16},
        "steps_per_print": 2**31 - 1,
        "wall_clock_breakdown": False,
        "zero_allow_untested_optimizer": True,
    }
    if opts.offload_optimizer and opts.cpu_optimizer == "torch":
        cfg["zero_force_ds_cpu_optimizer"] = False
    _merge(cfg, opts.ds_config)
    return cfg


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> None:
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = v


def _param_groups(module: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    # No decay on biases and norm weights (1-d tensors), as is usual for transformers.
    decay, no_decay = [], []
    for p in module.parameters():
        if p.requires_grad:
            (decay if p.dim() >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return [g for g in groups if g["params"]]


def torch_adamw(groups: list[dict[str, Any]], **kwargs: Any) -> torch.optim.AdamW:
    """torch's AdamW with its fused kernel (CPU and CUDA since torch 2.4), else the multi-tensor
    ``foreach`` one; never torch's CPU default, a Python loop over every parameter."""
    try:
        return torch.optim.AdamW(groups, fused=True, **kwargs)
    except RuntimeError:  # a device or dtype without the fused kernel
        return torch.optim.AdamW(groups, foreach=True, **kwargs)


class TrainableModel:
    """The deepspeed backend's model wrapper: a DeepSpeed engine (``ds_engine``) plus the
    bookkeeping the runtime needs.

    Call it like the module; ``backward(loss)`` then ``step()`` per micro step.
    ``step()`` returns ``{"lr", "grad_norm"}`` (and ``moe/aux_loss`` for a mixture of experts)
    on the micro step that updated the weights (every ``grad_accum_steps``), else ``{}``.
    """

    trainable = True

    def __init__(self, ds_engine: Any, options: DeepSpeedOptions, total_steps: int):
        self.ds_engine = ds_engine
        self.options = options
        self.total_steps = total_steps
        self._moe_aux: list[torch.Tensor] = []  # router aux losses of this optimizer step's micro steps

    @property
    def module(self) -> nn.Module:
        return self.ds_engine.module

    @property
    def device(self) -> torch.device:
        return self.ds_engine.device

    @property
    def dtype(self) -> torch.dtype:
        return DTYPES[self.options.dtype]

    @property
    def version(self) -> int:
        """Optimizer steps applied so far (the parameter version)."""
        return int(self.ds_engine.global_steps)

    @property
    def lr(self) -> float:
        return float(self.ds_engine.optimizer.param_groups[0]["lr"])

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.ds_engine(*args, **kwargs)

    def train(self) -> TrainableModel:
        self.ds_engine.train()
        return self

    def eval(self) -> TrainableModel:
        self.ds_engine.eval()
        return self

    def backward(self, loss: torch.Tensor) -> None:
        self.ds_engine.backward(self._with_moe_aux_loss(loss))

    def _with_moe_aux_loss(self, loss: torch.Tensor) -> torch.Tensor:
        """``loss`` plus ``moe_aux_loss_coef`` x the router load-balancing loss of the forward
        being trained (mixture-of-experts models only); the loss is kept for ``moe/aux_loss``."""
        from rlcore.models.moe import aux_loss

        aux = aux_loss(self.module, clear=True)
        if aux is None or not aux.requires_grad:
            return loss
        self._moe_aux.append(aux.detach())
        coef = self.options.moe_aux_loss_coef
        return loss + coef * aux.to(loss.dtype) if coef else loss

    def is_boundary(self) -> bool:
        """Whether the next ``step()`` updates the weights."""
        return bool(self.ds_engine.is_gradient_accumulation_boundary())

    def step(self) -> dict[str, float]:
        boundary = self.is_boundary()
        lr = self.lr
        # ZeRO-0 without fp16/bf16 steps a plain torch optimizer, which reports no norm:
        # measure it here, after the gradient all-reduce and before clipping, as ZeRO does.
        own = self._grad_norm() if boundary and not self._optimizer_reports_norm() else None
        self.ds_engine.step()
        if not boundary:
            return {}
        norm = self.ds_engine.get_global_grad_norm()
        norm = own if norm is None else norm
        out = {"lr": lr}
        if norm is not None:
            out["grad_norm"] = float(norm)
        if self._moe_aux:
            out["moe/aux_loss"] = float(torch.stack(self._moe_aux).mean())
            self._moe_aux.clear()
        return out

    def _optimizer_reports_norm(self) -> bool:
        # ZeRO 1-3 optimizers report it; their ranks hold gradient shards, not all of them.
        return self.options.zero_stage > 0 or hasattr(self.ds_engine.optimizer,
                                                       "_global_grad_norm")

    def _grad_norm(self) -> float | None:
        """The global 2-norm of the (already all-reduced) gradients; None when there are none."""
        norms = [p.grad.detach().float().norm() for p in self.module.parameters()
                 if p.grad is not None]
        return float(torch.stack(norms).norm()) if norms else None

    def on_active(self) -> None:
        """Trainable roles stay in place (optimizer offload is DeepSpeed's)."""

    def on_idle(self) -> None:
        """See on_active."""

    @contextlib.contextmanager
    def gathered_parameters(self):
        """Full parameters on every rank for the duration (a no-op below ZeRO-3).

        ZeRO-3's module hooks are lifted meanwhile, so calls of the bare module (generation,
        whose decode steps differ between ranks) neither gather again nor disturb the
        parameter coordinator's trace; they are put back, with a fresh trace, on exit.
        """
        if self.options.zero_stage == 3:
            from deepspeed.runtime.zero.stage3 import unwrap_model_for_generation

            with unwrap_model_for_generation(self.ds_engine):
                yield
        else:
            yield

    def full_state_dict(self) -> dict[str, torch.Tensor]:
        """The complete weights, gathered across ranks under ZeRO-3 (call on every rank); with
        LoRA, under peft's names (``rlcore.models.lora`` has the base, adapters and merge)."""
        with self.gathered_parameters():
            return {k: v.detach().to("cpu", copy=True) for k, v in self.module.state_dict().items()}

    def save_state(self, path: str | os.PathLike) -> None:
        """Module, optimizer, scheduler and counters as safetensors + JSON (collective).

        Rank 0 writes ``engine.*``; under ZeRO 1-3 every rank also writes its optimizer
        partition as ``optimizer-rank-NNNNN.*``. Nothing is pickled (see ``safe_state``).
        """
        from rlcore.runtime.safe_state import save_tree

        eng, path = self.ds_engine, Path(path)
        path.mkdir(parents=True, exist_ok=True)
        module = eng.module.state_dict()  # on every rank, as DeepSpeed does
        if getattr(eng.module, "lora_base", None):  # LoRA on a base on disk: the adapters only
            from rlcore.models.lora import trainable_keys

            module = {k: module[k] for k in trainable_keys(module)}
        if distributed.rank() == 0:
            state = {
                "module": module,
                "lr_scheduler": eng.lr_scheduler.state_dict() if eng.lr_scheduler else None,
                "global_steps": eng.global_steps,
                "global_samples": eng.global_samples,
                "skipped_steps": eng.skipped_steps,
                "optimizer": None if eng.zero_optimization() else eng.optimizer.state_dict(),
            }
            save_tree(state, path / "engine")
        if eng.zero_optimization():
            save_tree(eng.optimizer.state_dict(), path / f"optimizer-rank-{distributed.rank():05d}")

    def load_state(self, path: str | os.PathLike) -> None:
        """Restore what ``save_state`` wrote (collective: every rank), as DeepSpeed's loader would."""
        from rlcore.runtime.safe_state import load_tree

        eng, path = self.ds_engine, Path(path)
        state = load_tree(path / "engine")
        if eng.zero_optimization_partition_weights():  # ZeRO-3: parameters come back from the
            sharded = {n for n, p in eng.module.named_parameters() if hasattr(p, "ds_id")}
            eng.module.load_state_dict(  # optimizer's fp32 partitions; buffers from here
                {k: v for k, v in state["module"].items() if k not in sharded}, strict=False)
        else:
            from rlcore.models.lora import has_adapters

            eng.module.load_state_dict(state["module"], strict=not has_adapters(eng.module))
        if eng.zero_optimization():
            mine = load_tree(path / f"optimizer-rank-{distributed.rank():05d}")
            partitions: list[Any] = [None] * distributed.world_size()
            partitions[distributed.rank()] = mine  # a rigid ZeRO load reads only its own
            eng.optimizer.load_state_dict(
                state_dict_list=partitions, load_optimizer_states=True,
                load_from_fp32_weights=eng.zero_load_from_fp32_weights(),
                checkpoint_folder=None, load_serial=None, param_shapes=eng._get_zero_param_shapes())
        elif eng.fp16_enabled() or eng.bfloat16_enabled():
            eng.optimizer.load_state_dict(state["optimizer"], load_optimizer_states=True)
        else:
            eng.optimizer.load_state_dict(state["optimizer"])
        if eng.lr_scheduler is not None:
            eng.lr_scheduler.load_state_dict(state["lr_scheduler"])
        eng.global_steps = state["global_steps"]
        eng.global_samples = state["global_samples"]
        eng.skipped_steps = state["skipped_steps"]


class DeepSpeedBackend:
    """Trainable roles: ZeRO 0-3, fp32/bf16/fp16, accumulation, clipping, schedules, offload."""

    options_class: ClassVar[type[DeepSpeedOptions]] = DeepSpeedOptions
    trainable: ClassVar[bool] = True
    needs_model: ClassVar[bool] = True

    def __init__(self, options: DeepSpeedOptions | None = None):
        self.options = options or DeepSpeedOptions()
        validate_deepspeed(self.options)

    def wrap(self, module: nn.Module, *, total_steps: int) -> TrainableModel:
        """Wrap ``module`` in a DeepSpeed engine; ``total_steps`` sizes the schedule."""
        import deepspeed

        distributed.init()
        opts = self.options
        from deepspeed.accelerator import get_accelerator

        if opts.dtype == "fp16" and not get_accelerator().is_fp16_supported():
            from rlcore.errors import ConfigError

            raise ConfigError(
                f"dtype fp16 is not supported on {get_accelerator().device_name()} by DeepSpeed; "
                "use bf16 or fp32 here (fp16 needs a GPU)"
            )
        o = opts.optimizer
        groups = _param_groups(module, o.weight_decay)
        kwargs = dict(lr=o.lr, betas=(o.beta1, o.beta2), eps=o.eps, weight_decay=o.weight_decay)
        if opts.offload_optimizer and opts.cpu_optimizer == "deepspeed":
            from deepspeed.ops.adam import DeepSpeedCPUAdam

            from rlcore.runtime.jit_ops import prepare_build

            prepare_build("cpu_adam")
            optimizer = DeepSpeedCPUAdam(groups, adamw_mode=True, **kwargs)
        else:
            optimizer = torch_adamw(groups, **kwargs)
        total = max(1, int(total_steps))
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: lr_factor(opts.scheduler, step, total)
        )
        ds_engine, _, _, _ = deepspeed.initialize(
            model=module,
            optimizer=optimizer,
            lr_scheduler=scheduler,
            config=deepspeed_config(opts),
            dist_init_required=False,
        )
        return TrainableModel(ds_engine, opts, total)


class FrozenModel:
    """The inference backend's model wrapper: eval mode, no gradients; optionally parked
    on the CPU while idle."""

    trainable = False

    def __init__(self, module: nn.Module, options: InferenceOptions, device: torch.device):
        self.options = options
        self.version = 0  # a weight sync sets it to the version of the role it follows
        self._device = torch.device(device)
        self.module = module.to(DTYPES[options.dtype]).eval().requires_grad_(False)
        self.offloaded = False
        if options.offload_when_idle:
            self.on_idle()
        else:
            self.module.to(self._device)

    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def dtype(self) -> torch.dtype:
        return DTYPES[self.options.dtype]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.offloaded:
            self.on_active()
        with torch.no_grad():
            return self.module(*args, **kwargs)

    def train(self) -> FrozenModel:
        return self  # frozen roles never train

    def eval(self) -> FrozenModel:
        return self

    def on_active(self) -> None:
        """Bring the weights to the device before a call."""
        if self.offloaded:
            self.module.to(self._device)
            self.offloaded = False

    def on_idle(self) -> None:
        """Park the weights on the CPU after a call (when ``offload_when_idle``)."""
        if self.options.offload_when_idle and not self.offloaded:
            self.module.to("cpu")
            self.offloaded = True
            if torch.cuda.is_available():
                torch.cuda.empty_cache()

    def full_state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().to("cpu", copy=True) for k, v in self.module.state_dict().items()}

    def gathered_parameters(self) -> contextlib.AbstractContextManager[None]:
        """Frozen weights are whole on every rank already."""
        return contextlib.nullcontext()

    def save_state(self, path: str | os.PathLike) -> None:
        """Frozen weights never change: nothing to save beyond the model files."""

    def load_state(self, path: str | os.PathLike) -> None:
        """See save_state."""


class InferenceBackend:
    """Frozen roles (reference and reward models)."""

    options_class: ClassVar[type[InferenceOptions]] = InferenceOptions
    trainable: ClassVar[bool] = False
    needs_model: ClassVar[bool] = True

    def __init__(self, options: InferenceOptions | None = None):
        self.options = options or InferenceOptions()

    def wrap(self, module: nn.Module, *, total_steps: int = 0) -> FrozenModel:
        distributed.init()
        return FrozenModel(module, self.options, distributed.device())


class NoModel:
    """The wrapper of a role without a neural model (a reward function, a remote service)."""

    module = None
    trainable = False
    version = 0
    dtype = torch.float32

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from rlcore.errors import RlcoreError

        raise RlcoreError("this role has no neural model to call (backend 'none'); its "
                          "interface must compute its outputs itself")

    def train(self) -> NoModel:
        return self

    def eval(self) -> NoModel:
        return self

    def on_active(self) -> None:
        """Nothing to move."""

    def on_idle(self) -> None:
        """Nothing to move."""

    def full_state_dict(self) -> dict[str, torch.Tensor]:
        return {}

    def gathered_parameters(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def save_state(self, path: str | os.PathLike) -> None:
        """No state."""

    def load_state(self, path: str | os.PathLike) -> None:
        """No state."""


class NoModelBackend:
    """Roles without a neural model: the experiment builds no module for them."""

    options_class: ClassVar[type[InferenceOptions]] = InferenceOptions
    trainable: ClassVar[bool] = False
    needs_model: ClassVar[bool] = False

    def __init__(self, options: InferenceOptions | None = None):
        self.options = options or InferenceOptions()

    def wrap(self, module: None, *, total_steps: int = 0) -> NoModel:
        return NoModel()


if TYPE_CHECKING:  # the built-ins satisfy the contract of rlcore.runtime.protocols
    _backends: tuple[type[Backend], ...] = (DeepSpeedBackend, InferenceBackend, NoModelBackend)
    _trainable: type[TrainableWrappedModel] = TrainableModel
    _frozen: tuple[type[WrappedModel], ...] = (FrozenModel, NoModel)
