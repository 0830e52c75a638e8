"""On-policy distillation: the advantage against the reverse KL's definition, the graph, the
cached tiny teacher, a teacher with another tokenizer, and a short run through the CLI."""

import json
import math
import re
import subprocess

import pytest
import torch
from test_experiments import RLCORE, read_metrics, series

from rlcore_plugin_algorithms.distill import distill_advantages

FAST_TEACHER = ["teacher.sft_steps=30", "teacher.hidden_size=32", "teacher.batch_size=16"]
SHORT = ["run.progress=false", "run.batch_size=8", "gen.n_samples=2", "eval.size=16"]


def test_advantage_is_minus_the_reverse_kl_in_expectation():
    gen = torch.Generator().manual_seed(0)
    student = torch.log_softmax(torch.randn(5, 7, generator=gen, dtype=torch.float64), -1)
    teacher = torch.log_softmax(torch.randn(5, 7, generator=gen, dtype=torch.float64), -1)
    for pos in range(5):
        # KL(p || q) = sum_v p(v) (log p(v) - log q(v)), written from the definition
        ps, lq = [math.exp(x) for x in student[pos].tolist()], teacher[pos].tolist()
        kl = sum(p * (math.log(p) - q) for p, q in zip(ps, lq, strict=True))
        adv = distill_advantages(student[pos], teacher[pos]).double()  # every token "sampled"
        assert abs(-sum(p * a for p, a in zip(ps, adv.tolist(), strict=True)) - kl) < 1e-6


def test_advantage_adds_the_weighted_task_advantage_per_token():
    logp = torch.tensor([-0.1, -2.0, -0.7, -3.5])
    teacher = torch.tensor([-0.3, -0.5, -0.7, -0.2])
    task = torch.tensor([1.0, 1.0, -0.5, 0.0])
    expected = [-(-0.1 + 0.3) + 0.5 * 1.0, -(-2.0 + 0.5) + 0.5, 0.0 - 0.25, -(-3.5 + 0.2)]
    got = distill_advantages(logp, teacher, task, 0.5).tolist()
    assert all(abs(g - e) < 1e-6 for g, e in zip(got, expected, strict=True)), got
    assert distill_advantages(logp, teacher, task, 0.0).tolist() == (teacher - logp).tolist()


def test_distill_is_listed_documented_and_draws_its_graph():
    from typer.testing import CliRunner

    from rlcore.cli.app import app

    def cli(*args):
        out = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
        assert out.exit_code == 0, out.output
        return out.output

    assert "distill" in cli("list", "experiments")
    info = cli("info", "experiments", "distill")
    assert "teacher.path" in info and "distill.task_weight" in info
    graph = cli("show", "distill", "--format", "mermaid")
    for a, b in (("actor_gen", "teacher_inf"), ("teacher_inf", "adv"), ("adv", "actor_train")):
        assert re.search(rf"n_{a} -->\|[^|]*\| n_{b}\n", graph), graph


def _other_tokenizer_model(where):
    """A tiny model dir whose tokenizer gives two tokens each other's ids."""
    from rlcore.testing.chat_models import save_chat_model

    path = save_chat_model(where, [[{"role": "user", "content": "1+1="}]], steps=1)
    spec = json.loads((path / "tokenizer.json").read_text())
    vocab = spec["model"]["vocab"]
    vocab["1"], vocab["2"] = vocab["2"], vocab["1"]
    (path / "tokenizer.json").write_text(json.dumps(spec))
    return path


def test_a_teacher_with_another_tokenizer_is_refused(tmp_path):
    from rlcore.cli.train_cmd import resolve_experiment
    from rlcore.runtime.experiment import build_experiment
    from rlcore.sdk import ConfigError

    teacher = _other_tokenizer_model(tmp_path / "teacher")
    _, cfg = resolve_experiment("distill", None, [f"teacher.path={teacher}"])
    with pytest.raises(ConfigError) as err:
        build_experiment("distill", cfg).check()  # what --dry-run and the run's start call
    message = str(err.value)
    assert f"teacher.path {teacher} has another tokenizer" in message, message
    assert "(the embedded tokenizer)" in message and "'1' is id" in message, message


def test_short_run_trains_the_teacher_once_and_reuses_it(tmp_path, cli_env, capsys):
    from rlcore.cli.train_cmd import resolve_experiment
    from rlcore.launch.launcher import launch

    sets = [*SHORT, *FAST_TEACHER, f"teacher.cache_dir={tmp_path / 'cache'}", "run.max_steps=2",
            "run.eval_every=2"]
    out = subprocess.run([RLCORE, "train", "distill", "--run-dir", str(tmp_path / "a"),
                          *[a for s in sets for a in ("--set", s)]],
                         capture_output=True, text=True, env=cli_env)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert "teacher: 30 SFT steps" in out.stdout
    rows = read_metrics(tmp_path / "a")
    kl = series(rows, "distill/reverse_kl")
    assert len(kl) == 2 and all(math.isfinite(v) for v in kl), rows
    assert [r["step"] for r in rows if "eval/teacher_accuracy" in r] == [0]
    # again, in this process, with the task reward: the cached teacher is reused
    record, cfg = resolve_experiment("distill", None, [*sets, "distill.task_weight=0.5"])
    launch(record.name, cfg, nproc=1, run_dir=tmp_path / "b", resume=False)
    again = capsys.readouterr().out
    assert "teacher: reusing" in again and "SFT steps" not in again
    assert len(series(read_metrics(tmp_path / "b"), "distill/reverse_kl")) == 2


@pytest.mark.slow
def test_the_student_moves_towards_the_teacher(tmp_path, warm_start):
    """The RL warm start (an SFT run of hidden 128) as the teacher, given as a run dir."""
    from rlcore.cli.train_cmd import resolve_experiment
    from rlcore.launch.launcher import launch

    record, cfg = resolve_experiment("distill", None, [
        *SHORT, "run.batch_size=16", "run.eval_every=0", "run.max_steps=30",
        f"teacher.path={warm_start}", "train.optimizer.lr=3e-3"])
    launch(record.name, cfg, nproc=1, run_dir=tmp_path, resume=False)
    kl = series(read_metrics(tmp_path), "distill/reverse_kl")
    assert sum(kl[-5:]) < 0.5 * sum(kl[:5]), kl


def test_advantage_node_puts_each_tokens_advantage_on_its_action():
    from rlcore.sdk import INPUT_IDS, LOGPROBS, NO_EOS, PROMPT_MASK, REWARDS, PackedBatch
    from rlcore_plugin_algorithms.distill import TEACHER_LOGPROBS, DistillAdvantageInterface
    from rlcore_plugin_algorithms.rl_config import AdvantageOptions, KLOptions, RewardOptions

    # one prompt, two responses: [p p r r] and [p r r]; at t, the log-prob of token t+1
    lens = [[4, 3]]
    student = [0.0, -1.0, -2.0, 0.0, -0.5, -3.0, 0.0]
    teacher = [0.0, -0.2, -2.5, 0.0, -1.5, -0.1, 0.0]
    batch = PackedBatch(["a"], {
        INPUT_IDS: torch.tensor([5, 6, 7, 8, 5, 9, 9]),
        PROMPT_MASK: torch.tensor([1, 1, 0, 0, 1, 0, 0], dtype=torch.bool),
        LOGPROBS: torch.tensor(student), TEACHER_LOGPROBS: torch.tensor(teacher),
        NO_EOS: torch.tensor([False, False]), REWARDS: torch.tensor([1.0, 0.0])},
        {INPUT_IDS: lens, PROMPT_MASK: lens, LOGPROBS: lens, TEACHER_LOGPROBS: lens,
         NO_EOS: [[1, 1]], REWARDS: [[1, 1]]})
    node = DistillAdvantageInterface(
        task_weight=0.5, adv=AdvantageOptions(estimator="grpo", norm=False), kl=KLOptions(coef=0.0),
        reward=RewardOptions(), max_new_tokens=6)
    out, stats = node.inference(None, batch)
    task = 0.5 / (math.sqrt(0.5) + 1e-6)  # GRPO: (r - mean) / (unbiased std + 1e-6) = +-0.7071
    actions = {1: task, 2: task, 4: -task, 5: -task}  # positions whose next token is sampled
    expected = [teacher[t] - student[t] + 0.5 * actions[t] if t in actions else 0.0
                for t in range(7)]
    got = out.data["advantages"].tolist()
    assert all(abs(g - e) < 1e-6 for g, e in zip(got, expected, strict=True)), (got, expected)
    kl = sum(student[t] - teacher[t] for t in actions) / 4
    assert abs(stats["/distill/reverse_kl"] - kl) < 1e-6
