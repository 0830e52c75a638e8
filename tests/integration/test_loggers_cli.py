"""`rlcore train ... --set run.loggers=[tensorboard,wandb,mlflow]`, then a resumed run: the
real W&B (offline) and MLflow (file store) runs get every step, and the resume continues them."""

import json
import sys
from pathlib import Path

import pytest

from rlcore.cli.app import main

pytest.importorskip("rlcore_plugin_algorithms")
pytest.importorskip("rlcore_plugin_wandb")
pytest.importorskip("rlcore_plugin_mlflow")
pytest.importorskip("wandb")
mlflow = pytest.importorskip("mlflow")

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins/rlcore-plugin-wandb/tests"))
from wandb_file import read_run  # noqa: E402


def train(monkeypatch, run_dir, max_steps):
    monkeypatch.setattr(sys, "argv", [
        "rlcore", "train", "sft", "--run-dir", str(run_dir),
        "--set", "run.loggers=[tensorboard,wandb,mlflow]", "--set", f"run.max_steps={max_steps}",
        "--set", "run.save_every=2", "--set", "run.eval_every=0", "--set", "run.progress=false"])
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code in (0, None)


@pytest.mark.slow
def test_a_run_and_its_resume_log_to_one_wandb_and_one_mlflow_run(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    for var in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(var, str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    run_dir = tmp_path / "run"
    train(monkeypatch, run_dir, 2)
    train(monkeypatch, run_dir, 4)  # resumes from step 2

    first, resumed = read_run(run_dir)
    assert resumed["id"] == first["id"]
    assert [r["step"] for r in first["history"] + resumed["history"]] == [1, 2, 3, 4]
    assert first["config"]["run"]["max_steps"] == 2 and resumed["config"]["run"]["max_steps"] == 4
    assert resumed["summary"]["rlcore/status"] == "completed" and resumed["exit_code"] == 0

    run_id = json.loads((run_dir / "loggers" / "mlflow.json").read_text())["run_id"]
    client = mlflow.MlflowClient((tmp_path / "mlruns").as_uri())
    losses = client.get_metric_history(run_id, "actor_train/loss")
    assert sorted(m.step for m in losses) == [1, 2, 3, 4]
    assert client.get_run(run_id).info.status == "FINISHED"
    assert (run_dir / "tensorboard").is_dir()
