"""LoRA through peft: only adapters train, the base with adapters off, PEFT files that
transformers + peft load, merged weights, and the errors for targets a model lacks."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from rlcore.errors import ConfigError, ModelLoadError
from rlcore.models.lora import adapters_disabled, add_adapters, merged_state_dict
from rlcore.models.transformer import Transformer
from rlcore.runtime.options import LoraOptions


def _cu(n: int) -> torch.Tensor:
    return torch.tensor([0, n], dtype=torch.int32)


def _trained_like(module: Transformer, seed: int = 0) -> Transformer:
    """Adapters as training leaves them (B is zero at the start, which would test nothing)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if ".lora_B" in name or name.startswith("value_head."):
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
    return module


def _family_model(family: str, value_head: bool = False) -> Transformer:
    from rlcore.plugins import registry

    cfg = registry.load("families", family).tiny_config()
    if value_head:
        cfg = dataclasses.replace(cfg, value_head=True, tie_embeddings=False)
    torch.manual_seed(0)
    return Transformer(cfg)


def test_only_adapters_receive_gradients_and_change():
    from rlcore.testing.interfaces import make_handle, tiny_model

    module = add_adapters(tiny_model(), LoraOptions(r=4, targets=["q", "v", "down"]))
    before = {k: v.clone() for k, v in module.state_dict().items()}
    handle = make_handle(module, trainable=True, lr=1e-2)
    ids = torch.randint(0, module.config.vocab_size, (12,))
    for _ in range(2):
        loss = handle.model(ids, _cu(12)).float().pow(2).mean()
        handle.model.backward(loss)
        handle.model.step()
    after = module.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(".lora_" in k for k in changed), sorted(changed)
    assert {k for k in changed if ".lora_B." in k}  # B leaves zero: the adapters learn
    trainable = {n for n, p in module.named_parameters() if p.requires_grad}
    assert trainable == {k for k in before if ".lora_" in k}
    assert not any(".k_proj.lora" in k or ".up_proj.lora" in k for k in before)  # only the targets


def test_the_base_with_adapters_off_is_the_model_before_adapters():
    from rlcore.testing.interfaces import tiny_model

    base = tiny_model()
    module = _trained_like(add_adapters(tiny_model(), LoraOptions(r=4)))
    ids = torch.randint(0, base.config.vocab_size, (10,))
    with torch.no_grad(), adapters_disabled(module):
        off = module(ids, _cu(10))
    with torch.no_grad():
        assert torch.equal(off, base(ids, _cu(10)))
        assert (module(ids, _cu(10)) - off).abs().max() > 1e-3  # adapters back on afterwards


def test_merged_weights_give_the_adapter_models_logits():
    from rlcore.testing.interfaces import tiny_model

    module = _trained_like(add_adapters(tiny_model(), LoraOptions(r=4, alpha=8)))
    plain = tiny_model()
    plain.load_state_dict(merged_state_dict(module.state_dict(), module.lora))
    ids = torch.randint(0, plain.config.vocab_size, (10,))
    with torch.no_grad():
        assert (plain(ids, _cu(10)) - module(ids, _cu(10))).abs().max() < 1e-5


@pytest.mark.parametrize("family, value_head, targets", [
    ("llama", False, ["all"]), ("llama", True, ["q", "v"]), ("gpt2", False, ["q", "v", "up"]),
    ("mixtral", False, ["all"]), ("qwen2_moe", False, ["v", "down"]),
    ("olmoe", False, ["gate", "up"])])
def test_peft_files_load_in_transformers_and_peft(tmp_path, family, value_head, targets):
    """PeftModel.from_pretrained(Auto*.from_pretrained(base), adapters) gives rlcore's logits;
    GPT-2's fused c_attn gets one adapter of rank 3r holding the q and v parts; stacked experts
    are peft ``target_parameters`` (Qwen2-MoE's shared expert a plain projection)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    from rlcore.models.hf_io import load_pretrained, save_pretrained
    from rlcore.models.peft_io import base_record, save_adapter

    module = _family_model(family, value_head)
    save_pretrained(module, family, tmp_path / "base")
    _trained_like(add_adapters(module, LoraOptions(r=4, alpha=8, targets=targets)))
    save_adapter(module.state_dict(), module, family, tmp_path / "adapters",
                 base_record(tmp_path / "base"))
    ids = torch.randint(0, module.config.vocab_size, (1, 9))
    auto = AutoModelForSequenceClassification if value_head else AutoModelForCausalLM
    theirs = PeftModel.from_pretrained(auto.from_pretrained(tmp_path / "base"),
                                       tmp_path / "adapters").eval()
    with torch.no_grad():
        ours = module(ids[0], _cu(9))
        out = theirs(ids).logits[0]
        if value_head:  # a sequence classifier scores the last token: logits [1, 1]
            ours, out = ours[-1], out[0]
        assert (ours - out).abs().max() < 1e-5
        # rlcore reads the adapter directory back with the adapters folded in
        merged, _ = load_pretrained(tmp_path / "adapters", value_head=value_head)
        assert (merged(ids[0], _cu(9)) - module(ids[0], _cu(9))).abs().max() < 1e-5


def test_a_changed_base_is_refused(tmp_path):
    from rlcore.models.hf_io import load_pretrained, save_pretrained
    from rlcore.models.peft_io import base_record, save_adapter

    module = _family_model("llama")
    save_pretrained(module, "llama", tmp_path / "base")
    add_adapters(module, LoraOptions(r=2))
    save_adapter(module.state_dict(), module, "llama", tmp_path / "ad", base_record(tmp_path / "base"))
    other = _family_model("llama")
    with torch.no_grad():
        other.embed.weight.add_(1.0)
    save_pretrained(other, "llama", tmp_path / "base")
    with pytest.raises(ModelLoadError, match="changed since they were trained"):
        load_pretrained(tmp_path / "ad")


def test_targets_a_model_lacks_name_the_key_and_the_projections_it_has():
    with pytest.raises(ConfigError, match=r"actor\.lora\.targets: this model has no gate "
                                          r"projection; its block projections are q, k, v, o, up, down"):
        add_adapters(_family_model("gpt2"), LoraOptions(r=2, targets=["q", "gate"]), "actor.lora")
    with pytest.raises(ConfigError, match=r"critic\.lora\.targets: \['qq'\] is not a block "
                                          "projection; choose all, or some of q, k, v, o"):
        LoraOptions(r=2, targets=["qq"]).validate("critic.lora")


def test_moe_experts_get_adapters_that_train_switch_off_and_merge():
    """``all`` on an MoE model adapts attention, every expert's gate_up and down, and a dense
    layer's MLP; only adapters change in training; off = the base; merged = the adapter model."""
    from rlcore.plugins import registry
    from rlcore.testing.interfaces import make_handle

    cfg = dataclasses.replace(registry.load("families", "qwen3_moe").tiny_config(), dense_layers=[0])
    torch.manual_seed(0)
    base = Transformer(cfg)
    torch.manual_seed(0)
    module = add_adapters(Transformer(cfg), LoraOptions(r=4))
    trainable = {n for n, p in module.named_parameters() if p.requires_grad}
    assert "blocks.0.mlp.down_proj.lora_A.default.weight" in trainable  # the dense layer
    assert {"blocks.1.mlp.lora_A_gate_up", "blocks.1.mlp.lora_B_down"} <= trainable
    assert module.blocks[1].mlp.lora_A_gate_up.shape == (cfg.n_experts, 4, cfg.hidden_size)
    before = {k: v.clone() for k, v in module.state_dict().items()}
    handle = make_handle(module, trainable=True, lr=1e-2)
    ids = torch.randint(0, cfg.vocab_size, (12,))
    for _ in range(2):
        handle.model.backward(handle.model(ids, _cu(12)).float().pow(2).mean())
        handle.model.step()
    changed = {k for k in before if not torch.equal(before[k], module.state_dict()[k])}
    assert "blocks.1.mlp.lora_B_down" in changed and all(".lora_" in k for k in changed)
    with torch.no_grad():
        with adapters_disabled(module):
            assert torch.equal(module(ids, _cu(12)), base(ids, _cu(12)))
        plain = Transformer(cfg)
        plain.load_state_dict(merged_state_dict(module.state_dict(), module.lora))
        assert (plain(ids, _cu(12)) - module(ids, _cu(12))).abs().max() < 1e-5


def test_moe_expert_targets_refuse_half_of_gate_up_and_dropout():
    from rlcore.models.lora import expert_targets

    mixtral = _family_model("mixtral")
    assert expert_targets(mixtral, LoraOptions(r=4, targets=["q", "v"]), "actor.lora") == []
    assert expert_targets(mixtral, LoraOptions(r=4, targets=["down"]), "actor.lora") == ["down"]
    with pytest.raises(ConfigError, match=r"actor\.lora\.targets: the experts hold gate and up "
                                          r"as one stacked weight"):
        add_adapters(mixtral, LoraOptions(r=4, targets=["q", "up"]), "actor.lora")
    with pytest.raises(ConfigError, match=r"actor\.lora\.dropout: adapters on stacked experts "
                                          r"take no dropout"):
        add_adapters(mixtral, LoraOptions(r=4, dropout=0.1), "actor.lora")


@pytest.mark.parametrize("targets", [["mlp.experts.gate_up_proj", "mlp.experts.down_proj"],
                                     ["mlp.experts.down_proj"]])
def test_another_trainers_expert_adapters_read_merged(tmp_path, targets):
    """peft ``target_parameters`` adapters on a Mixtral that transformers saved (one tensor per
    expert on disk) load into rlcore with the adapters folded into the stacked experts."""
    from peft import LoraConfig, get_peft_model
    from transformers import MixtralConfig, MixtralForCausalLM

    from rlcore.models.hf_io import load_pretrained

    cfg = MixtralConfig(vocab_size=64, hidden_size=16, intermediate_size=24, num_hidden_layers=2,
                        num_attention_heads=2, num_key_value_heads=1, num_local_experts=4,
                        num_experts_per_tok=2)
    torch.manual_seed(0)
    MixtralForCausalLM(cfg).save_pretrained(tmp_path / "base")
    theirs = get_peft_model(MixtralForCausalLM.from_pretrained(tmp_path / "base"), LoraConfig(
        r=2, lora_alpha=6, target_modules=["v_proj"], target_parameters=targets))
    with torch.no_grad():
        for name, p in theirs.named_parameters():
            if "lora_B" in name:
                p.normal_(std=0.3)
    theirs.peft_config["default"].base_model_name_or_path = str(tmp_path / "base")
    theirs.save_pretrained(tmp_path / "adapters")
    ours, _ = load_pretrained(tmp_path / "adapters")
    ids = torch.randint(0, 64, (1, 9))
    with torch.no_grad():
        assert (ours(ids[0], _cu(9)) - theirs.eval()(ids).logits[0]).abs().max() < 1e-5


def test_expert_adapters_that_fit_no_stacked_weight_are_refused(tmp_path):
    """An expert adapter whose shapes fit none of the experts' weights (a file from another
    model, or damaged) fails naming the file and the adapter, instead of merging garbage."""
    from safetensors.torch import load_file, save_file

    from rlcore.models.hf_io import load_pretrained, save_pretrained
    from rlcore.models.peft_io import base_record, save_adapter

    module = _family_model("mixtral")
    save_pretrained(module, "mixtral", tmp_path / "base")
    add_adapters(module, LoraOptions(r=2, targets=["down"]))
    save_adapter(module.state_dict(), module, "mixtral", tmp_path / "ad", base_record(tmp_path / "base"))
    file = tmp_path / "ad" / "adapter_model.safetensors"
    tensors = load_file(file)
    key = next(k for k in tensors if k.endswith("layers.0.mlp.experts.lora_B.weight"))
    tensors[key] = torch.zeros(tensors[key].shape[0] + 1, tensors[key].shape[1])
    save_file(tensors, file)
    with pytest.raises(ModelLoadError, match=r"adapter_model\.safetensors: adapter "
                                             r"model\.layers\.0\.mlp\.experts fits 0 stacked"):
        load_pretrained(tmp_path / "ad")
