"""Model handles for interface tests, and the conformance suite for interface plugins.

``make_handle(module=None, *, role="actor", trainable=False, tokenizer=None,
value_head=False, lr=1e-3, total_steps=10, options=None) -> ModelHandle`` wraps a model
(default: :func:`tiny_model`) in the backend a run would use (DeepSpeed when
``trainable``, the inference backend otherwise), so that a test calls an interface as
the executor does::

    from rlcore.testing.interfaces import InterfaceConformance, make_handle, prompt_batch

    class TestMyScorer(InterfaceConformance):
        interface = "my_scorer"                     # registered name or class
        interface_args = {"scale": 2.0}
        calls = {"inference": ("scores",)}          # method -> keys it must return

        def make_batch(self, tokenizer):
            return prompt_batch(tokenizer, ["1+1=", "2+2="], responses=["2", "4"])

``calls`` may name ``generate``, ``inference`` and ``train_step``; ``trainable`` says
whether the handle trains. ``generate``/``inference`` may return a PackedBatch or a
``(batch, metrics)`` pair, as the executor accepts.
"""

from __future__ import annotations

import json
import math
from typing import Any, ClassVar

import pytest


def tiny_model(tokenizer: Any = None, *, value_head: bool = False, seed: int = 0,
               hidden_size: int = 32, n_layers: int = 2, max_positions: int = 128) -> Any:
    """A small random core :class:`~rlcore.models.transformer.Transformer` for ``tokenizer``."""
    import torch

    from rlcore.models.config import TransformerConfig
    from rlcore.models.transformer import Transformer

    tokenizer = tokenizer if tokenizer is not None else _embedded()
    torch.manual_seed(seed)
    cfg = TransformerConfig(vocab_size=len(tokenizer), hidden_size=hidden_size,
                            intermediate_size=2 * hidden_size, n_layers=n_layers, n_q_heads=4,
                            n_kv_heads=2, value_head=value_head, tie_embeddings=False,
                            max_positions=max_positions)
    return Transformer(cfg)


def make_handle(module: Any = None, *, role: str = "actor", trainable: bool = False,
                tokenizer: Any = None, value_head: bool = False, lr: float = 1e-3,
                total_steps: int = 10, options: Any = None, family: str | None = None) -> Any:
    """A :class:`~rlcore.runtime.interface.ModelHandle` over ``module`` (default: a tiny model).

    ``trainable`` wraps it in DeepSpeed (a process group of one is created if needed)
    with ``options`` or AdamW at ``lr``; otherwise the inference backend wraps it.
    ``module=None`` with ``family=None`` builds :func:`tiny_model`.
    """
    from rlcore.runtime.backends import DeepSpeedBackend, InferenceBackend
    from rlcore.runtime.interface import ModelHandle
    from rlcore.runtime.options import DeepSpeedOptions, OptimizerOptions

    tokenizer = tokenizer if tokenizer is not None else _embedded()
    if module is None:
        module = tiny_model(tokenizer, value_head=value_head)
    if trainable:
        opts = options or DeepSpeedOptions(optimizer=OptimizerOptions(lr=lr, weight_decay=0.0))
        wrapped = DeepSpeedBackend(opts).wrap(module, total_steps=total_steps)
    else:
        wrapped = InferenceBackend(options).wrap(module)
    return ModelHandle(role, wrapped.module, wrapped, tokenizer, family=family)


def prompt_batch(tokenizer: Any, prompts: list[str], responses: list[str] | None = None,
                 metadata: dict[str, list[Any]] | None = None) -> Any:
    """A PackedBatch of ``packed_prompts`` (ids ``p0, p1, ...``), or, with ``responses``,
    of ``packed_input_ids`` + ``prompt_mask`` as the actor's ``generate`` returns them."""
    import torch

    from rlcore.data.batch import PackedBatch

    ids = [f"p{i}" for i in range(len(prompts))]
    encoded = [tokenizer(p)["input_ids"] for p in prompts]
    meta = dict(metadata or {})
    if responses is None:
        return PackedBatch.from_sequences(ids, {"packed_prompts": [[e] for e in encoded]},
                                          metadata=meta)
    if len(responses) != len(prompts):
        raise ValueError(f"{len(responses)} responses for {len(prompts)} prompts")
    full, masks = [], []
    for prompt, response in zip(encoded, responses, strict=True):
        answer = tokenizer(response, add_special_tokens=False)["input_ids"]
        full.append([prompt + answer])
        masks.append([[1] * len(prompt) + [0] * len(answer)])
    return PackedBatch.from_sequences(ids, {"packed_input_ids": full, "prompt_mask": masks},
                                      dtypes={"prompt_mask": torch.bool}, metadata=meta)


def _embedded() -> Any:
    from rlcore.data.embedded import embedded_tokenizer

    return embedded_tokenizer()


class InterfaceConformance:
    """Base of an interface's conformance tests; set ``interface``, ``calls`` and ``make_batch``."""

    interface: ClassVar[str | type | None] = None
    interface_args: ClassVar[dict[str, Any]] = {}
    calls: ClassVar[dict[str, tuple[str, ...]]] = {}
    trainable: ClassVar[bool] = False
    value_head: ClassVar[bool] = False

    def make_tokenizer(self) -> Any:
        """The tokenizer of the handle (default: the embedded one)."""
        return _embedded()

    def make_batch(self, tokenizer: Any) -> Any:
        """The input batch of every call (default: two prompts)."""
        return prompt_batch(tokenizer, ["12+30=", "7+8="])

    def make_interface(self) -> Any:
        from rlcore.plugins.registry import resolve_impl

        if self.interface is None:
            pytest.fail(f"{type(self).__name__} must set `interface` (a registered name or class)")
        return resolve_impl("interfaces", self.interface)(**self.interface_args)

    @pytest.fixture
    def handle(self, one_torch_thread) -> Any:
        return make_handle(trainable=self.trainable, tokenizer=self.make_tokenizer(),
                           value_head=self.value_head)

    def pytest_generate_tests(self, metafunc) -> None:
        if "call" in metafunc.fixturenames:
            calls = [c for c in self.calls if c != "train_step"]
            metafunc.parametrize("call", calls or [pytest.param(None, marks=pytest.mark.skip(
                reason="no generate/inference in calls"))])

    def test_outputs_keep_ids_and_declared_keys(self, handle, call):
        """generate/inference return a PackedBatch of the same ids with the declared keys, finite
        (or, as the executor accepts, a ``(batch, metrics)`` pair whose metrics are finite)."""
        import torch

        iface = self.make_interface()
        data = self.make_batch(handle.tokenizer)
        out = getattr(iface, call)(handle, data)
        if isinstance(out, tuple) and len(out) == 2:
            out, metrics = out
            for name, value in metrics.items():
                assert isinstance(value, int | float) and math.isfinite(value), f"{name}={value!r}"
        out.validate()
        assert sorted(out.ids) == sorted(data.ids), f"{call} returned ids {list(out.ids)}"
        missing = set(self.calls[call]) - set(out.keys)
        assert not missing, f"{call} did not return {sorted(missing)} (it returned {out.keys})"
        for key in self.calls[call]:
            t = out.data[key]
            if t.is_floating_point():
                assert bool(torch.isfinite(t).all()), f"{call} returned non-finite {key}"

    def test_train_step_metrics_are_finite_and_weights_move(self, handle):
        """train_step returns finite float metrics and changes the weights (trainable only)."""
        if "train_step" not in self.calls:
            pytest.skip("no train_step in calls")
        import torch

        assert self.trainable, "set trainable = True to test train_step"
        iface = self.make_interface()
        before = [p.detach().clone() for p in handle.module.parameters()]
        metrics = iface.train_step(handle, self.make_batch(handle.tokenizer))
        assert isinstance(metrics, dict), f"train_step returned {type(metrics).__name__}"
        for name, value in metrics.items():
            assert isinstance(value, int | float) and math.isfinite(value), f"{name}={value!r}"
        moved = any(not torch.equal(a, p.detach()) for a, p in zip(before, handle.module.parameters(),
                                                                    strict=True))
        assert moved, "train_step did not change any weight"

    def test_state_dict_is_json_and_loads_back(self):
        """state_dict() is JSON-safe and load_state_dict() accepts it."""
        iface = self.make_interface()
        state = json.loads(json.dumps(iface.state_dict()))
        iface.load_state_dict(state)
