"""Mixture-of-experts actors through `rlcore train` from an HF directory written by transformers:
rollout routing replay (the ratio is 1, the agreement metric sees near-tied routers) and
ZeRO-3 + LoRA on two ranks. The sft/dpo/ppo x ZeRO 0-3 matrix is scripts/moe_matrix.py."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rlcore.cli.app import main

pytest.importorskip("rlcore_plugin_mixtral")
pytest.importorskip("rlcore_plugin_qwen3_moe")
pytestmark = pytest.mark.slow

SHORT = ["run.max_steps=1", "run.batch_size=4", "run.eval_every=0", "run.progress=false",
         "gen.max_new_tokens=12", "gen.n_samples=4", "kl.coef=0.05"]


@pytest.fixture
def cli_env():
    """One torch thread per rank, and no process-group variables of an in-process run."""
    drop = {"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"}
    return {**{k: v for k, v in os.environ.items() if k not in drop}, "OMP_NUM_THREADS": "1"}


def moe_dir(path, family, near_tied=False):
    """A tiny random HF checkpoint of ``family``; ``near_tied``: every router row nearly equal."""
    import torch
    from safetensors.torch import load_file, save_file

    from rlcore.sdk import registry
    from rlcore.testing.families import hf_model_dir

    hf_model_dir(registry.load("families", family), path)
    if near_tied:
        file = Path(path) / "model.safetensors"
        sd = load_file(file)
        gen = torch.Generator().manual_seed(0)
        for k, w in sd.items():
            if k.endswith("gate.weight") and w.shape[0] == 4:  # the router [experts, hidden]
                sd[k] = w[:1] + 1e-3 * torch.randn(w.shape, generator=gen)
        save_file(sd, file, metadata={"format": "pt"})
    return str(path)


def train(tmp_path, monkeypatch, name, *sets, run="run"):
    """``rlcore train NAME --set ...`` in-process into ``tmp_path/run``; the last step's metrics."""
    monkeypatch.chdir(tmp_path)
    run = tmp_path / run
    args = ["rlcore", "train", name, "--run-dir", str(run), *[f"--set={s}" for s in sets]]
    monkeypatch.setattr(sys, "argv", args)
    with pytest.raises(SystemExit) as exit_:
        main()
    assert not exit_.value.code
    return json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])


def test_router_replay_makes_the_ratio_one(tmp_path, monkeypatch):
    """fp32, unchanged weights, near-tied routers: with the sampler's experts replayed the
    trainer's log-probs (and the reference's) equal the sampler's."""
    path = moe_dir(tmp_path / "mixtral", "mixtral", near_tied=True)
    last = train(tmp_path, monkeypatch, "grpo", f"actor.path={path}", *SHORT,
                 "actor.moe.router_replay=true", "train.dtype=fp32", "ref.dtype=fp32")
    assert last["gen/logprob_drift"] < 1e-5, last
    assert abs(last["actor_train/ratio_max"] - 1) < 1e-5 and abs(last["kl/ref"]) < 1e-5
    assert "actor_train/moe/router_agreement" in last and "actor_train/moe/aux_loss" in last


def test_without_replay_near_tied_routers_disagree(tmp_path, monkeypatch):
    """bf16 sampling (KV cache) and the packed train forward round differently: near-tied
    routers then pick other experts for some tokens, which moe/router_agreement shows, and the
    log-probs drift apart far more than with replay."""
    path = moe_dir(tmp_path / "mixtral", "mixtral", near_tied=True)
    last = {replay: train(tmp_path, monkeypatch, "grpo", f"actor.path={path}", *SHORT,
                          "actor.moe.record_routing=true", f"actor.moe.router_replay={replay}",
                          "train.dtype=bf16", "ref.dtype=bf16", run=f"run-{replay}")
            for replay in ("false", "true")}
    assert last["false"]["actor_train/moe/router_agreement"] < 1, last
    assert last["true"]["gen/logprob_drift"] < last["false"]["gen/logprob_drift"] / 10, last


def test_multi_turn_episodes_replay_their_last_turns_routing(tmp_path, monkeypatch):
    """Calculator episodes on a tiny Mixtral: each episode carries its last turn's experts (whose
    prefill routed the earlier turns), and with them the trainer's log-probs are the sampler's."""
    last = train(tmp_path, monkeypatch, "grpo", "env.name=calculator", "actor.preset=mixtral",
                 "actor.moe.router_replay=true", "run.max_steps=1", "run.batch_size=2",
                 "gen.n_samples=4", "env.max_turns=3", "warm_start.sft_steps=60",
                 "run.eval_every=0", "run.progress=false", "train.dtype=fp32", "ref.dtype=fp32")
    assert last["env/turns_mean"] > 1, last  # some episodes took several turns
    assert last["gen/logprob_drift"] < 1e-5 and abs(last["actor_train/ratio_max"] - 1) < 1e-5
    assert last["actor_train/moe/router_agreement"] == 1, last


def test_lora_grpo_zero3_two_ranks_with_replay(tmp_path, cli_env):
    """Qwen3-MoE, LoRA on the attention and expert projections, ZeRO-3, two ranks, replay on."""
    path = moe_dir(tmp_path / "qwen3_moe", "qwen3_moe")
    sets = [f"actor.path={path}", *SHORT, "run.batch_size=4", "train.zero_stage=3",
            "train.dtype=fp32", "ref.dtype=fp32", "actor.lora.r=4", "actor.moe.router_replay=true"]
    subprocess.run([str(Path(sys.executable).parent / "rlcore"), "train", "grpo", "--nproc", "2",
                    "--run-dir", str(tmp_path / "run"), *[f"--set={s}" for s in sets]],
                   check=True, env=cli_env, capture_output=True, timeout=600, cwd=tmp_path)
    last = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["gen/logprob_drift"] < 1e-5 and last["actor_train/moe/router_agreement"] == 1
    adapters = tmp_path / "run" / "checkpoints" / "step-00000001" / "actor"
    config = json.loads((adapters / "adapter_config.json").read_text())
    assert config["target_parameters"] == ["mlp.experts.down_proj", "mlp.experts.gate_up_proj"]


def test_expert_lora_sft_zero3_two_ranks_trains_and_exports(tmp_path, cli_env):
    """Adapters on the stacked experts learn under ZeRO-3 on two ranks; `rlcore export` folds
    them in, giving the logits transformers + peft give with the adapter directory."""
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    path = moe_dir(tmp_path / "qwen3_moe", "qwen3_moe")
    rlcore = str(Path(sys.executable).parent / "rlcore")
    sets = [f"actor.path={path}", "run.max_steps=3", "run.batch_size=4", "run.eval_every=0",
            "run.progress=false", "train.zero_stage=3", "train.dtype=fp32", "actor.lora.r=4",
            "train.optimizer.lr=1e-2"]
    for args in (["train", "sft", "--nproc", "2", "--run-dir", "run", *[f"--set={s}" for s in sets]],
                 ["export", "run", "merged"]):
        subprocess.run([rlcore, *args], check=True, env=cli_env, capture_output=True, timeout=600,
                       cwd=tmp_path)
    adapters = tmp_path / "run" / "checkpoints" / "step-00000003" / "actor"
    experts = {k: v for k, v in load_file(adapters / "adapter_model.safetensors").items()
               if ".experts." in k and "lora_B" in k}
    assert len(experts) == 4 and all(v.abs().max() > 0 for v in experts.values())  # B left zero
    ids = torch.randint(0, 100, (1, 12))
    with torch.no_grad():
        merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")(ids).logits
        peft = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(path), adapters)
        base = AutoModelForCausalLM.from_pretrained(path)(ids).logits
        assert (merged - peft(ids).logits).abs().max() < 1e-4
        assert (merged - base).abs().max() > 1e-2


@pytest.mark.parametrize("name, sets, message", [
    ("sft", ["actor.moe.router_replay=true"], "actor.moe.router_replay=true replays the sampler's "
                                              "routing, and sft does not sample"),
    ("dpo", ["actor.moe.record_routing=true"], "actor.moe.record_routing=true"),
])
def test_routing_keys_where_nothing_records_them_are_errors(name, sets, message):
    from rlcore.cli.train_cmd import resolve_experiment
    from rlcore.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        resolve_experiment(name, None, sets)


def test_router_replay_on_a_dense_actor_names_the_key():
    from rlcore.errors import ConfigError
    from rlcore.testing.interfaces import make_handle, prompt_batch
    from rlcore_plugin_algorithms.config import MoEOptions
    from rlcore_plugin_algorithms.rl_config import GenerationOptions
    from rlcore_plugin_algorithms.sampling import SamplerInterface

    handle = make_handle()
    sampler = SamplerInterface(GenerationOptions(max_new_tokens=2), moe=MoEOptions(router_replay=True))
    with pytest.raises(ConfigError, match="actor.moe.router_replay=true, but the actor model has no"):
        sampler.generate(handle, prompt_batch(handle.tokenizer, ["1+1="]))
