"""The RL interfaces on a tiny model: logits-mask replay, drift, the stale-weights guard, the
advantage node, the critic, rewards."""

from __future__ import annotations

import math

import pytest
import torch

from rlcore.data.batch import PackedBatch
from rlcore.data.tokenizer import load_tokenizer
from rlcore.models.config import TransformerConfig
from rlcore.models.transformer import Transformer
from rlcore.runtime.backends import DeepSpeedBackend, InferenceBackend
from rlcore.runtime.interface import ModelHandle
from rlcore.runtime.options import DeepSpeedOptions, OptimizerOptions
from rlcore_plugin_algorithms.advantages import AdvantageInterface
from rlcore_plugin_algorithms.rewards import RewardFunctionError, RewardFunctionInterface
from rlcore_plugin_algorithms.rl_config import (
    AdvantageOptions,
    CriticOptions,
    GenerationOptions,
    KLOptions,
    PolicyOptions,
    RewardOptions,
)
from rlcore_plugin_algorithms.rl_interfaces import (
    CriticInterface,
    PolicyInterface,
    StaleRolloutError,
)
from rlcore_plugin_algorithms.sampling import SamplerInterface, action_mask

TOKENIZER = load_tokenizer(None)


def tiny(seed=0, value_head=False):
    torch.manual_seed(seed)
    cfg = TransformerConfig(vocab_size=len(TOKENIZER), hidden_size=32, intermediate_size=64,
                            n_layers=2, n_q_heads=4, n_kv_heads=2, value_head=value_head,
                            tie_embeddings=False, max_positions=64)
    return Transformer(cfg)


def frozen(module):
    wrapped = InferenceBackend().wrap(module)
    return ModelHandle("actor", wrapped.module, wrapped, TOKENIZER)


def trainable(module, lr=1e-3):
    wrapped = DeepSpeedBackend(DeepSpeedOptions(optimizer=OptimizerOptions(lr=lr))).wrap(
        module, total_steps=10)
    return ModelHandle("actor", wrapped.module, wrapped, TOKENIZER)


def prompts(n=4):
    rows = [TOKENIZER(f"{a}+{a + 1}=")["input_ids"] for a in range(10, 10 + n)]
    answers = [str(2 * a + 1) for a in range(10, 10 + n)]
    return PackedBatch.from_sequences([f"p{i}" for i in range(n)],
                                      {"packed_prompts": [[r] for r in rows]},
                                      metadata={"answer": answers})


def actor(gen):
    return SamplerInterface(gen, seed=3)


def replay_ratio(gen):
    """exp(train-time log-prob - sampling log-prob) on the responses, same weights."""
    handle = frozen(tiny())
    iface = actor(gen)
    rollout = iface.generate(handle, prompts())
    scored = iface.inference(handle, rollout)
    act = action_mask(rollout.data["prompt_mask"], rollout.cu_seqlens("packed_input_ids"))
    gen_lp = rollout.data["packed_logprobs"][act]
    return torch.exp(scored.data["logprobs"][act] - gen_lp), rollout


@pytest.mark.parametrize("gen", [
    GenerationOptions(top_k=5, n_samples=3),
    GenerationOptions(top_p=0.7, temperature=0.8, n_samples=2),
    GenerationOptions(min_new_tokens=3, top_k=20),
])
def test_logits_mask_replay_gives_ratio_one(gen):
    ratio, rollout = replay_ratio(gen)
    assert (rollout.data["logits_keep_counts"] != 0).any()
    assert (ratio - 1).abs().max() <= 1e-4


def test_without_the_mask_the_ratio_is_not_one():
    ratio, rollout = replay_ratio(GenerationOptions(top_k=3, n_samples=2))
    for key in ("logits_keep_ids", "logits_keep_counts"):
        del rollout.data[key], rollout.seqlens[key]
    iface = actor(GenerationOptions(top_k=3, n_samples=2))
    handle = frozen(tiny())
    scored = iface.inference(handle, rollout)
    act = action_mask(rollout.data["prompt_mask"], rollout.cu_seqlens("packed_input_ids"))
    unmasked = torch.exp(scored.data["logprobs"][act] - rollout.data["packed_logprobs"][act])
    assert (unmasked - 1).abs().max() > 0.05  # the cut mass is missing from the ratio


@pytest.mark.parametrize("gen, per_token", [
    (GenerationOptions(top_k=5, n_samples=3), 5),  # the kept ids
    (GenerationOptions(min_new_tokens=3, n_samples=2), 1),  # the cut eos, first 3 steps only
])
def test_the_stored_cuts_cost_what_was_kept_not_the_vocabulary(gen, per_token):
    """Before: a bool [T, vocab] mask (T * V elements). Now: <= ``per_token`` ids per
    response token, plus one int32 count per token."""
    _, rollout = replay_ratio(gen)
    t, vocab = rollout.num_tokens("packed_input_ids"), len(TOKENIZER)
    responses = int((~rollout.data["prompt_mask"]).sum())
    ids, counts = rollout.data["logits_keep_ids"], rollout.data["logits_keep_counts"]
    assert counts.shape == (t,) and counts.dtype == ids.dtype == torch.int32
    assert 0 < ids.numel() <= per_token * responses
    assert ids.numel() + counts.numel() < t * vocab / 10
    assert rollout.sample_costs() == rollout.sample_costs("packed_input_ids")


def test_rollout_layout():
    gen = GenerationOptions(max_new_tokens=5, n_samples=3)
    _, rollout = replay_ratio(gen)
    assert [len(s) for s in rollout.seqlens["packed_input_ids"]] == [3, 3, 3, 3]
    assert rollout.seqlens["seq_no_eos_mask"] == [[1, 1, 1]] * 4
    prompt_lens = [len(rollout.sequences("packed_prompts", i)[0]) if "packed_prompts" in rollout.data
                   else None for i in range(4)]
    assert prompt_lens == [None] * 4  # outputs only: the executor merges them into the batch
    assert int(rollout.data["version"].unique()) == 0


def rollout_for_training(handle, gen, estimator="gae"):
    """A sampled batch with rewards 1, values 0 and the advantage node's outputs."""
    rollout = actor(gen).generate(handle, prompts())
    n = sum(len(s) for s in rollout.seqlens["packed_input_ids"])
    rollout.update(PackedBatch.from_sequences(
        rollout.ids, {"rewards": [[[1.0]] * len(s) for s in rollout.seqlens["packed_input_ids"]]}))
    values = torch.zeros(rollout.num_tokens("packed_input_ids"))
    rollout.data["values"] = values
    rollout.seqlens["values"] = [list(s) for s in rollout.seqlens["packed_input_ids"]]
    assert n == 8
    node = AdvantageInterface(AdvantageOptions(estimator=estimator), KLOptions(), RewardOptions(),
                              gen.max_new_tokens)
    out, stats = node.inference(None, rollout)
    rollout.update(out)
    assert stats["/reward/mean"] == 1.0
    return PolicyInterface(PolicyOptions(minibatches=2), KLOptions(), gen), rollout


def test_train_step_logs_drift_within_tolerance_and_refuses_stale_data():
    handle = trainable(tiny())
    gen = GenerationOptions(top_k=8, n_samples=2)
    iface, rollout = rollout_for_training(handle, gen)
    metrics = iface.train_step(handle, rollout)
    assert metrics["/gen/logprob_drift"] <= 1e-4
    assert metrics["updates"] == 2 and math.isfinite(metrics["loss"])
    assert handle.version == 2
    with pytest.raises(StaleRolloutError, match="version"):
        iface.train_step(handle, rollout)  # sampled by version 0, the actor is at 2


def test_critic_values_and_train_step():
    handle = trainable(tiny(value_head=True))
    handle_actor = frozen(tiny())
    _, rollout = rollout_for_training(handle_actor, GenerationOptions(n_samples=2))
    critic = CriticInterface(CriticOptions(norm=True), PolicyOptions(), GenerationOptions())
    values = critic.inference(handle, rollout)
    assert values.num_tokens("values") == rollout.num_tokens("packed_input_ids")
    rollout.update(values)
    metrics = critic.train_step(handle, rollout)
    assert math.isfinite(metrics["loss"]) and "explained_var" in metrics
    state = critic.state_dict()
    again = CriticInterface(CriticOptions(norm=True), PolicyOptions(), GenerationOptions())
    again.load_state_dict(state)
    assert again.moments.mean == pytest.approx(critic.moments.mean)


# ---------------------------------------------------------------------- reward functions


def scored_batch():
    handle = frozen(tiny())
    rollout = actor(GenerationOptions(n_samples=2)).generate(handle, prompts(3))
    rollout.metadata["answer"] = ["21", "23", "25"]
    return handle, rollout


def test_reward_functions_weighted_per_response():
    handle, rollout = scored_batch()
    iface = RewardFunctionInterface(["exact_match", "format_penalty"], [2.0, 0.5])
    out, means = iface.inference(handle, rollout)
    assert out.seqlens["rewards"] == [[1, 1]] * 3
    # A random tiny model never answers right and always runs to max_new_tokens: -0.5 each.
    assert out.data["rewards"].tolist() == [-0.5] * 6
    assert means == {"/reward/exact_match": 0.0, "/reward/format_penalty": -1.0}


@pytest.mark.parametrize("result, message", [
    ("raise", "raised ValueError: no luck"),
    ("short", "returned 5 scores for 6 responses"),
    ("nan", r"returned nan for sample p\d#\d; rewards must be finite"),
    ("text", "returned 'high' for sample p0#0, not a number"),
])
def test_bad_reward_functions_stop_with_their_name_and_sample(result, message, rlcore_plugins):
    import rlcore
    from rlcore.plugins.records import RewardFunctionRecord

    def bad(completions, samples):
        if result == "raise":
            raise ValueError("no luck")
        if result == "short":
            return [0.0] * (len(completions) - 1)
        if result == "nan":
            return [0.0] * (len(completions) - 1) + [float("nan")]
        return ["high"] * len(completions)

    class Plugin:
        @rlcore.hookimpl
        def rlcore_reward_functions(self):
            return [RewardFunctionRecord("bad", impl=f"{__name__}:BAD")]

    globals()["BAD"] = bad
    rlcore_plugins.register(Plugin(), name="bad-rewards")
    handle, rollout = scored_batch()
    with pytest.raises(RewardFunctionError, match=f"reward function 'bad' {message}"):
        RewardFunctionInterface(["bad"]).inference(handle, rollout)
