"""Conformance suites for advantage estimators and policy losses (the RL experiment's tables).

Subclass and name the entry (a registered name, or the function)::

    from rlcore.testing.rl_tables import EstimatorConformance, PolicyLossConformance

    class TestMedian(EstimatorConformance):
        estimator = "median_baseline"
        options = {"discount": 1.0}        # the adv section's values it reads, if any

    class TestCispo(PolicyLossConformance):
        loss = "cispo"

An estimator maps :class:`~rlcore.data.trajectory.AdvantageInputs` to ``(advantages,
returns)`` per action; a policy loss maps :class:`~rlcore.data.trajectory.PolicyLossInputs`
to ``{"loss": [N], ...}``. The suites build random packed inputs and check shapes, finiteness,
that inputs are left alone, and the properties every entry must have: grouped estimators keep
groups apart and rank a better response no lower; a policy loss's gradient at ratio 1 is the
policy gradient ``-advantages``.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest

ADV_DEFAULTS = {"estimator": "", "norm": False, "std_norm": True, "discount": 1.0,
                "gae_lambda": 1.0, "bootstrap_truncated": True, "whiten_unbiased": False,
                "overlong_buffer": 0, "overlong_penalty": 1.0}
POLICY_DEFAULTS = {"loss": "", "eps_clip": 0.2, "eps_clip_low": None, "eps_clip_high": None,
                   "clip_low": 0.2, "clip_high": 0.2, "dual_clip": None, "log_ratio_clamp": 20.0,
                   "ratio_level": "token", "loss_agg": "token-mean", "norm_mean": True,
                   "entropy_coef": 0.0, "early_stop_kl_estimator": "k2"}


def _entry(kind: str, ref: Any, suite: str) -> tuple[Callable, Any]:
    """The function and its record (None for a bare function) of ``ref``."""
    if ref is None:
        pytest.fail(f"{suite} must name its entry (a registered name or the function)")
    if callable(ref):
        return ref, None
    from rlcore.plugins import registry

    record = registry.get(kind, ref)
    return record.load(), record


class EstimatorConformance:
    """Base of an advantage estimator's conformance tests; set ``estimator``."""

    estimator: ClassVar[str | Callable | None] = None
    options: ClassVar[dict[str, Any]] = {}
    group_size: ClassVar[int] = 4

    def entry(self) -> tuple[Callable, Any]:
        return _entry("estimators", self.estimator, type(self).__name__)

    def inputs(self, seed: int = 0, rewards: Any = None) -> Any:
        """Random inputs: 3 prompts of ``group_size`` responses of 1-5 actions each."""
        import torch

        from rlcore.data.trajectory import AdvantageInputs

        _, record = self.entry()
        g = torch.Generator().manual_seed(seed)
        size = max(self.group_size, getattr(record, "min_samples", 1))
        n_seq = 3 * size
        lengths = torch.randint(1, 6, (n_seq,), generator=g)
        cu = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)])
        seq = torch.rand(n_seq, generator=g)
        seq = seq if rewards is None else rewards
        token_rewards = torch.zeros(int(cu[-1])).index_add(0, cu[1:] - 1, seq)
        n = int(cu[-1])
        return AdvantageInputs(
            rewards=seq.clone(), token_rewards=token_rewards, cu=cu,
            groups=torch.arange(0, n_seq + 1, size), options=SimpleNamespace(**{
                **ADV_DEFAULTS, **self.options}),
            values=torch.randn(n, generator=g), last_values=torch.zeros(n_seq),
            baselines=torch.rand(3, generator=g))

    def run(self, inputs: Any) -> tuple[Any, Any]:
        fn, _ = self.entry()
        out = fn(inputs)
        if not (isinstance(out, tuple) and len(out) == 2):
            pytest.fail(f"{type(self).__name__}: an estimator returns (advantages, returns), "
                        f"got {type(out).__name__}")
        return out

    def test_one_finite_value_per_action(self):
        import torch

        x = self.inputs()
        adv, ret = self.run(x)
        n = int(x.cu[-1])
        for name, t in (("advantages", adv), ("returns", ret)):
            assert isinstance(t, torch.Tensor) and t.shape == (n,), \
                f"{name} must be a [{n}] tensor (one per action), got {getattr(t, 'shape', t)}"
            assert t.is_floating_point() and bool(torch.isfinite(t).all()), f"{name}: not finite"

    def test_inputs_are_left_alone_and_the_result_repeats(self):
        import torch

        x, y = self.inputs(), self.inputs()
        first = self.run(x)
        for name in ("rewards", "token_rewards", "values", "baselines"):
            assert torch.equal(getattr(x, name), getattr(y, name)), f"it modified inputs.{name}"
        again = self.run(self.inputs())
        assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))

    def test_a_better_response_never_gets_a_lower_advantage(self):
        import torch

        x = self.inputs(seed=1)
        before, _ = self.run(x)
        better = x.rewards.clone()
        better[1] += 1.0
        after, _ = self.run(self.inputs(seed=1, rewards=better))
        s, e = int(x.cu[1]), int(x.cu[2])
        assert float(after[s:e].mean()) >= float(before[s:e].mean()) - 1e-5
        assert torch.isfinite(after).all()

    def test_groups_are_independent_when_grouped(self):
        _, record = self.entry()
        if record is None or not record.grouped:
            pytest.skip("not a grouped estimator")
        x = self.inputs(seed=2)
        before, _ = self.run(x)
        changed = x.rewards.clone()
        changed[: self.group_size] = changed[: self.group_size] * 3 + 1  # the first group only
        after, _ = self.run(self.inputs(seed=2, rewards=changed))
        rest = int(x.cu[x.groups[1]])
        assert bool((after[rest:] - before[rest:]).abs().max() < 1e-5), \
            "changing one prompt's rewards changed the advantages of other prompts"


class PolicyLossConformance:
    """Base of a policy loss's conformance tests; set ``loss``."""

    loss: ClassVar[str | Callable | None] = None
    options: ClassVar[dict[str, Any]] = {}

    def inputs(self, seed: int = 0, same_policy: bool = False, zero_adv: bool = False) -> Any:
        """Random inputs over 4 sequences; ``logp`` requires grad."""
        import torch

        from rlcore.data.trajectory import PolicyLossInputs

        g = torch.Generator().manual_seed(seed)
        cu = torch.tensor([0, 3, 4, 9, 12])
        n = int(cu[-1])
        old = -torch.rand(n, generator=g) * 3
        logp = (old.clone() if same_policy else old + 0.3 * torch.randn(n, generator=g))
        logp.requires_grad_(True)
        adv = torch.zeros(n) if zero_adv else torch.randn(n, generator=g)
        return PolicyLossInputs(logp=logp, old_logp=old, log_ratio=logp - old, advantages=adv,
                                cu=cu, options=SimpleNamespace(**{**POLICY_DEFAULTS,
                                                                  **self.options}))

    def run(self, inputs: Any) -> dict[str, Any]:
        fn, _ = _entry("policy_losses", self.loss, type(self).__name__)
        out = fn(inputs)
        if not isinstance(out, dict) or "loss" not in out:
            pytest.fail(f"{type(self).__name__}: a policy loss returns a dict with 'loss', got "
                        f"{type(out).__name__}")
        return out

    def test_a_finite_loss_per_action_and_optional_metrics_alike(self):
        import torch

        x = self.inputs()
        out = self.run(x)
        n = x.logp.numel()
        for key, value in out.items():
            assert isinstance(value, torch.Tensor) and value.shape == (n,), \
                f"{key!r} must be a [{n}] tensor, got {getattr(value, 'shape', value)}"
            assert bool(torch.isfinite(value.float()).all()), f"{key!r} is not finite"
        assert out["loss"].requires_grad, "the loss carries no gradient to logp"

    def test_the_gradient_at_ratio_one_is_the_policy_gradient(self):
        import torch

        x = self.inputs(seed=1, same_policy=True)
        self.run(x)["loss"].sum().backward()
        torch.testing.assert_close(x.logp.grad, -x.advantages, rtol=1e-5, atol=1e-6)

    def test_zero_advantages_give_no_gradient(self):
        import torch

        x = self.inputs(seed=2, zero_adv=True)
        self.run(x)["loss"].sum().backward()
        grad = x.logp.grad if x.logp.grad is not None else torch.zeros_like(x.logp)
        assert float(grad.abs().max()) < 1e-7
