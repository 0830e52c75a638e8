import sys

import torch

import rlcore
from rlcore.api import Module, RLHFEngine
from rlcore.data import embedded
from rlcore.models.config import TransformerConfig
from rlcore.models.generation import GenerationConfig
from rlcore.models.hf_io import load_pretrained
from rlcore.models.transformer import Transformer
from rlcore.runtime import distributed
from rlcore.runtime.metrics import read_metrics
from rlcore_plugin_algorithms import rl
from rlcore_plugin_algorithms.rewards import responses
from rlcore_plugin_algorithms.sampling import (
    action_counts,
    action_mask,
    generation_seed,
    processed_logits,
    sample_responses,
    token_logprobs,
)

MODEL = None  # an HF model directory to start from; None: a tiny random transformer
IDS = "packed_input_ids"
ROLLOUT = (IDS, "prompt_mask", "packed_logprobs")  # what sample_responses returns
KL_COEF, CLIP = 0.05, 0.2


def build_model(tokenizer, value_head=False):
    """The core transformer; every role starts from the same weights."""
    if MODEL is not None:
        return load_pretrained(MODEL, value_head=value_head)[0]
    torch.manual_seed(0)
    return Transformer(TransformerConfig(vocab_size=len(tokenizer), hidden_size=32,
                                         intermediate_size=64, n_layers=2, n_q_heads=4,
                                         value_head=value_head))


def sampling(tokenizer):
    return GenerationConfig(max_new_tokens=4, eos_token_ids=[tokenizer.eos_token_id])


def actions(module, data):
    """Token ids, sequence offsets, and the mask of positions that predict a response token."""
    ids = data.data[IDS].to(module.device)
    cu = data.cu_seqlens(IDS).to(module.device)
    return ids, cu, action_mask(data.data["prompt_mask"].to(module.device), cu)


def logprobs(module, data):
    """log p(next token) at every position, under the distribution the sampler used."""
    ids, cu, _ = actions(module, data)
    logits = processed_logits(module.wrapped_model(ids, cu), sampling(module.tokenizer), None)
    return token_logprobs(logits, ids)


def on_actions(values, act):
    """Per-action values back at their token positions (0 elsewhere)."""
    return torch.zeros(act.shape).masked_scatter(act, values.float())


class PolicyInference(Module):
    """Frozen: samples a response per prompt. Its weights follow ppo_policy."""

    input_keys = ("packed_prompts",)
    output_keys = ROLLOUT

    def setup(self):
        self.model = build_model(self.tokenizer)

    def build_dataset(self, rows):
        return [{"packed_prompts": r["prompt"], "answer": int(r["answer"])} for r in rows]

    def forward_step(self, data):
        seed = generation_seed(1, self.version, distributed.rank(), data.ids)
        return sample_responses(self.handle, data, sampling(self.tokenizer), n_samples=1,
                                seed=seed, with_mask=False, engine=self.rollout_engine())


class PolicyReference(Module):
    """Frozen: log-probs under the starting weights, for the KL penalty."""

    input_keys = (IDS, "prompt_mask")
    output_keys = ("ref_logprobs",)

    def setup(self):
        self.model = build_model(self.tokenizer)

    def forward_step(self, data):
        return {"ref_logprobs": logprobs(self, data)}


class ValueInference(Module):
    """Frozen: a value per token. Its weights follow ppo_value."""

    input_keys = (IDS, "prompt_mask")
    output_keys = ("values",)

    def setup(self):
        self.model = build_model(self.tokenizer, value_head=True)

    def forward_step(self, data):
        ids, cu, _ = actions(self, data)
        return {"values": self.wrapped_model(ids, cu).float()}


class RewardInference(Module):
    """No model (no setup): exact-match reward minus a KL penalty, turned into advantages (GAE)."""

    input_keys = (*ROLLOUT, "ref_logprobs", "values", "answer")
    output_keys = ("advantages", "returns", "score")

    def forward_step(self, data):
        _, cu, act = actions(self, data)
        texts = responses(self.tokenizer, data)[0]
        score = torch.tensor([embedded.score(text, str(int(answer)))
                              for text, answer in zip(texts, data.data["answer"], strict=True)])
        old, ref, values = (data.data[k][act] for k in ("packed_logprobs", "ref_logprobs", "values"))
        cu_act = action_counts(act, cu)
        rewards = rl.token_rewards(score, cu_act, rl.kl_penalty(old, ref, "k1"), KL_COEF)
        advantages, returns = rl.gae(rewards, values, cu_act, gamma=1.0, lam=0.95)
        return {"advantages": on_actions(rl.whiten(advantages), act),
                "returns": on_actions(returns, act), "score": score}


class PolicyTrainer(Module):
    """Trains the policy with PPO's clipped objective."""

    train_keys = (*ROLLOUT, "advantages", "score")

    def setup(self):
        self.model = build_model(self.tokenizer)

    def train_step(self, data):
        _, cu, act = actions(self, data)
        old, advantages = (data.data[k].to(self.device)[act] for k in ("packed_logprobs", "advantages"))
        pg = rl.policy_loss(logprobs(self, data)[act], old, advantages, CLIP, CLIP)
        loss = rl.aggregate(pg["loss"], action_counts(act, cu), "token-mean")
        return {"loss": loss, "clip_frac": pg["clipped"].float().mean(),
                "reward": data.data["score"].mean()}


class ValueTrainer(Module):
    """Trains the value model towards the returns (clipped value loss)."""

    train_keys = (IDS, "prompt_mask", "values", "returns")

    def setup(self):
        self.model = build_model(self.tokenizer, value_head=True)

    def train_step(self, data):
        ids, cu, act = actions(self, data)
        old, returns = (data.data[k].to(self.device)[act] for k in ("values", "returns"))
        vl = rl.value_loss(self.wrapped_model(ids, cu).float()[act], old, returns, CLIP)
        return rl.aggregate(vl["loss"], action_counts(act, cu), "token-mean")


def rlhf_engine(**run_options):
    return RLHFEngine(PolicyInference("policy"), PolicyReference("reference"),
                      RewardInference("reward"), ValueInference("value"),
                      PolicyTrainer("ppo_policy", lr=1e-4), ValueTrainer("ppo_value", lr=1e-3),
                      **run_options)


if __name__ == "__main__":
    MODEL = sys.argv[1] if len(sys.argv) > 1 else None
    rlcore.init(seed=1)
    engine = rlhf_engine(run_dir="runs/rlhf-example", max_steps=80, batch_size=16)
    engine.set_dataset(embedded.prompt_rows(1280))
    print(engine.render())
    engine.learn(resume=False)
    key = "ppo_policy.train_step/reward"
    rewards = [r[key] for r in read_metrics(engine.run_dir) if key in r]
    print(f"reward: {sum(rewards[:10]) / 10:.2f} over the first 10 steps, "
          f"{sum(rewards[-10:]) / 10:.2f} over the last 10")
