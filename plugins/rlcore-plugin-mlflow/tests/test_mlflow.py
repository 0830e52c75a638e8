"""The mlflow logger against the real package and a local file store: config, metrics,
summary, resume."""

import json

import pytest

pytest.importorskip("mlflow")

from mlflow import MlflowClient  # noqa: E402
from mlflow.artifacts import load_dict  # noqa: E402

from rlcore.plugins import registry  # noqa: E402
from rlcore.runtime.metrics import MetricsLogger  # noqa: E402
from rlcore_plugin_mlflow.logger import MlflowLogger  # noqa: E402

CONFIG = {"experiment": "sft", "run": {"seed": 1, "loggers": ["mlflow"]}, "note": None}


@pytest.fixture
def client(tmp_path, monkeypatch):
    """A local file store under the test's tmp dir."""
    uri = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    return MlflowClient(uri)


def a_run(run_dir, steps, start_step=0, status="completed"):
    """Steps ``steps`` through the runtime's metrics logger with run.loggers=[mlflow]; the
    MLflow run id it kept."""
    log = MetricsLogger(run_dir, rank=0, total_steps=5, start_step=start_step, progress=False,
                        loggers=["mlflow"])
    log.start(CONFIG)
    for step in steps:
        log.log(step, {"actor_train/loss": 10.0 * start_step + step, "bad": float("nan")})
    log.finish(status)
    return json.loads((run_dir / "loggers" / "mlflow.json").read_text())["run_id"]


def history(client, run_id):
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, "actor_train/loss"))


def test_it_is_registered(rlcore_plugins):
    assert registry.load("loggers", "mlflow") is MlflowLogger


def test_a_run_logs_its_config_every_metric_and_its_summary(tmp_path, client, rlcore_plugins):
    run_id = a_run(tmp_path / "run", [1, 2, 3])
    run = client.get_run(run_id)
    assert run.data.params == {"experiment": "sft", "run.seed": "1", "run.loggers": '["mlflow"]',
                               "note": "null"}
    assert load_dict(f"{run.info.artifact_uri}/config.json") == CONFIG
    assert history(client, run_id) == [(1, 1.0), (2, 2.0), (3, 3.0)]
    assert client.get_metric_history(run_id, "bad") == []  # NaN is not logged
    summary = load_dict(f"{run.info.artifact_uri}/summary.json")
    assert summary["status"] == "completed" and summary["steps"] == 3
    assert run.data.tags["rlcore.status"] == "completed" and run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == "rlcore"


def test_a_resumed_run_continues_the_same_mlflow_run(tmp_path, client, rlcore_plugins):
    first = a_run(tmp_path / "run", [1, 2, 3, 4], status="interrupted")  # checkpoint at step 2
    assert client.get_run(first).info.status == "KILLED"
    resumed = a_run(tmp_path / "run", [3, 4, 5], start_step=2)
    assert resumed == first and client.get_run(first).info.status == "FINISHED"
    assert history(client, first) == [(1, 1.0), (2, 2.0), (3, 3.0), (3, 23.0), (4, 4.0),
                                      (4, 24.0), (5, 25.0)]


def test_a_fresh_start_is_a_new_mlflow_run(tmp_path, client, rlcore_plugins):
    first = a_run(tmp_path / "run", [1, 2])
    assert a_run(tmp_path / "run", [1, 2]) != first  # start_step 0: --no-resume
    assert client.get_run(first).data.params["experiment"] == "sft"
