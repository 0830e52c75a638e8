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
            if ".lora_B." in name or name.startswith("value_head."):
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
    ("llama", False, ["all"]), ("llama", True, ["q", "v"]), ("gpt2", False, ["q", "v", "up"])])
def test_peft_files_load_in_transformers_and_peft(tmp_path, family, value_head, targets):
    """PeftModel.from_pretrained(Auto*.from_pretrained(base), adapters) gives rlcore's logits;
    GPT-2's fused c_attn gets one adapter of rank 3r holding the q and v parts."""
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


def test_moe_models_get_attention_and_dense_layer_adapters_and_refuse_expert_targets():
    """Experts are stacked parameters, not projections: ``all`` is the attention (and a dense
    layer's MLP); gate/up/down on an all-MoE model is an error that says so."""
    from rlcore.models.lora import target_modules
    from rlcore.plugins import registry

    cfg = dataclasses.replace(registry.load("families", "qwen3_moe").tiny_config(), dense_layers=[0])
    mixed = Transformer(cfg)
    targets = target_modules(mixed, LoraOptions(r=4), "actor.lora")
    assert "blocks.0.mlp.down_proj" in targets and "blocks.1.attn.q_proj" in targets
    assert not any(t.startswith("blocks.1.mlp") for t in targets)
    module = add_adapters(_family_model("mixtral"), LoraOptions(r=4))
    assert {n.split(".")[3] for n, p in module.named_parameters() if p.requires_grad} == {
        "q_proj", "k_proj", "v_proj", "o_proj"}
    with pytest.raises(ConfigError, match=r"actor.lora.targets: up name dense MLP projections.*"
                                          r"experts are stacked"):
        target_modules(_family_model("mixtral"), LoraOptions(r=4, targets=["q", "up"]), "actor.lora")
