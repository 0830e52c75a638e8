"""DeepSpeed and inference backends in one process on CPU (gloo)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rlcore.runtime.backends import (
    DeepSpeedBackend,
    InferenceBackend,
    deepspeed_config,
    torch_adamw,
)
from rlcore.runtime.options import (
    DeepSpeedOptions,
    InferenceOptions,
    OptimizerOptions,
    SchedulerOptions,
)
from rlcore.runtime.schedule import lr_factor


def data(seed=0, n=32):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    return x, torch.sin(x.sum(-1, keepdim=True))


def mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 1))


def train(model, steps, x, y):
    losses = []
    for _ in range(steps):
        loss = ((model(x.to(model.dtype)).float() - y) ** 2).mean()
        model.backward(loss)
        model.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("stage", [0, 1, 2, 3])
def test_zero_stages_learn(stage):
    x, y = data()
    model = DeepSpeedBackend(DeepSpeedOptions(zero_stage=stage, optimizer=OptimizerOptions(lr=3e-2))
                             ).wrap(mlp(), total_steps=20)
    losses = train(model, 20, x, y)
    assert losses[-1] < 0.5 * losses[0]
    assert model.version == 20
    sd = model.full_state_dict()
    assert sd["0.weight"].shape == (16, 4)  # full, also under ZeRO-3


def test_stages_agree_on_fp32():
    x, y = data()
    runs = [train(DeepSpeedBackend(DeepSpeedOptions(zero_stage=s, optimizer=OptimizerOptions(
        lr=1e-2))).wrap(mlp(), total_steps=5), 5, x, y) for s in (0, 3)]
    assert runs[0] == pytest.approx(runs[1], rel=1e-5)


def test_bf16_trains_in_bf16():
    x, y = data()
    model = DeepSpeedBackend(DeepSpeedOptions(zero_stage=1, dtype="bf16",
                                              optimizer=OptimizerOptions(lr=3e-2))
                             ).wrap(mlp(), total_steps=20)
    assert next(model.module.parameters()).dtype == torch.bfloat16
    losses = train(model, 20, x, y)
    assert losses[-1] < 0.6 * losses[0]


def test_gradient_accumulation_equals_the_full_batch():
    x, y = data(n=8)
    full = DeepSpeedBackend(DeepSpeedOptions(grad_clip=0, optimizer=OptimizerOptions(lr=0.1))
                            ).wrap(mlp(), total_steps=1)
    train(full, 1, x, y)
    acc = DeepSpeedBackend(DeepSpeedOptions(grad_clip=0, grad_accum_steps=2,
                                            optimizer=OptimizerOptions(lr=0.1))
                           ).wrap(mlp(), total_steps=1)
    stats = []
    for xs, ys in ((x[:4], y[:4]), (x[4:], y[4:])):
        acc.backward(((acc(xs) - ys) ** 2).mean())
        stats.append(acc.step())
    assert stats[0] == {} and {"lr", "grad_norm"} <= set(stats[1])  # clipping off too
    assert acc.version == 1
    for a, b in zip(full.module.parameters(), acc.module.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_grad_norm_is_reported_at_every_zero_stage():
    """The pre-clipping norm, the same at every stage (ZeRO-0 measures it itself)."""
    x, y = data()
    norms = []
    for stage in (0, 1, 2, 3):
        model = DeepSpeedBackend(DeepSpeedOptions(zero_stage=stage, grad_clip=1e-3)
                                 ).wrap(mlp(), total_steps=1)
        model.backward(((model(x) - y) ** 2).mean())
        norms.append(model.step()["grad_norm"])
    reference = mlp()
    ((reference(x) - y) ** 2).mean().backward()
    expected = torch.cat([p.grad.flatten() for p in reference.parameters()]).norm().item()
    assert norms == pytest.approx([expected] * 4, rel=1e-4)


def test_gradient_clipping_bounds_the_update():
    # With a large Adam eps the update is ~ lr * grad, so clipping shows in its size.
    x, y = data()

    def update(clip):
        opts = DeepSpeedOptions(grad_clip=clip, optimizer=OptimizerOptions(lr=1.0, eps=1e3))
        model = DeepSpeedBackend(opts).wrap(mlp(), total_steps=1)
        before = [p.detach().clone() for p in model.module.parameters()]
        train(model, 1, x, y)
        delta = torch.cat([(p - b).flatten() for p, b in zip(model.module.parameters(), before,
                                                             strict=True)])
        return delta.norm().item()

    unclipped, clipped = update(0.0), update(1e-3)
    assert clipped < 0.05 * unclipped


def test_schedule_drives_the_optimizer():
    x, y = data()
    sched = SchedulerOptions(kind="cosine", warmup_steps=2, min_lr_ratio=0.1)
    model = DeepSpeedBackend(DeepSpeedOptions(optimizer=OptimizerOptions(lr=0.5), scheduler=sched)
                             ).wrap(mlp(), total_steps=8)
    seen = []
    for _ in range(8):
        model.backward(((model(x) - y) ** 2).mean())
        seen.append(model.step()["lr"])
    assert seen == pytest.approx([0.5 * lr_factor(sched, s, 8) for s in range(8)])
    assert seen[0] == pytest.approx(0.25) and seen[-1] == pytest.approx(0.05)


def test_optimizer_cpu_offload_trains():
    x, y = data()
    opts = DeepSpeedOptions(zero_stage=2, offload_optimizer=True, cpu_optimizer="torch",
                            optimizer=OptimizerOptions(lr=3e-2))
    cfg = deepspeed_config(opts)
    assert cfg["zero_optimization"]["offload_optimizer"]["device"] == "cpu"
    model = DeepSpeedBackend(opts).wrap(mlp(), total_steps=15)
    assert model.ds_engine.zero_cpu_offload()
    losses = train(model, 15, x, y)
    assert losses[-1] < 0.6 * losses[0]


@pytest.mark.parametrize("stage", [0, 2])
def test_the_fused_adamw_kernel_is_what_steps(stage, monkeypatch):
    import torch.optim.adam as adam

    calls = {"fused": 0, "single": 0}

    def counting(name, fn):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return fn(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(adam, "_fused_adam", counting("fused", adam._fused_adam))
    monkeypatch.setattr(adam, "_single_tensor_adam", counting("single", adam._single_tensor_adam))
    x, y = data()
    model = DeepSpeedBackend(DeepSpeedOptions(zero_stage=stage)).wrap(mlp(), total_steps=3)
    train(model, 3, x, y)
    groups = sum(1 for g in model.ds_engine.basic_optimizer.param_groups if g["params"])
    assert calls == {"fused": 3 * groups, "single": 0}  # torch steps each param group apart


def test_fused_adamw_matches_the_single_tensor_loop():
    x, y = data()
    kwargs = dict(lr=1e-2, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    models = [mlp(), mlp()]
    fused = torch_adamw([{"params": list(models[0].parameters())}], **kwargs)
    single = torch.optim.AdamW(models[1].parameters(), foreach=False, fused=False, **kwargs)
    assert fused.defaults["fused"] and not single.defaults["fused"]
    for _ in range(5):
        for model, opt in zip(models, (fused, single), strict=True):
            opt.zero_grad()
            ((model(x) - y) ** 2).mean().backward()
            opt.step()
    for a, b in zip(models[0].parameters(), models[1].parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_ds_config_passthrough_and_dtypes():
    cfg = deepspeed_config(DeepSpeedOptions(dtype="fp16", grad_accum_steps=4, grad_clip=0.5,
                                            ds_config={"zero_optimization": {"stage3_prefetch_bucket_size": 7}}))
    assert cfg["fp16"]["enabled"] and not cfg["bf16"]["enabled"]
    assert cfg["gradient_accumulation_steps"] == 4 and cfg["gradient_clipping"] == 0.5
    assert cfg["zero_optimization"] == {"stage": 0, "stage3_prefetch_bucket_size": 7}


def test_inference_backend_is_frozen_and_offloads():
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Linear(8, 1))
    model = InferenceBackend(InferenceOptions(offload_when_idle=True)).wrap(module)
    assert not model.trainable and model.offloaded
    x = torch.randn(5, 4)
    out1, out2 = model(x), model(x)
    assert not model.offloaded  # brought back for the call
    torch.testing.assert_close(out1, out2)  # eval mode: dropout off
    assert not out1.requires_grad
    assert all(not p.requires_grad for p in model.module.parameters())
    model.on_idle()
    assert model.offloaded and next(model.module.parameters()).device.type == "cpu"
    bf = InferenceBackend(InferenceOptions(dtype="bf16")).wrap(nn.Linear(4, 1))
    assert next(bf.module.parameters()).dtype == torch.bfloat16 and not bf.offloaded


def test_fp16_without_support_is_a_clear_error():
    from deepspeed.accelerator import get_accelerator

    from rlcore.errors import ConfigError

    if get_accelerator().is_fp16_supported():
        pytest.skip("this device trains in fp16")
    with pytest.raises(ConfigError, match="fp16 is not supported on cpu"):
        DeepSpeedBackend(DeepSpeedOptions(dtype="fp16")).wrap(mlp(), total_steps=1)


def test_zero3_core_transformer_saves_hf_weights_that_load_back(tmp_path):
    from rlcore.models.hf_io import load_pretrained
    from rlcore.models.transformer import Transformer
    from rlcore.plugins import registry
    from rlcore.runtime.checkpoint import save_weights
    from rlcore.runtime.interface import ModelHandle

    families = registry.items("families")
    if not families:
        pytest.skip("no model family plugin is installed")
    name = "llama" if "llama" in families else next(iter(families))
    cfg = registry.load("families", name).tiny_config()
    torch.manual_seed(0)
    model = DeepSpeedBackend(DeepSpeedOptions(zero_stage=3)).wrap(Transformer(cfg), total_steps=1)
    ids = torch.randint(0, cfg.vocab_size, (10,))
    cu = torch.tensor([0, 4, 10], dtype=torch.int32)
    model.eval()
    with torch.no_grad():
        expected = model(ids, cu)
    save_weights(ModelHandle("actor", model.module, model, family=name), tmp_path)
    assert (tmp_path / "config.json").exists() and (tmp_path / "model.safetensors").exists()
    back, family = load_pretrained(tmp_path)
    assert family == name
    with torch.no_grad():
        torch.testing.assert_close(back(ids, cu), expected)
    with torch.no_grad():  # the wrapped model's own (partitioned) parameters are untouched
        torch.testing.assert_close(model(ids, cu), expected)


def test_a_backend_written_before_needs_model_and_trainable_keeps_the_old_defaults(monkeypatch):
    import sys
    import types
    import warnings

    from rlcore.runtime.roles import backend_class

    class Legacy:  # neither needs_model nor trainable, as the protocol once allowed
        options_class = InferenceOptions

        def __init__(self, options):
            self.options = options

        def wrap(self, module, *, total_steps):
            return InferenceBackend(self.options).wrap(module)

    mod = types.ModuleType("legacy_backend")
    mod.Legacy = Legacy
    monkeypatch.setitem(sys.modules, "legacy_backend", mod)
    with pytest.warns(DeprecationWarning) as record:
        cls = backend_class("legacy_backend:Legacy")
    messages = [str(w.message) for w in record if w.category is DeprecationWarning]
    assert len(messages) == 2 and "'needs_model'" in messages[0] and "'trainable'" in messages[1]
    assert cls.needs_model is True and cls.trainable is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per class
        assert backend_class("legacy_backend:Legacy") is Legacy
    assert backend_class("inference") is InferenceBackend and InferenceBackend.needs_model


def test_moe_aux_loss_is_logged_and_added_with_its_coefficient():
    from rlcore.models.config import TransformerConfig
    from rlcore.models.moe import aux_loss
    from rlcore.models.transformer import Transformer

    cfg = TransformerConfig(vocab_size=31, hidden_size=16, intermediate_size=16, n_layers=1,
                            n_q_heads=2, n_experts=4, n_experts_per_token=2)
    ids, cu = torch.randint(0, 31, (12,), generator=torch.Generator().manual_seed(0)), torch.tensor([0, 5, 12])
    routers = []
    for coef in (0.0, 10.0):
        torch.manual_seed(0)
        model = DeepSpeedBackend(DeepSpeedOptions(grad_clip=0, moe_aux_loss_coef=coef)
                                 ).wrap(Transformer(cfg), total_steps=1)
        loss = model(ids, cu).logsumexp(-1).mean()
        expected = aux_loss(model.module).item()
        model.backward(loss)
        routers.append(model.module.blocks[0].mlp.router.weight.grad.clone())
        assert aux_loss(model.module) is None  # consumed: a second backward cannot add it again
        assert model.step()["moe/aux_loss"] == pytest.approx(expected)
    assert not torch.equal(routers[0], routers[1])
