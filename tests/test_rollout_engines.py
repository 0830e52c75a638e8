"""The rollout-engine kind: the built-in ``local`` engine passes the conformance suite, and
``rlcore list rollout-engines`` shows it."""

from __future__ import annotations

from typer.testing import CliRunner

from rlcore.cli.app import app
from rlcore.testing.rollout import RolloutEngineConformance


class TestLocalEngine(RolloutEngineConformance):
    engine = "local"


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
