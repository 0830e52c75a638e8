"""The RL spine's reshaping changed no number: short default runs log the metrics they logged
at 2128480 (``data/metrics_before.json``, written by ``metrics_snapshot.py`` then)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from metrics_snapshot import CASES, WALL_CLOCK, run_case

BEFORE = json.loads((Path(__file__).parent / "data" / "metrics_before.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_per_step_metrics_are_those_before_the_reshaping(case, tmp_path):
    before = BEFORE[case]
    after = run_case(case, tmp_path / case)
    assert [r["step"] for r in after] == [r["step"] for r in before]
    for old, new in zip(before, after, strict=True):
        # Since then: no kl/ref or kl/coef without a reference model (they were 0).
        gone = ("kl/",) if "kl/ref" not in new else ()
        old = {k: v for k, v in old.items() if not k.startswith((*WALL_CLOCK, *gone))}
        added = ("eval/reward/",)  # eval's mean of each reward function, logged since
        grad_norm = "/grad_norm"  # logged at ZeRO stage 0 too since
        assert sorted(k for k in new if not k.startswith(added) and not k.endswith(grad_norm)
                      ) == sorted(k for k in old if not k.endswith(grad_norm)), \
            f"{case} step {old['step']}: metric names differ"
        # gen/logprob_drift is rounding noise (~1e-6): float64 group statistics (issue 23)
        # moved the advantages by their last bits, and with them this noise
        differ = {k: (old[k], new[k]) for k in old
                  if not math.isclose(old[k], new[k], rel_tol=1e-5,
                                      abs_tol=1e-6 if k == "gen/logprob_drift" else 1e-7)}
        assert not differ, f"{case} step {old['step']}: {differ}"
