"""Learning-rate schedule shapes and option validation (torch-free)."""

import math

import pytest

from rlcore.errors import ConfigError
from rlcore.runtime.options import DeepSpeedOptions, SchedulerOptions, validate_deepspeed
from rlcore.runtime.schedule import lr_factor, warmup_steps


def curve(kind, total=10, **kw):
    opts = SchedulerOptions(kind=kind, **kw)
    return [lr_factor(opts, s, total) for s in range(total)]


def test_constant_with_warmup():
    assert curve("constant", warmup_steps=4) == [0.25, 0.5, 0.75, 1, 1, 1, 1, 1, 1, 1]
    assert curve("constant") == [1.0] * 10


def test_linear_decays_to_floor_at_last_step():
    c = curve("linear", warmup_steps=2, min_lr_ratio=0.1)
    assert c[:3] == [0.5, 1.0, 1.0]
    assert c[-1] == pytest.approx(0.1)
    assert all(a > b for a, b in zip(c[2:], c[3:], strict=False))
    diffs = [a - b for a, b in zip(c[2:], c[3:], strict=False)]
    assert max(diffs) == pytest.approx(min(diffs))  # straight line


def test_cosine_shape():
    c = curve("cosine", total=12, warmup_steps=1)
    assert c[0] == 1.0 and c[1] == 1.0 and c[-1] == pytest.approx(0.0, abs=1e-12)
    assert c[6] == pytest.approx(0.5)  # half-way through the decay
    assert c[3] == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.2)))


def test_warmup_ratio_and_past_the_end():
    opts = SchedulerOptions(kind="linear", warmup_ratio=0.25)
    assert warmup_steps(opts, 100) == 25
    assert lr_factor(opts, 500, 100) == 0.0  # clamped, never negative


@pytest.mark.parametrize("change, match", [
    (dict(zero_stage=4), "zero_stage"),
    (dict(dtype="fp8"), "dtype"),
    (dict(grad_accum_steps=0), "grad_accum_steps"),
    (dict(offload_optimizer=True), "offload_optimizer needs ZeRO stage"),
    (dict(scheduler=SchedulerOptions(kind="step")), "scheduler.kind"),
])
def test_bad_backend_options(change, match):
    with pytest.raises(ConfigError, match=match):
        validate_deepspeed(DeepSpeedOptions(**change))


def test_options_do_not_import_torch():
    import subprocess
    import sys

    code = "import sys, rlcore.runtime.options, rlcore.runtime.schedule; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
