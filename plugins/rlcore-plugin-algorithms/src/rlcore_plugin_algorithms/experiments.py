"""The sft, rm and dpo experiments: roles, dataset, dataflow graph and evaluation."""

from __future__ import annotations

import dataclasses
from functools import cached_property
from typing import Any

import torch

from rlcore.sdk import (
    INPUT_IDS,
    LOSS_MASK,
    MFC,
    PROMPTS,
    Experiment,
    ModelHandle,
    PackedBatch,
    RoleSpec,
    UnknownItemError,
    build_named,
    check_loss_kernel,
    dataset_name,
    install_hint,
    registry,
)
from rlcore_plugin_algorithms.config import ModelOptions
from rlcore_plugin_algorithms.interfaces import answer_logps, labelled_metrics, sequence_scores
from rlcore_plugin_datasets.unpaired import DESIRABLE, split_pairs

TOKENS = (INPUT_IDS, LOSS_MASK)
LOSS_KEYS = {"sigmoid": ("label_smoothing",), "ipo": ("label_smoothing",),
             "simpo": ("label_smoothing", "gamma"),
             "kto": ("desirable_weight", "undesirable_weight")}  # dpo.* keys each loss reads


def tiny_model_config(options: ModelOptions, vocab_size: int, max_positions: int) -> Any:
    """The ``preset`` family's tiny config, resized for training from scratch."""
    try:
        family = registry.load("families", options.preset)
    except UnknownItemError as err:  # e.g. the default preset llama, with only rlcore-plugin-qwen2
        hint = install_hint("families", options.preset)
        raise UnknownItemError(f"actor.preset={options.preset}: {err} {hint} Or set actor.path "
                               "to an HF model directory, or actor.preset to an installed family.") from err
    return dataclasses.replace(
        family.tiny_config(),
        vocab_size=vocab_size,
        hidden_size=options.hidden_size,
        intermediate_size=options.hidden_size * 4,
        n_layers=options.n_layers,
        n_q_heads=options.n_heads,
        n_kv_heads=options.n_heads,
        head_dim=None,
        rope_theta=10000.0,  # short sequences need fast-turning rotary frequencies
        rope_scaling=None,
        max_positions=max(max_positions, 64),
    )


class PostTraining(Experiment):
    """Shared by the standard experiments: an ``actor`` role built from ``config.actor``."""

    dataset_name = "prompt_answer"

    def actor_spec(self, **kw: Any) -> RoleSpec:
        actor = self.config.actor
        return RoleSpec("actor", trainable=True, model=actor.path, preset=actor.preset,
                        options=self.config.train, lora=actor.lora, **kw)

    def build_tokenizer(self) -> Any:
        """The tokenizer of ``actor.tokenizer``, else of ``actor.path`` (checked as a model
        directory first), else the embedded one."""
        from rlcore.sdk import check_model_dir, load_tokenizer

        actor = self.config.actor
        if actor.path is not None:
            check_model_dir(actor.path, "actor.path")
        return load_tokenizer(actor.tokenizer or actor.path)

    def build_model(self, role: RoleSpec, tokenizer: Any) -> tuple[Any, str | None]:
        if role.model:
            module, family = super().build_model(role, tokenizer)
        else:
            from rlcore.sdk import Transformer

            cfg = tiny_model_config(self.config.actor, len(tokenizer), self.config.dataset.max_length)
            if role.value_head:
                cfg = dataclasses.replace(cfg, value_head=True, tie_embeddings=False)
            module, family = Transformer(cfg), role.preset
        module.gradient_checkpointing = self.config.actor.gradient_checkpointing
        module.loss_kernel = check_loss_kernel(self.config.actor.loss_kernel, "actor.loss_kernel")
        return module, family

    def check(self) -> None:
        """Also the loss kernel, which the run would only reject when it builds the model."""
        check_loss_kernel(self.config.actor.loss_kernel, "actor.loss_kernel")
        super().check()

    def build_dataset(self, tokenizer: Any, **overrides: Any) -> Any:
        """``dataset.name`` (default: the experiment's own dataset) over ``dataset``."""
        config = self.config.dataset
        return build_named(dataset_name(config, self.dataset_name), config, tokenizer,
                           **{**self.dataset_overrides(), **overrides})

    def dataset_overrides(self) -> dict[str, Any]:
        """Dataset settings that follow from the experiment's own (train and eval); none here."""
        return {}

    def has_eval(self) -> bool:
        """Evaluate on ``eval.path``, or on the embedded eval split when training on the embedded task."""
        return self.config.eval.path is not None or self.config.dataset.path is None

    def load_eval_data(self, tokenizer: Any) -> None:
        """Read the held-out pairs (rm, dpo) or prompts (the rest) at start, when evaluation will."""
        if self.has_eval() and self.run_options().eval_every:
            _ = self.eval_pairs if self.dataset_name == "paired" else self.eval_prompts

    @cached_property
    def eval_prompts(self) -> PackedBatch:
        """Held-out prompts with their answers: ``eval.path``, else the embedded eval split."""
        from rlcore_plugin_datasets.config import PromptConfig

        ev, ds = self.config.eval, self.config.dataset
        config = PromptConfig(path=ev.path, format=ev.format, embedded_split="eval",
                              embedded_size=ev.size, embedded_max_operand=ds.embedded_max_operand,
                              max_rows=ev.size, shuffle=False, max_length=ds.max_length)
        dataset = build_named(ev.name or "prompt", config, self.build_tokenizer(), where="eval")
        return dataset.collate([dataset[i] for i in range(len(dataset))])

    def evaluate(self, step: int, handles: dict[str, ModelHandle]) -> dict[str, float]:
        """Greedy accuracy of the actor on held-out prompts under ``eval.metric``, and the mean
        of each reward function (rm and dpo: pairs)."""
        if not self.has_eval():
            return {}
        metrics = self.score_eval(handles["actor"]).metrics()
        return {k: v for k, v in metrics.items() if k == "accuracy" or k.startswith("reward/")}

    def generation_accuracy(self, actor: ModelHandle) -> float:
        """Greedy accuracy on the held-out prompts under ``eval.metric``."""
        return self.score_eval(actor).metrics()["accuracy"]

    def score_eval(self, actor: ModelHandle) -> Any:
        """The held-out prompts' greedy completions, scored as ``rlcore eval`` scores them
        (``rlcore.sdk.score_prompts``; ZeRO-3: weights gathered)."""
        from rlcore.sdk import (
            GenerationConfig,
            eos_ids,
            eval_functions,
            reward_functions,
            score_prompts,
            to_plain,
        )

        batch, tokenizer = self.eval_prompts, actor.tokenizer
        prompts = [batch.sequences(PROMPTS, i)[0].tolist() for i in range(len(batch))]
        module = actor.module
        gconfig = GenerationConfig(max_new_tokens=self.config.eval.max_new_tokens, greedy=True,
                                   eos_token_ids=eos_ids(module, tokenizer))
        names, params, metric = eval_functions(to_plain(self.config))
        was_training = module.training
        module.eval()
        with actor.model.gathered_parameters(), torch.no_grad():
            scores = score_prompts(module, tokenizer, prompts, batch.sample_dicts(), gconfig,
                                   reward_functions(names, params), metric)
        module.train(was_training)
        return scores

    @cached_property
    def eval_pairs(self) -> PackedBatch:
        """Held-out preference pairs: ``eval.path``, else the embedded eval split."""
        ev = self.config.eval
        config = dataclasses.replace(self.config.dataset, path=ev.path, format=ev.format,
                                     embedded_split="eval", embedded_size=ev.size,
                                     max_rows=ev.size, shuffle=False, **self.dataset_overrides())
        name = ev.name or dataset_name(config, self.dataset_name)
        dataset = build_named(name, config, self.build_tokenizer(), where="eval")
        return dataset.collate([dataset[i] for i in range(len(dataset))])


class SFT(PostTraining):
    """Supervised fine-tuning: masked next-token loss; eval is greedy exact-match accuracy."""

    name = "sft"
    headline = ("actor_train/loss", "eval/accuracy")

    def roles(self) -> list[RoleSpec]:
        return [self.actor_spec()]

    def mfcs(self) -> list[MFC]:
        return [MFC("actor_train", "actor", "train_step", "sft", input_keys=TOKENS)]


class RewardModeling(PostTraining):
    """A value-head model trained so that chosen answers outscore rejected ones."""

    name = "rm"
    headline = ("rm_train/loss", "rm_train/accuracy", "eval/accuracy")
    dataset_name = "paired"

    def roles(self) -> list[RoleSpec]:
        return [self.actor_spec(value_head=True)]

    def mfcs(self) -> list[MFC]:
        return [MFC("rm_train", "actor", "train_step", "reward", input_keys=(INPUT_IDS,))]

    def evaluate(self, step: int, handles: dict[str, ModelHandle]) -> dict[str, float]:
        """Pairwise accuracy on held-out pairs."""
        if not self.has_eval():
            return {}
        with torch.no_grad():
            scores = sequence_scores(handles["actor"], self.eval_pairs)
        return {"accuracy": float((scores[0::2] > scores[1::2]).float().mean())}


class DPO(PostTraining):
    """DPO and its relatives: the reference scores each sample once (sigmoid, ipo, kto; orpo
    and simpo have no reference), then the actor takes a step."""

    name = "dpo"
    headline = ("actor_train/loss", "actor_train/rewards/accuracy", "eval/reward_accuracy")
    dataset_name = "paired"

    def roles(self) -> list[RoleSpec]:
        actor = self.config.actor
        ref = RoleSpec("ref", trainable=False, model=actor.path, preset=actor.preset,
                       init_from="actor", options=self.config.ref)
        return [self.actor_spec(), *([ref] if self.config.dpo.uses_reference else [])]

    def mfcs(self) -> list[MFC]:
        dpo = self.config.dpo
        args = {"beta": dpo.beta, "loss_type": dpo.loss_type}  # and the loss's own keys
        args.update({k: getattr(dpo, k) for k in LOSS_KEYS.get(dpo.loss_type, ())})
        if not dpo.uses_reference:
            return [MFC("actor_train", "actor", "train_step", "dpo", input_keys=TOKENS,
                        interface_args=args)]
        labels = (DESIRABLE,) if dpo.loss_type == "kto" else ()
        return [
            MFC("ref_inference", "ref", "inference", "dpo", input_keys=TOKENS,
                output_keys=("ref_logps",), output_remap={"seq_logps": "ref_logps"}),
            MFC("actor_train", "actor", "train_step", "dpo",
                input_keys=(*TOKENS, "ref_logps", *labels), interface_args=args),
        ]

    def dataset_overrides(self) -> dict[str, Any]:
        """kto reads labelled completions: the ``paired`` dataset's unpaired form."""
        return {"unpaired": True} if self.config.dpo.loss_type == "kto" else {}

    def evaluate(self, step: int, handles: dict[str, ModelHandle]) -> dict[str, float]:
        """Implicit-reward accuracy and margin on held-out pairs: ``beta * (log pi - log ref)``,
        or ``beta *`` the mean token log-prob for orpo and simpo (no reference); kto on
        labelled completions: see :func:`labelled_metrics`."""
        if not self.has_eval():
            return {}
        dpo, batch = self.config.dpo, self.eval_pairs
        with torch.no_grad():
            if dpo.uses_reference:
                policy = answer_logps(handles["actor"], batch)
                rewards = dpo.beta * (policy - answer_logps(handles["ref"], batch).to(policy.device))
            else:
                rewards = dpo.beta * answer_logps(handles["actor"], batch, mean=True)
        chosen, rejected = rewards[0::2], rewards[1::2]
        if dpo.loss_type == "kto":  # [completion, mismatched] samples: pairs split in two?
            rewards, halves = rewards[0::2], split_pairs(list(batch.ids))
            if halves is None:
                by_label = labelled_metrics(rewards, batch.data[DESIRABLE].to(rewards.device))
                return {k.replace("rewards/", "reward_"): v for k, v in by_label.items()
                        if k in ("rewards/accuracy", "rewards/margin")}
            chosen, rejected = rewards[halves[0]], rewards[halves[1]]
        margin = chosen - rejected
        return {"reward_accuracy": float((margin > 0).float().mean()), "reward_margin": float(margin.mean())}
