"""The RL experiment, registered as the ppo, grpo and remax presets (rl_config.py), and the
base of every experiment that samples from the actor (RAFT in contrib too).

    actor_gen (generate) -> rew_inf, ref_inf, critic_inf (inference) -> adv -> actor_train, critic_train

The advantage estimator's record decides the graph: a critic when it needs one, a greedy
baseline (ReMax) when it asks for one; ``ref`` only when the KL coefficient is not fixed at 0.
With ``rollout.correction`` other than none, ``actor_inf`` scores the sampled tokens with the
actor's weights before ``actor_train`` (the proximal log-probs; docs/ppo.md#off-policy-correction).
With the tiny built-in actor (``actor.path`` null) an SFT warm start runs first, once, into
``RUN_DIR/warm_start`` (see :meth:`SamplingExperiment.prepare`).
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

from rlcore.sdk import (
    ADVANTAGES,
    BASELINE_REWARDS,
    ENV_REWARDS,
    INPUT_IDS,
    KEPT_TOKENS,
    KL_COEF,
    LOGPROBS,
    MFC,
    NO_EOS,
    PROMPT_MASK,
    PROMPTS,
    PROX_LOGPROBS,
    REF_LOGPROBS,
    RETURNS,
    REWARDS,
    ROLLOUT,
    ROUTED_EXPERTS,
    TURN_REWARDS,
    VALUES,
    VERSION,
    DeepSpeedOptions,
    InferenceOptions,
    LoraOptions,
    OptimizerOptions,
    PackedBatch,
    RlcoreError,
    RoleSpec,
    RunOptions,
    StepContext,
    registry,
)
from rlcore_plugin_algorithms.config import SFTConfig
from rlcore_plugin_algorithms.experiments import SFT, PostTraining
from rlcore_plugin_algorithms.multi_turn import environment_tasks, write_demonstrations
from rlcore_plugin_algorithms.rl_config import GenerationOptions
from rlcore_plugin_algorithms.sampling import replays_mask

WARM_START_DIR = "warm_start"
# What the warm start's prompt/answer data takes from the RL dataset section.
WARM_START_DATA = ("path", "format", "json_field", "max_length", "seed", "embedded_max_operand")


class SamplingExperiment(PostTraining):
    """An actor that samples responses which a reward role scores: the sampler and reward
    nodes, the SFT warm start of the tiny built-in actor, and greedy-accuracy eval."""

    dataset_name = "prompt"
    headline = ("reward/mean", "eval/accuracy")

    def __init__(self, config: Any = None):
        super().__init__(config)
        self.warm_start_path: str | None = None

    def actor_spec(self, **kw: Any) -> RoleSpec:
        spec = super().actor_spec(**kw)
        if self.warm_start_path is not None:
            spec = dataclasses.replace(spec, model=self.warm_start_path)
        return spec

    def reward_role(self) -> RoleSpec:
        """A reward model when ``reward.path`` is set, else a role without a model."""
        if self.config.reward.path:
            return RoleSpec("reward", model=self.config.reward.path, value_head=True,
                            options=InferenceOptions())
        return RoleSpec("reward", backend="none")

    def sampler_mfc(self, name: str = "actor_gen", gen: GenerationOptions | None = None,
                    outputs: dict[str, str] | None = None) -> MFC:
        """The actor's sampling node. It writes the rollout keys, or only ``outputs``
        (rollout key -> graph key)."""
        gen = gen or self.config.gen
        env = getattr(self.config, "env", None)
        moe = {}
        if outputs is None:  # the main sampler (not ReMax's greedy one) records the routing
            outputs = {k: k for k in (*ROLLOUT, *(KEPT_TOKENS if replays_mask(gen) else ()),
                                      *((ENV_REWARDS, TURN_REWARDS) if self.multi_turn else ()),
                                      *self.routing_keys())}
            moe = {"moe": self.config.actor.moe} if self.routing_keys() else {}
        return MFC(name, "actor", "generate", "sampler", input_keys=(PROMPTS,),
                   output_keys=tuple(outputs.values()),
                   output_remap={k: v for k, v in outputs.items() if k != v},
                   interface_args={"gen": gen, "seed": self.config.run.seed,
                                   **({"env": env} if self.multi_turn else {}),
                                   **self.rollout_engine(), **moe})

    def routing_keys(self) -> tuple[str, ...]:
        """``routed_experts`` when the actor's sampling routing is recorded (``actor.moe``)."""
        return (ROUTED_EXPERTS,) if self.config.actor.moe.records else ()

    @property
    def multi_turn(self) -> bool:
        """Whether the actor samples episodes in an environment (``env.name``)."""
        return getattr(getattr(self.config, "env", None), "name", None) is not None

    def rollout_engine(self) -> dict[str, Any]:
        """The sampler's ``engine`` (a registered rollout engine) and its ``engine_args``."""
        return {"engine": "local", "engine_args": {}}

    def reward_mfc(self, name: str = "rew_inf", rename: dict[str, str] | None = None,
                   output: str = REWARDS) -> MFC:
        """The reward node: a reward model, a remote service, an interface or registered
        functions. ``rename`` maps its input names to other graph keys (ReMax scores the
        greedy responses); the scores go to graph key ``output``."""
        r, rename = self.config.reward, rename or {}
        keys = (INPUT_IDS,) if r.path else (INPUT_IDS, PROMPT_MASK, NO_EOS)
        keys = (INPUT_IDS, ENV_REWARDS) if self.multi_turn else keys
        wiring = {"input_keys": tuple(rename.get(k, k) for k in keys), "output_keys": (output,),
                  "input_remap": {rename[k]: k for k in keys if k in rename},
                  "output_remap": {REWARDS: output} if output != REWARDS else {}}
        if self.multi_turn:
            return MFC(name, "reward", "inference", "env_rewards", **wiring)
        if r.path:
            return MFC(name, "reward", "inference", "reward", **wiring)
        if r.interface:
            return MFC(name, "reward", "inference", r.interface,
                       interface_args=dict(r.interface_args), **wiring)
        if r.url:
            args = {"url": r.url, "timeout_s": r.timeout_s, "max_retries": r.max_retries,
                    "request_size": r.request_size, "max_concurrency": r.max_concurrency}
            return MFC(name, "reward", "inference", "remote_reward", interface_args=args, **wiring)
        args = {"functions": list(r.functions), "weights": r.weights, "params": r.function_params}
        return MFC(name, "reward", "inference", "reward_functions", interface_args=args, **wiring)

    def build_dataset(self, tokenizer: Any, **overrides: Any) -> Any:
        """The prompts; rows without the answer a rule reward reads fail now, naming the file,
        the row and the field (the run and ``--dry-run`` alike)."""
        from rlcore_plugin_algorithms.rewards import check_answers

        if self.multi_turn:
            return environment_tasks(self.config, tokenizer, "train", **overrides)
        dataset = super().build_dataset(tokenizer, **overrides)
        r = self.config.reward
        if not overrides and not (r.path or r.url or r.interface):
            samples = (dataset[i] for i in range(len(dataset)))
            check_answers([(s.id, s.metadata) for s in samples], list(r.functions),
                          self.config.dataset.path or "the embedded task")
        return dataset

    def load_eval_data(self, tokenizer: Any) -> None:
        """The held-out prompts, checked for the answers their eval metric reads."""
        from rlcore.sdk import eval_functions, to_plain
        from rlcore_plugin_algorithms.rewards import check_answers

        super().load_eval_data(tokenizer)
        if self.has_eval() and self.run_options().eval_every and not self.multi_turn:
            batch = self.eval_prompts
            names, _, _ = eval_functions(to_plain(self.config))
            check_answers(list(zip(batch.ids, batch.sample_dicts(), strict=True)), names,
                          f"eval.path {self.config.eval.path}" if self.config.eval.path
                          else "the embedded eval split")

    # ------------------------------------------------------------------ warm start

    def warm_start_config(self, demonstrations: str | None = None) -> SFTConfig | None:
        """The SFT stage that runs first: only for the tiny built-in actor (ZeRO-0: it is tiny).
        Multi-turn runs train on the environment's ``demonstrations`` (a JSONL of chats)."""
        c, ws = self.config, self.config.warm_start
        if c.actor.path is not None or ws.sft_steps <= 0:
            return None
        from rlcore_plugin_datasets.config import PromptAnswerConfig

        dataset = PromptAnswerConfig(**{k: getattr(c.dataset, k) for k in WARM_START_DATA})
        if self.multi_turn:
            dataset = PromptAnswerConfig(path=demonstrations, max_length=c.dataset.max_length)
        train = DeepSpeedOptions(dtype=c.train.dtype, optimizer=OptimizerOptions(lr=ws.lr))
        run = RunOptions(seed=c.run.seed, epochs=1000, max_steps=ws.sft_steps,
                         batch_size=ws.batch_size, progress=c.run.progress,
                         log_every_s=c.run.log_every_s,
                         collective_timeout_s=c.run.collective_timeout_s)
        actor = dataclasses.replace(c.actor, lora=LoraOptions(),  # the base: every weight trains
                                    moe=dataclasses.replace(c.actor.moe, router_replay=False,
                                                            record_routing=False))
        return SFTConfig(actor=actor, dataset=dataset, train=train, run=run)

    def check(self) -> None:
        """Also the warm start's data: its SFT stage reads ``dataset.path`` as prompt/answer rows."""
        super().check()
        config = self.warm_start_config()
        if config is not None and not self.multi_turn:  # an environment's demos are generated
            SFT(config).check()

    def prepare(self, run_dir: Path) -> None:
        """Run the SFT warm start into ``RUN_DIR/warm_start`` unless it is there already, then
        point the actor at its weights. A warm start of another config is trained again."""
        if self.warm_start_config() is None:
            return
        from rlcore.sdk import CheckpointManager, config_changes, distributed, run, to_plain

        where = Path(run_dir) / WARM_START_DIR
        demos = write_demonstrations(self.config, where) if self.multi_turn else None
        config = self.warm_start_config(demos)
        ckpt = CheckpointManager(where)
        latest = ckpt.latest()
        same = latest is not None and not config_changes(
            ckpt.trainer_state(latest).get("config", {}), to_plain(config))
        if not same or latest.name != ckpt.step_dir_name(config.run.max_steps):
            if distributed.rank() == 0:
                print(f"warm start: {config.run.max_steps} SFT steps into {where} (once; "
                      "warm_start.sft_steps=0 skips it)")
            run("sft", config, where, resume=same)
            latest = ckpt.latest()
        self.warm_start_path = str(latest / "actor")


class RL(SamplingExperiment):
    """The actor samples; reward, reference and critic score; the advantage node computes
    advantages once; the actor and the critic train (ReaL's PPO graph, one node more)."""

    name = "rl"

    def rollout_engine(self) -> dict[str, Any]:
        r = self.config.rollout
        args = {"sync_check_tol": r.sync_check_tol, "sync_timeout_s": r.sync_timeout_s,
                "wait_timeout_s": self.config.run.collective_timeout_s, "partial": r.partial}
        return {"engine": r.engine, "engine_args": args if r.engine == "worker" else {}}

    def rollout_processes(self) -> int:
        return self.config.rollout.procs

    def evaluate(self, step: int, handles: dict[str, Any]) -> dict[str, float]:
        """Multi-turn: greedy episodes on the held-out tasks (accuracy: the share solved)."""
        if not self.multi_turn:
            return super().evaluate(step, handles)
        if not self.has_eval():
            return {}
        from rlcore_plugin_algorithms.multi_turn import greedy_episode_metrics

        return greedy_episode_metrics(handles["actor"], self.env_eval_prompts, self.config)

    def load_eval_data(self, tokenizer: Any) -> None:
        if not self.multi_turn:
            return super().load_eval_data(tokenizer)
        if self.has_eval() and self.run_options().eval_every:
            _ = self.env_eval_prompts

    @functools.cached_property
    def env_eval_prompts(self) -> PackedBatch:
        """The held-out tasks of the environment, or ``eval.path``."""
        return environment_tasks(self.config, self.build_tokenizer(), "eval")

    def headline_metrics(self) -> list[str]:
        """reward/mean and eval/accuracy; kl/ref when there is a reference model."""
        return [*self.headline, *(["kl/ref"] if self.config.kl.uses_ref else [])]

    @property
    def estimator(self) -> Any:
        """The ``adv.estimator`` record: what the graph must provide for it."""
        return registry.get("estimators", self.config.adv.estimator)

    def roles(self) -> list[RoleSpec]:
        c = self.config
        actor = self.actor_spec()
        roles = [actor]
        if c.critic is not None:
            roles.append(dataclasses.replace(
                actor, name="critic", model=c.critic.path or actor.model, value_head=True,
                init_from=None if c.critic.path else "actor", options=c.critic.train,
                lora=c.critic.lora))
        if c.kl.uses_ref:
            roles.append(dataclasses.replace(actor, name="ref", trainable=False, init_from="actor",
                                             options=c.ref))
        return [*roles, self.reward_role(), RoleSpec("adv", backend="none")]

    def mfcs(self) -> list[MFC]:
        c, est = self.config, self.estimator
        mask = KEPT_TOKENS if replays_mask(c.gen) else ()
        sampler = self.sampler_mfc()
        mfcs = [sampler, self.reward_mfc()]
        scored = [REWARDS]
        if c.kl.uses_ref:
            mfcs.append(self.scorer_mfc("ref_inf", "ref", REF_LOGPROBS, sampler))
            scored.append(REF_LOGPROBS)
        critic_args = {"critic": c.critic, "policy": c.policy, "gen": c.gen}
        if c.critic is not None:
            mfcs.append(MFC("critic_inf", "critic", "inference", "critic", input_keys=(INPUT_IDS,),
                            output_keys=(VALUES,), interface_args=critic_args))
            scored.append(VALUES)
        if est.needs_baseline:
            mfcs.extend(self.baseline_mfcs())
            scored.append(BASELINE_REWARDS)
        if self.multi_turn:
            scored.append(TURN_REWARDS)
        mfcs.append(MFC("adv", "adv", "inference", "advantages",
                        input_keys=(INPUT_IDS, PROMPT_MASK, LOGPROBS, NO_EOS, *scored),
                        output_keys=(ADVANTAGES, KL_COEF, *((RETURNS,) if c.critic else ())),
                        interface_args={"adv": c.adv, "kl": c.kl, "reward": c.reward,
                                        "max_new_tokens": c.gen.max_new_tokens}))
        ref = (REF_LOGPROBS,) if c.kl.uses_ref else ()
        prox, policy_args = (), {"policy": c.policy, "kl": c.kl, "gen": c.gen}
        if c.rollout.correction != "none":  # the actor's own log-probs before it updates
            mfcs.append(self.scorer_mfc("actor_inf", "actor", PROX_LOGPROBS, sampler))
            prox, policy_args = (PROX_LOGPROBS,), {**policy_args, "rollout": c.rollout}
        if c.rollout.procs:  # workers sample: bound and report how old the data is
            policy_args["max_staleness"] = c.rollout.max_staleness
        if self.routing_keys():
            policy_args["moe"] = c.actor.moe
        mfcs.append(MFC("actor_train", "actor", "train_step", "policy",
                        input_keys=(INPUT_IDS, PROMPT_MASK, LOGPROBS, VERSION, *mask, ADVANTAGES,
                                    KL_COEF, *ref, *prox, *self.routing_keys()),
                        interface_args=policy_args))
        if c.critic is not None:
            mfcs.append(MFC("critic_train", "critic", "train_step", "critic",
                            input_keys=(INPUT_IDS, PROMPT_MASK, VALUES, RETURNS),
                            interface_args=critic_args))
        return mfcs

    def scorer_mfc(self, name: str, role: str, output: str, sampler: MFC) -> MFC:
        """``role``'s log-probs of the sampled tokens, as sampling saw them, under ``output``."""
        mask = KEPT_TOKENS if replays_mask(self.config.gen) else ()
        mask = (*mask, *self.routing_keys())
        return MFC(name, role, "inference", "sampler", input_keys=(INPUT_IDS, PROMPT_MASK, *mask),
                   output_keys=(output,), output_remap={"logprobs": output},
                   interface_args=sampler.interface_args)

    def baseline_mfcs(self) -> list[MFC]:
        """ReMax's baseline: one greedy response per prompt, scored by the reward node."""
        greedy = dataclasses.replace(self.config.gen, greedy=True, n_samples=1)
        renamed = {INPUT_IDS: "greedy_input_ids", PROMPT_MASK: "greedy_prompt_mask",
                   NO_EOS: "greedy_no_eos_mask",
                   **({ENV_REWARDS: "greedy_env_rewards"} if self.multi_turn else {})}
        return [self.sampler_mfc("actor_greedy", greedy, renamed),
                self.reward_mfc("rew_greedy", renamed, BASELINE_REWARDS)]

    # ------------------------------------------------------------------ the step

    def step(self, ctx: StepContext, batch: PackedBatch) -> PackedBatch:
        """The graph once; with ``dynamic_sampling.enabled`` (DAPO), prompts whose responses
        all scored alike are dropped after the reward node and the batch is refilled."""
        if self.config.rollout.max_staleness:
            self.sample_ahead(ctx, batch)
        ds = self.config.dynamic_sampling
        if not ds.enabled:
            return ctx.run(batch)
        cut = ctx.order.index("rew_inf") + 1
        head, tail = ctx.order[:cut], ctx.order[cut:]
        target, seen, refills = len(batch), len(batch), 0
        kept = _keep_informative(ctx.run(batch, head))
        while ctx.all_reduce([target - len(kept)], "max")[0] > 0:
            if refills == ds.max_refills:
                raise RlcoreError(
                    f"dynamic sampling: after {refills} extra batches {len(kept)} of {target} "
                    f"samples are left on rank {ctx.rank} (their responses all got the same "
                    f"reward); raise {ds.section}.max_refills, change the task's difficulty "
                    f"or the sampling, or set {ds.section}.enabled=false")
            try:
                extra = ctx.next_batch()
            except StopIteration:
                raise RlcoreError("dynamic sampling ran out of data while refilling the batch "
                                  f"({len(kept)} of {target} samples)") from None
            extra = extra.gather([i for i, sid in enumerate(extra.ids) if sid not in kept.ids])
            refills, seen = refills + 1, seen + len(extra)
            if len(extra):
                kept = PackedBatch.concat([kept, _keep_informative(ctx.run(extra, head))])
        ctx.add_metrics({"sampling/refills": refills, "sampling/kept_frac": len(kept) / max(seen, 1)})
        return ctx.run(kept.gather(range(target)), tail)

    def sample_ahead(self, ctx: StepContext, batch: PackedBatch) -> None:
        """Asynchronous RL: the workers get this step's batch and the next ``max_staleness``
        ones now, with the newest weights, and sample them while the trainers train; a batch
        trained at step t was thus sampled by weights of step t - max_staleness or newer."""
        sampler, actor = ctx.interface("actor_gen"), ctx.handles["actor"]
        sampler.prefetch(actor, batch)
        for k in range(1, self.config.rollout.max_staleness + 1):
            upcoming = ctx.peek(k)
            if upcoming is None:
                break
            sampler.prefetch(actor, upcoming)


def rewards_differ(batch: PackedBatch) -> list[bool]:
    """Per sample: whether its responses' rewards are not all equal."""
    out, start = [], 0
    rewards = batch.data[REWARDS].tolist()
    for lens in batch.seqlens[REWARDS]:
        group = rewards[start : start + len(lens)]
        out.append(max(group) - min(group) > 1e-6)
        start += len(lens)
    return out


def _keep_informative(batch: PackedBatch) -> PackedBatch:
    return batch.gather([i for i, ok in enumerate(rewards_differ(batch)) if ok])
