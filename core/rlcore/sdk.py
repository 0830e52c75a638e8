"""rlcore.sdk: the names an algorithm, dataset, family, reward or environment plugin imports.

Plugins import from here (and ``rlcore``, ``rlcore.plugins.records``, ``rlcore.testing``),
never from the modules behind it, so the core can move its internals without breaking them.
Names load on first use: ``from rlcore.sdk import RunOptions`` does not import torch.

    from rlcore.sdk import MFC, Experiment, ModelInterface, PackedBatch, StepContext
"""

from __future__ import annotations

import importlib
from typing import Any

# module -> the names it gives the SDK ("*module*": the module itself, under its last name)
_SOURCES: dict[str, str] = {
    # data: batches, datasets, tokenizers, and the keys of a trajectory
    "rlcore.data.batch": "PackedBatch",
    "rlcore.data.dataset": "PackedDataset Sample fit_prompt",
    "rlcore.data.config": "DatasetConfig",
    "rlcore.data.loader": "BatchIterator",
    "rlcore.data.select": "build_named dataset_name",
    "rlcore.data.sources": "Row RowRef require check_messages check_str check_str_list",
    "rlcore.data.readers": "Reader register_reader",
    "rlcore.data.tokenizer": "load_tokenizer encode chat_segments has_chat_template render_chat",
    "rlcore.data.embedded": "*module*",
    "rlcore.data.trajectory": "*module* AdvantageInputs PolicyLossInputs Field TRAJECTORY ROLLOUT "
                              "PROMPTS INPUT_IDS LOSS_MASK PROMPT_MASK LOGPROBS LOGITS_KEEP_IDS "
                              "LOGITS_KEEP_COUNTS KEPT_TOKENS ROUTED_EXPERTS "
                              "NO_EOS VERSION REWARDS BASELINE_REWARDS VALUES REF_LOGPROBS "
                              "ADVANTAGES RETURNS KL_COEF PROX_LOGPROBS ENV_REWARDS TURN_REWARDS",
    # errors and config values
    "rlcore.errors": "RlcoreError ConfigError DataError ModelLoadError UnknownItemError",
    "rlcore.config": "to_plain",
    "rlcore.config.profiles": "changed_keys fill_defaults source_of",
    "rlcore.config.schema": "coerce type_name",
    # experiments, the dataflow graph and the run
    "rlcore.dfg": "MFC",
    "rlcore.runtime.experiment": "Experiment check_model_dir",
    "rlcore.runtime.step": "StepContext",
    "rlcore.runtime.interface": "ModelHandle ModelInterface",
    "rlcore.runtime.roles": "RoleSpec",
    "rlcore.runtime.options": "DeepSpeedOptions InferenceOptions LoraOptions OptimizerOptions RunOptions",
    "rlcore.runtime.distributed": "*module*",
    "rlcore.runtime.checkpoint": "CheckpointManager config_changes",
    "rlcore.runtime.loop": "run",
    "rlcore.cli.model_source": "ModelSource resolve_model",
    # models: the core transformer, families, generation, log-probs
    "rlcore.models.transformer": "Transformer",
    "rlcore.models.config": "TransformerConfig",
    "rlcore.models.decoder_family": "DecoderFamily LLAMA_DEFAULTS",
    "rlcore.models.hf_layout": "DecoderKeys LLAMA_BLOCK LLAMA_STYLE_TOP rope_from_hf rope_to_hf",
    "rlcore.models.moe_family": "MoEFamily MOE_BLOCK",
    "rlcore.models.moe": "aux_loss moe_layers natural_routing recorded_routing "
                         "replay_routing router_agreement",
    "rlcore.models.family": "StateDict",
    "rlcore.models.generation": "GenerationConfig generate",
    "rlcore.models.token_logprobs": "TokenQuery entropy_from_logprobs",
    "rlcore.models.kept_tokens": "KeptTokens",
    "rlcore.models.hf_io": "load_pretrained save_pretrained",
    "rlcore.models.loss_kernel": "check_loss_kernel",
    "rlcore.scoring": "score_prompts reward_functions eval_functions pass_at_k eos_ids",
    # rollout engines
    "rlcore.rollout.engine": "AsyncRolloutEngine RolloutEngine Rollout",
    "rlcore.rollout.local": "LocalEngine",
    # agents: environments and multi-turn episodes
    "rlcore.agents.environment": "Environment ToolEnvironment ToolError StepResult tool_schema "
                                 "tool_message environment_factory",
    "rlcore.agents.tool_calls": "parse_tool_calls render_call",
    "rlcore.agents.episodes": "Episode Segment run_episodes episode_metrics",
    "rlcore.agents.sandbox": "run_code SandboxResult",
    # the registry
    "rlcore.plugins.registry": "*module*",
    "rlcore.plugins.lookup": "did_you_mean",
    "rlcore.first_party": "install_hint",
}
_WHERE: dict[str, tuple[str, str | None]] = {
    (module.rsplit(".", 1)[-1] if name == "*module*" else name):
        (module, None if name == "*module*" else name)
    for module, names in _SOURCES.items() for name in names.split()
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    """Import ``name`` from the module that owns it, once."""
    if name not in _WHERE:
        raise AttributeError(f"rlcore.sdk has no {name!r}; it offers: {', '.join(__all__)}")
    module, attr = _WHERE[name]
    value = importlib.import_module(module)
    value = value if attr is None else getattr(value, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
