"""Conformance suite for rollout engines: what the RL experiments rely on whoever samples.

Subclass it in the engine plugin's tests and name the engine (a registered name or the class)::

    from rlcore.testing.rollout import RolloutEngineConformance

    class TestMyEngine(RolloutEngineConformance):
        engine = "my_engine"
        options = {"gpu_memory_utilization": 0.3}   # keyword arguments after the handle

The suite builds a tiny random model and its handle (override ``make_handle`` for another) and
checks: one response per prompt with a finish reason and a version per token; log-probs equal
the trainer's recomputed ones for the same weights; greedy output equals the core's greedy;
after ``update_weights(v)`` tokens carry version v and new weights are used; a seed repeats;
an engine with ``submit``/``collect`` (asynchronous RL) gives back what ``generate`` would, in
any order of collection.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import pytest

PROMPTS = ["12+7=", "3+45=", "60+6=", "8+8="]


class RolloutEngineConformance:
    """Base of a rollout engine's conformance tests; set ``engine``."""

    engine: ClassVar[str | Callable | None] = None
    options: ClassVar[dict[str, Any]] = {}
    tolerance: ClassVar[float] = 1e-4  # log-probs: engine vs trainer, same weights

    def make_handle(self) -> Any:
        from rlcore.testing.interfaces import make_handle

        return make_handle()

    def make_engine(self, handle: Any) -> Any:
        if self.engine is None:
            pytest.fail(f"{type(self).__name__} must set `engine` (a registered name or class)")
        from rlcore.plugins.registry import resolve_impl

        return resolve_impl("rollout_engines", self.engine)(handle, **self.options)

    def setup_method(self) -> None:
        self.handle = self.make_handle()
        self.engine_ = self.make_engine(self.handle)
        self.prompts = [self.handle.tokenizer(p)["input_ids"] for p in PROMPTS]

    def teardown_method(self) -> None:
        self.engine_.close()

    def config(self, **kw: Any) -> Any:
        from rlcore.models.generation import GenerationConfig

        return GenerationConfig(**{"max_new_tokens": 6, "temperature": 0.7,
                                   "eos_token_ids": [self.handle.tokenizer.eos_token_id], **kw})

    def greedy_reference(self) -> list[list[int]]:
        """The core sampler's greedy output on the handle's (current) weights."""
        import torch

        from rlcore.models.generation import generate

        with self.handle.model.gathered_parameters(), torch.no_grad():
            out = generate(self.handle.module, self.prompts, self.config(greedy=True))
        return [t.tolist() for t in out.tokens]

    # ------------------------------------------------------------------ the tests

    def test_one_response_per_prompt_with_finish_and_versions(self):
        g = self.config()
        out = self.engine_.generate(self.prompts, g, seed=1)
        assert len(out) == len(self.prompts)
        for tokens, lp, versions, finish in zip(out.tokens, out.logprobs, out.versions,
                                                out.finish, strict=True):
            assert 1 <= len(tokens) <= g.max_new_tokens and len(lp) == len(versions) == len(tokens)
            assert finish in ("stop", "length")
            assert (int(tokens[-1]) in g.eos_token_ids) == (finish == "stop")
            assert bool((lp <= 0).all()) and set(versions.tolist()) == {self.engine_.version}

    def test_logprobs_equal_the_trainers_for_the_same_weights(self):
        import torch

        from rlcore.models.token_logprobs import TokenQuery

        out = self.engine_.generate(self.prompts, self.config(), seed=2)
        seqs = [torch.tensor(p + t.tolist()) for p, t in zip(self.prompts, out.tokens, strict=True)]
        ids = torch.cat(seqs).to(self.handle.device)
        lengths = torch.tensor([0] + [len(s) for s in seqs])
        cu = lengths.cumsum(0).to(torch.int32).to(self.handle.device)
        positions = torch.cat([torch.arange(int(cu[i]) + len(p) - 1, int(cu[i + 1]) - 1)
                               for i, p in enumerate(self.prompts)]).to(self.handle.device)
        query = TokenQuery(positions, ids[positions + 1], temperature=0.7)
        with torch.no_grad():
            trainer, _ = self.handle.model(ids, cu, query)
        engine = torch.cat(out.logprobs).float().to(trainer.device)
        assert float((trainer.float() - engine).abs().max()) <= self.tolerance

    def test_greedy_output_equals_the_core_greedy(self):
        out = self.engine_.generate(self.prompts, self.config(greedy=True), seed=3)
        assert [t.tolist() for t in out.tokens] == self.greedy_reference()

    def test_update_weights_moves_the_version_and_the_weights(self):
        import torch

        self.engine_.update_weights(7)
        out = self.engine_.generate(self.prompts, self.config(), seed=4)
        assert self.engine_.version == 7 and all(set(v.tolist()) == {7} for v in out.versions)
        with torch.no_grad():
            new = {k: v + 0.05 * torch.randn_like(v) if v.is_floating_point() else v
                   for k, v in self.handle.model.full_state_dict().items()}
        self.handle.module.load_state_dict(new)  # the trainer holds the weights it sends
        self.engine_.update_weights(8, new)
        out = self.engine_.generate(self.prompts, self.config(greedy=True), seed=5)
        assert all(set(v.tolist()) == {8} for v in out.versions)
        assert [t.tolist() for t in out.tokens] == self.greedy_reference()

    def test_a_seed_repeats_and_memory_can_be_released(self):
        first = self.engine_.generate(self.prompts, self.config(), seed=6)
        self.engine_.release_memory()
        self.engine_.resume_memory()
        again = self.engine_.generate(self.prompts, self.config(), seed=6)
        assert [t.tolist() for t in again.tokens] == [t.tolist() for t in first.tokens]
        assert all(bool((a == b).all()) for a, b in zip(first.logprobs, again.logprobs,
                                                        strict=True))

    def test_submitted_batches_come_back_as_generate_gives_them(self):
        if not hasattr(self.engine_, "submit"):
            pytest.skip("the engine samples synchronously only (no submit/collect)")
        g = self.config()
        first = self.engine_.submit(self.prompts, g, seed=11)
        second = self.engine_.submit(self.prompts[:2], g, seed=12)
        late, early = self.engine_.collect(second), self.engine_.collect(first)
        for got, seed, prompts in ((early, 11, self.prompts), (late, 12, self.prompts[:2])):
            ref = self.engine_.generate(prompts, g, seed=seed)
            assert [t.tolist() for t in got.tokens] == [t.tolist() for t in ref.tokens]
            assert all(bool((a == b).all()) for a, b in zip(got.logprobs, ref.logprobs,
                                                            strict=True))


def replace_rollout_workers(monkeypatch: Any, script: str) -> None:
    """Start the rollout workers of this test's runs as ``python -c script`` instead of
    ``python -m rlcore.rollout.worker``: a worker with a fault put in (slow, hung, damaged).
    The script usually patches something and then calls ``rlcore.rollout.worker.main()``."""
    import sys

    import rlcore.launch.rollout_procs as procs

    real = procs.subprocess.Popen

    def popen(cmd: list[str], **kw: Any) -> Any:
        if cmd[1:] == ["-m", "rlcore.rollout.worker"]:
            cmd = [sys.executable, "-c", script]
        return real(cmd, **kw)

    monkeypatch.setattr(procs.subprocess, "Popen", popen)
