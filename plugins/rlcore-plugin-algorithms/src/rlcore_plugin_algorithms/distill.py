"""On-policy distillation: the student (actor) samples, a frozen teacher scores the sampled
tokens, and each token's advantage is the negative per-token reverse KL estimate
``-(log p_student - log p_teacher)`` (plus ``distill.task_weight`` times a task advantage).

    actor_gen -> teacher_inf, rew_inf -> adv -> actor_train

The teacher is ``teacher.path`` (an HF directory or an rlcore run), else an SFT run of the
tiny built-in model trained once into a cache folder named by its config (docs/distill.md).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import torch

from rlcore.sdk import (
    ADVANTAGES,
    INPUT_IDS,
    LOGPROBS,
    MFC,
    PROMPT_MASK,
    ConfigError,
    ModelHandle,
    PackedBatch,
    RoleSpec,
    distributed,
)
from rlcore_plugin_algorithms import rl
from rlcore_plugin_algorithms.advantages import AdvantageInterface
from rlcore_plugin_algorithms.config import SFTConfig
from rlcore_plugin_algorithms.rl_experiments import RL, WARM_START_DATA
from rlcore_plugin_algorithms.sampling import action_mask

TEACHER_LOGPROBS = "packed_teacher_logprobs"
REPORTING_KEYS = ("run.progress", "run.log_every_s", "run.collective_timeout_s")


def distill_advantages(logp: torch.Tensor, teacher_logp: torch.Tensor,
                       task_adv: torch.Tensor | None = None, task_weight: float = 0.0) -> torch.Tensor:
    """Per sampled token ``-(log p_student - log p_teacher) + task_weight * task_adv``: its
    expectation under the student is minus the reverse KL(student || teacher) at that position."""
    adv = teacher_logp.float() - logp.float()
    return adv if task_adv is None or not task_weight else adv + task_weight * task_adv.float()


class DistillAdvantageInterface(AdvantageInterface):
    """inference: the task advantages of ``adv.estimator``, then :func:`distill_advantages`,
    whitened over the batch with ``adv.norm``."""

    def __init__(self, task_weight: float = 0.0, **kw: Any):
        super().__init__(**kw)
        self.task_weight = task_weight

    @torch.no_grad()
    def inference(self, handle: ModelHandle, data: PackedBatch) -> tuple[PackedBatch, dict]:
        out, stats = super().inference(handle, data)
        act = action_mask(data.data[PROMPT_MASK], data.cu_seqlens(INPUT_IDS))
        student, teacher = data.data[LOGPROBS][act].float(), data.data[TEACHER_LOGPROBS][act].float()
        adv = distill_advantages(student, teacher, out.data[ADVANTAGES][act], self.task_weight)
        if self.adv.norm:  # a baseline: the batch's mean, over its std (all ranks)
            adv = rl.whiten(adv, stats=rl.moments_to_stats(
                *distributed.all_reduce(list(rl.moments(adv))), unbiased=self.adv.whiten_unbiased))
        full = torch.zeros(len(act))
        full[act] = adv
        out.data[ADVANTAGES] = full
        total, count = distributed.all_reduce([float((student - teacher).sum()), float(act.sum())])
        stats["/distill/reverse_kl"] = total / max(count, 1.0)  # per token, sampled estimate
        return out, stats


def check_same_tokenizer(teacher_dir: str, teacher: Any, student: Any, student_where: str) -> None:
    """Refuse a teacher whose token ids differ from the student's (ConfigError naming both)."""
    t, s = teacher.get_vocab(), student.get_vocab()
    if t == s:
        return
    token = next((k for k in sorted(set(t) | set(s)) if t.get(k) != s.get(k)), "?")
    raise ConfigError(
        f"teacher.path {teacher_dir} has another tokenizer than the student ({student_where}): "
        f"{len(t)} and {len(s)} tokens, and {token!r} is id {t.get(token)} in the teacher's but "
        f"{s.get(token)} in the student's. Distillation compares the log-probs of the same token "
        "ids; give a teacher that shares the student's tokenizer (cross-tokenizer distillation "
        "is not supported yet)")


class Distill(RL):
    """The RL graph with a frozen teacher scoring the student's tokens, and the advantage node
    turning the per-token reverse KL (and the task reward) into advantages."""

    name = "distill"
    headline = ("distill/reverse_kl", "reward/mean", "eval/accuracy")

    def __init__(self, config: Any = None):
        super().__init__(config)
        self.teacher_path: str | None = None

    def teacher_dir(self) -> str | None:
        """The teacher's HF directory: ``teacher.path`` resolved (a run: its newest checkpoint's
        actor), the trained tiny teacher after :meth:`prepare`, else None."""
        path = self.config.teacher.path
        if self.teacher_path is not None or path is None:
            return self.teacher_path
        from rlcore.sdk import ModelLoadError, resolve_model

        try:
            return str(resolve_model(Path(path)).model_dir)
        except ModelLoadError as err:
            raise ModelLoadError(f"teacher.path: {err}") from None

    def roles(self) -> list[RoleSpec]:
        teacher = RoleSpec("teacher", trainable=False, model=self.teacher_dir(),
                           options=self.config.teacher.inference)
        *head, adv = super().roles()
        return [*head, teacher, adv]

    def mfcs(self) -> list[MFC]:
        mfcs = super().mfcs()
        teacher = self.scorer_mfc("teacher_inf", "teacher", TEACHER_LOGPROBS, mfcs[0])
        for i, m in enumerate(mfcs):
            if m.name == "adv":
                mfcs[i] = dataclasses.replace(
                    m, interface="distill_advantages",
                    input_keys=(*m.input_keys, TEACHER_LOGPROBS),
                    interface_args={**m.interface_args,
                                    "task_weight": self.config.distill.task_weight})
        return [mfcs[0], teacher, *mfcs[1:]]

    def check(self) -> None:
        """Also the teacher's tokenizer against the student's (``--dry-run`` refuses it too)."""
        super().check()
        self.check_teacher()

    def check_teacher(self) -> None:
        """A loadable teacher directory whose tokenizer is the student's (nothing to check
        for the tiny teacher before :meth:`prepare` trains it)."""
        where = self.teacher_dir()
        if where is None:
            return
        from rlcore.sdk import check_model_dir, load_tokenizer

        check_model_dir(where, "teacher.path")
        actor = self.config.actor
        student = actor.tokenizer or actor.path or "the embedded tokenizer"
        check_same_tokenizer(self.config.teacher.path or where, load_tokenizer(where),
                             self.build_tokenizer(), student)

    def evaluate(self, step: int, handles: dict[str, Any]) -> dict[str, float]:
        """The student's eval; at step 0 also the teacher's greedy accuracy (what it can reach)."""
        metrics = super().evaluate(step, handles)
        if step == 0 and "accuracy" in metrics:
            metrics["teacher_accuracy"] = self.generation_accuracy(handles["teacher"])
        return metrics

    # ------------------------------------------------------------------ the tiny teacher

    def teacher_config(self) -> SFTConfig:
        """The SFT run that makes the default teacher: ``teacher.*`` on the dataset's rows."""
        from rlcore.sdk import DeepSpeedOptions, OptimizerOptions, RunOptions
        from rlcore_plugin_algorithms.config import ModelOptions
        from rlcore_plugin_datasets.config import PromptAnswerConfig

        c, t = self.config, self.config.teacher
        dataset = PromptAnswerConfig(**{k: getattr(c.dataset, k) for k in WARM_START_DATA})
        model = ModelOptions(preset=c.actor.preset, hidden_size=t.hidden_size,
                             n_layers=c.actor.n_layers, n_heads=c.actor.n_heads)
        train = DeepSpeedOptions(dtype=c.train.dtype, optimizer=OptimizerOptions(lr=t.lr))
        run = RunOptions(seed=c.run.seed, epochs=1000, max_steps=t.sft_steps,
                         batch_size=t.batch_size, progress=c.run.progress,
                         log_every_s=c.run.log_every_s,
                         collective_timeout_s=c.run.collective_timeout_s)
        return SFTConfig(actor=model, dataset=dataset, train=train, run=run)

    def teacher_cache(self) -> Path:
        """``CACHE/sft-<hash>``: one folder per teacher config, shared by runs."""
        from rlcore.sdk import to_plain

        plain = to_plain(self.teacher_config())
        for key in REPORTING_KEYS:  # how the run reports does not change the weights
            section, name = key.split(".")
            plain[section].pop(name, None)
        digest = hashlib.sha256(json.dumps(plain, sort_keys=True).encode()).hexdigest()[:16]
        root = self.config.teacher.cache_dir or os.environ.get("RLCORE_CACHE")
        base = Path(root) if root else Path.home() / ".cache" / "rlcore"
        return (base if self.config.teacher.cache_dir else base / "teachers") / f"sft-{digest}"

    def prepare(self, run_dir: Path) -> None:
        """The student's warm start (if any), then the teacher: ``teacher.path``, or the tiny
        teacher, trained now unless its cache folder holds it finished."""
        super().prepare(run_dir)
        if self.config.teacher.path is None:
            self.teacher_path = self.train_teacher()
        self.check_teacher()

    def train_teacher(self) -> str:
        """The tiny teacher's HF directory, trained now unless the cache holds it finished."""
        from rlcore.sdk import CheckpointManager, run

        config, where = self.teacher_config(), self.teacher_cache()
        ckpt = CheckpointManager(where)
        latest = ckpt.latest()
        if latest is None or latest.name != ckpt.step_dir_name(config.run.max_steps):
            loud = distributed.rank() == 0
            if loud:
                print(f"teacher: {config.run.max_steps} SFT steps of a hidden-"
                      f"{config.actor.hidden_size} model into {where} (once: later runs with "
                      "these teacher settings reuse it)", flush=True)
            start = time.perf_counter()
            run("sft", config, where, resume=True)
            if loud:
                print(f"teacher: trained in {time.perf_counter() - start:.0f} s", flush=True)
            latest = ckpt.latest()
        elif distributed.rank() == 0:
            print(f"teacher: reusing {latest / 'actor'}", flush=True)
        return str(latest / "actor")
