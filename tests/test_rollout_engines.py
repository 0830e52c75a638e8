"""The rollout-engine kind: the built-in ``local`` engine passes the conformance suite, and
``rlcore list rollout-engines`` shows it."""

from __future__ import annotations

import time

import pytest
from typer.testing import CliRunner

from rlcore.cli.app import app
from rlcore.testing.rollout import RolloutEngineConformance


class TestLocalEngine(RolloutEngineConformance):
    engine = "local"


class TestWorkerEngine(RolloutEngineConformance):
    """The ``worker`` engine with one rollout process of its own per test."""

    engine = "worker"

    def make_engine(self, handle):
        import contextlib
        import tempfile
        from pathlib import Path

        from rlcore.launch.rollout_procs import environment, rollout_workers

        self.workers = contextlib.ExitStack()
        env = self.workers.enter_context(rollout_workers(1, Path(tempfile.mkdtemp())))
        self.workers.enter_context(environment(env))
        return super().make_engine(handle)

    def teardown_method(self) -> None:
        super().teardown_method()
        self.workers.close()


def test_rollout_engines_are_listed_under_either_spelling():
    for spelling in ("rollout-engines", "rollout_engines"):
        out = CliRunner().invoke(app, ["list", spelling], env={"COLUMNS": "200"}).output
        assert "local" in out, out
    out = CliRunner().invoke(app, ["info", "rollout-engines", "local"]).output
    assert "rlcore.rollout.local:LocalEngine" in out


class StaleEngine:
    """A broken engine: it ignores update_weights and reports log-probs at temperature 1."""

    def __init__(self, handle):
        from rlcore.rollout.local import LocalEngine

        self.inner = LocalEngine(handle)
        self.version = 0

    def generate(self, prompts, config, seed):
        import dataclasses

        return self.inner.generate(prompts, dataclasses.replace(config, temperature=1.0), seed)

    def update_weights(self, version, weights=None):
        """Forgets to do anything: the sync 'masquerades as staleness'."""

    def release_memory(self):
        pass

    def resume_memory(self):
        pass

    def close(self):
        pass


def test_the_suite_catches_a_stale_engine():
    import pytest

    class Suite(RolloutEngineConformance):
        engine = StaleEngine

    suite = Suite()
    for test in ("test_update_weights_moves_the_version_and_the_weights",
                 "test_logprobs_equal_the_trainers_for_the_same_weights"):
        suite.setup_method()
        with pytest.raises(AssertionError):
            getattr(suite, test)()
        suite.teardown_method()


SLOW_WORKER = """
import time

import pytest
import rlcore.models.generation as generation
real = generation.generate
def slow(*args, before_decode=None, **kw):
    def step():
        time.sleep(0.1)
        before_decode()
    return real(*args, before_decode=step, **kw)
generation.generate = slow
from rlcore.rollout import worker
worker.main()
"""


def _slow_worker_engine(monkeypatch, tmp_path, handle, partial):
    """A worker engine whose one worker takes 0.1 s a token."""
    import contextlib

    import rlcore.launch.rollout_procs as procs
    from rlcore.rollout.remote import WorkerEngine
    from rlcore.testing.rollout import replace_rollout_workers

    replace_rollout_workers(monkeypatch, SLOW_WORKER)
    stack = contextlib.ExitStack()
    env = stack.enter_context(procs.rollout_workers(1, tmp_path))
    stack.enter_context(procs.environment(env))
    return stack, WorkerEngine(handle, partial=partial)


def test_partial_rollouts_tag_each_token_with_the_weights_that_made_it(monkeypatch, tmp_path):
    """Weights sent while a generation runs: with rollout.partial the later tokens come from
    them (and say so), and the sync check covers them; without, the generation ends on v0."""
    import torch

    from rlcore.models.generation import GenerationConfig
    from rlcore.testing.interfaces import make_handle

    g = GenerationConfig(max_new_tokens=20, temperature=0.7, eos_token_ids=[])
    for partial in (True, False):
        handle = make_handle()
        stack, engine = _slow_worker_engine(monkeypatch, tmp_path / str(partial), handle, partial)
        with stack:
            prompts = [handle.tokenizer(p)["input_ids"] for p in ("12+7=", "3+45=")]
            ticket = engine.submit(prompts, g, seed=1)
            time.sleep(0.5)  # a few tokens in
            with torch.no_grad():
                for p in handle.module.parameters():
                    p.add_(0.05)
            engine.update_weights(1)
            out = engine.collect(ticket)
            for versions in out.versions:
                assert len(versions) == 20 and int(versions[0]) == 0
                assert bool((versions[1:] >= versions[:-1]).all())  # never back to older weights
                assert int(versions[-1]) == (1 if partial else 0), versions
            if partial:
                assert engine.metrics["/rollout/sync_check"] <= 1e-5
            assert engine.collect(engine.submit(prompts, g, seed=2)).versions[0].unique().tolist() == [1]
            engine.close()


FROZEN_WORKER = """
import os, time
from rlcore.rollout import RANK_ENV, wire
group, _ = wire.connect(int(os.environ[RANK_ENV]), 600)
wire.recv(group, 0)  # init; then it stops answering (a hung worker)
time.sleep(600)
"""


def test_a_weight_sync_to_a_hung_worker_fails_within_sync_timeout(monkeypatch, tmp_path):
    import contextlib

    import pytest

    import rlcore.launch.rollout_procs as procs
    from rlcore.errors import RlcoreError
    from rlcore.rollout.remote import WorkerEngine
    from rlcore.testing.interfaces import make_handle
    from rlcore.testing.rollout import replace_rollout_workers

    replace_rollout_workers(monkeypatch, FROZEN_WORKER)
    handle = make_handle()
    with contextlib.ExitStack() as stack:
        stack.enter_context(procs.environment(stack.enter_context(
            procs.rollout_workers(1, tmp_path))))
        start = time.monotonic()
        with pytest.raises(RlcoreError, match=r"sending 'weights' to rollout rank 1 failed or "
                                              r"timed out after 2 s"):
            WorkerEngine(handle, sync_timeout_s=2, wait_timeout_s=300)
        assert time.monotonic() - start < 60  # the sync timeout, not the 300 s wait


def test_a_lora_trainer_syncs_only_its_adapters_after_the_first_sync(tmp_path):
    """The worker holds the same adapters: the first sync moves the base too, later ones only
    the adapters, and the worker samples what the trainer would (the probe check passes)."""
    import contextlib

    import torch

    import rlcore.launch.rollout_procs as procs
    from rlcore.models.generation import GenerationConfig, generate
    from rlcore.models.lora import add_adapters
    from rlcore.rollout.remote import WorkerEngine
    from rlcore.runtime.options import LoraOptions
    from rlcore.testing.interfaces import make_handle, tiny_model

    handle = make_handle(add_adapters(tiny_model(), LoraOptions(r=4)))
    prompts = [handle.tokenizer(p)["input_ids"] for p in ("12+7=", "3+45=")]
    greedy = GenerationConfig(max_new_tokens=6, greedy=True,
                              eos_token_ids=[handle.tokenizer.eos_token_id])
    with contextlib.ExitStack() as stack:
        stack.enter_context(procs.environment(stack.enter_context(
            procs.rollout_workers(1, tmp_path))))
        engine = WorkerEngine(handle)
        engine.generate(prompts, greedy, seed=1)
        first_mb = engine.metrics["/rollout/sync_mb"]
        with torch.no_grad():  # a training step: only the adapters move
            for name, p in handle.module.named_parameters():
                if ".lora_B." in name:
                    p.add_(0.3 * torch.randn_like(p))
        engine.update_weights(1)
        out = engine.generate(prompts, greedy, seed=2)
        adapters_mb = engine.metrics["/rollout/sync_mb"]
        with torch.no_grad():
            ref = generate(handle.module, prompts, greedy)
        engine.close()
    assert [t.tolist() for t in out.tokens] == [t.tolist() for t in ref.tokens]
    n_adapters = sum(p.numel() for n, p in handle.module.named_parameters() if ".lora_" in n)
    assert adapters_mb == pytest.approx(n_adapters * 4 / 2**20)
    assert adapters_mb < first_mb / 5


def test_a_worker_records_the_routing_of_an_moe_model_with_expert_adapters(tmp_path):
    """A mixture-of-experts trainer with adapters on its experts: the worker samples the
    trainer's tokens and records the experts the trainer's own generation records."""
    import contextlib
    import dataclasses

    import torch

    import rlcore.launch.rollout_procs as procs
    from rlcore.models.generation import GenerationConfig, generate
    from rlcore.models.lora import add_adapters
    from rlcore.models.transformer import Transformer
    from rlcore.rollout.remote import WorkerEngine
    from rlcore.runtime.options import LoraOptions
    from rlcore.testing.interfaces import make_handle, tiny_model

    cfg = dataclasses.replace(tiny_model().config, n_experts=4, n_experts_per_token=2,
                              moe_intermediate_size=24)
    torch.manual_seed(0)
    handle = make_handle(add_adapters(Transformer(cfg), LoraOptions(r=4)))
    with torch.no_grad():  # trained-like expert adapters, so that they change the routing
        for name, p in handle.module.named_parameters():
            if "lora_B" in name:
                p.add_(0.3 * torch.randn_like(p))
    prompts = [handle.tokenizer(p)["input_ids"] for p in ("12+7=", "3+45=")]
    greedy = GenerationConfig(max_new_tokens=6, greedy=True, record_routing=True,
                              eos_token_ids=[handle.tokenizer.eos_token_id])
    with contextlib.ExitStack() as stack:
        stack.enter_context(procs.environment(stack.enter_context(
            procs.rollout_workers(1, tmp_path))))
        engine = WorkerEngine(handle)
        out = engine.generate(prompts, greedy, seed=1)
        engine.close()
    with torch.no_grad():
        ref = generate(handle.module, prompts, greedy)
    assert [t.tolist() for t in out.tokens] == [t.tolist() for t in ref.tokens]
    assert out.routing is not None and len(out.routing) == 2
    for mine, theirs in zip(out.routing, ref.routing, strict=True):
        assert mine.dtype == torch.int16 and mine.shape == theirs.shape
        assert torch.equal(mine, theirs)
