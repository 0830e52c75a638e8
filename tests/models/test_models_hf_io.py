"""HF directory I/O: safetensors only, sharding, value heads, and errors that name the culprit."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from safetensors.torch import save_file

from rlcore.errors import ModelLoadError
from rlcore.models.hf_io import INDEX, load_pretrained, save_pretrained
from rlcore.models.transformer import Transformer
from rlcore.testing.families import hf_causal_lm, pack, random_sequences, randomize_

SEQS = random_sequences(97, (5, 9, 2))


def logits(model, seqs=SEQS):
    with torch.no_grad():
        return model.eval()(*pack(seqs))


@pytest.fixture
def model(tiny_family):
    torch.manual_seed(0)
    return randomize_(Transformer(tiny_family.tiny_config()))


def test_save_load_round_trip_is_exact(model, tiny_family, tmp_path):
    save_pretrained(model, "llama", tmp_path, family=tiny_family)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
    loaded, name = load_pretrained(tmp_path, family=tiny_family)
    assert name == "llama" and loaded.config == model.config
    assert torch.equal(logits(loaded), logits(model))


def test_sharded_save_loads_in_core_and_transformers(model, tiny_family, tmp_path):
    import transformers

    save_pretrained(model, "llama", tmp_path, family=tiny_family, max_shard_bytes=40_000)
    index = json.loads((tmp_path / INDEX).read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) > 1 and all((tmp_path / s).is_file() for s in shards)
    loaded, _ = load_pretrained(tmp_path, family=tiny_family)
    assert torch.equal(logits(loaded), logits(model))
    hf = transformers.AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    ids = torch.cat(SEQS[:1])[None]
    with torch.no_grad():
        torch.testing.assert_close(hf(input_ids=ids).logits[0], logits(model, SEQS[:1]),
                                   atol=1e-4, rtol=0)
    # Re-saving unsharded removes the stale index so transformers reads the new file.
    save_pretrained(model, "llama", tmp_path, family=tiny_family)
    assert not (tmp_path / INDEX).exists()


def test_dtype_and_tied_embeddings(tiny_family, tmp_path):
    cfg = dataclasses.replace(tiny_family.tiny_config(), tie_embeddings=True)
    model = randomize_(Transformer(cfg))
    save_pretrained(model, "llama", tmp_path, family=tiny_family)
    loaded, _ = load_pretrained(tmp_path, dtype=torch.bfloat16, family=tiny_family)
    assert loaded.embed.weight.dtype == torch.bfloat16 and not hasattr(loaded, "lm_head")
    assert torch.equal(loaded.embed.weight, model.embed.weight.to(torch.bfloat16))


def test_value_head_from_lm_checkpoint_and_back(model, tiny_family, tmp_path):
    """A critic initialised from an LM checkpoint: fresh value head, LM head dropped."""
    save_pretrained(model, "llama", tmp_path / "lm", family=tiny_family)
    critic, _ = load_pretrained(tmp_path / "lm", value_head=True, family=tiny_family)
    assert critic.config.value_head and not hasattr(critic, "lm_head")
    assert torch.equal(critic.blocks[0].attn.q_proj.weight, model.blocks[0].attn.q_proj.weight)
    save_pretrained(critic, "llama", tmp_path / "rm", family=tiny_family)
    hf_cfg = json.loads((tmp_path / "rm" / "config.json").read_text())
    assert hf_cfg["architectures"] == ["LlamaForSequenceClassification"] and hf_cfg["num_labels"] == 1
    with pytest.raises(ModelLoadError, match="value_head=True"):
        load_pretrained(tmp_path / "rm", family=tiny_family)
    again, _ = load_pretrained(tmp_path / "rm", value_head=True, family=tiny_family)
    assert torch.equal(logits(again), logits(critic))


def test_family_found_by_model_type_through_the_registry(model, tiny_family, tmp_path):
    pytest.importorskip("rlcore_plugin_llama")
    save_pretrained(model, "llama", tmp_path, family=tiny_family)
    loaded, name = load_pretrained(tmp_path)
    assert name == "llama"
    torch.testing.assert_close(logits(loaded), logits(model), atol=0, rtol=0)


def test_missing_directory_and_config(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_pretrained(tmp_path / "nope")
    with pytest.raises(ModelLoadError, match="config.json is missing"):
        load_pretrained(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="not valid JSON"):
        load_pretrained(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelLoadError, match="no 'model_type'"):
        load_pretrained(tmp_path)


def test_unknown_model_type_names_config_and_plugins(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "nonexistent-arch"}))
    with pytest.raises(ModelLoadError, match=r"nonexistent-arch.*config\.json.*pip install"):
        load_pretrained(tmp_path)


def test_pickle_checkpoints_are_refused_not_loaded(model, tiny_family, tmp_path):
    save_pretrained(model, "llama", tmp_path, family=tiny_family)
    (tmp_path / "model.safetensors").unlink()
    (tmp_path / "pytorch_model.bin").write_bytes(b"not to be unpickled")
    with pytest.raises(ModelLoadError, match="pytorch_model.bin.*never unpickles"):
        load_pretrained(tmp_path, family=tiny_family)


def test_missing_shard_is_named(model, tiny_family, tmp_path):
    save_pretrained(model, "llama", tmp_path, family=tiny_family, max_shard_bytes=40_000)
    victim = sorted(json.loads((tmp_path / INDEX).read_text())["weight_map"].values())[-1]
    (tmp_path / victim).unlink()
    with pytest.raises(ModelLoadError, match=f"{victim} is missing"):
        load_pretrained(tmp_path, family=tiny_family)


def test_shape_mismatch_names_parameter_and_file(model, tiny_family, tmp_path):
    save_pretrained(model, "llama", tmp_path, family=tiny_family)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["intermediate_size"] = 80
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError, match=r"shape mismatch for 'model\.layers\.0\.mlp\.\w+\.weight' "
                                             r"in .*model\.safetensors: the checkpoint has .*64.* "
                                             r"but config\.json implies .*80"):
        load_pretrained(tmp_path, family=tiny_family)


def test_missing_and_unexpected_tensors_are_named(model, tiny_family, tmp_path):
    save_pretrained(model, "llama", tmp_path, family=tiny_family)
    from safetensors.torch import load_file

    sd = load_file(tmp_path / "model.safetensors")
    sd.pop("model.layers.1.mlp.up_proj.weight")
    sd["model.layers.1.self_attn.q_norm.weight"] = torch.ones(8)  # a Qwen3 tensor; config has no qk_norm
    save_file(sd, tmp_path / "model.safetensors")
    with pytest.raises(ModelLoadError, match=r"missing \['blocks\.1\.mlp\.up_proj\.weight'\].*"
                                             r"unexpected \['blocks\.1\.attn\.q_norm\.weight'\]"):
        load_pretrained(tmp_path, family=tiny_family)
    sd["model.layers.1.extra.weight"] = torch.zeros(2)  # no core counterpart: the family names it
    save_file(sd, tmp_path / "model.safetensors")
    with pytest.raises(ModelLoadError, match=r"unexpected parameter 'model\.layers\.1\.extra\.weight'"):
        load_pretrained(tmp_path, family=tiny_family)


def test_loads_a_checkpoint_sharded_by_transformers(tiny_family, tmp_path):
    import transformers

    hf_cfg = transformers.AutoConfig.for_model(**tiny_family.config_to_hf(tiny_family.tiny_config()))
    torch.manual_seed(0)
    hf = randomize_(transformers.AutoModelForCausalLM.from_config(hf_cfg)).eval()
    hf.save_pretrained(tmp_path, max_shard_size="20KB")
    assert (tmp_path / INDEX).is_file() and not (tmp_path / "model.safetensors").exists()
    model, _ = load_pretrained(tmp_path, family=tiny_family)
    ids = torch.cat(SEQS[1:2])
    with torch.no_grad():
        torch.testing.assert_close(logits(model, SEQS[1:2]), hf(input_ids=ids[None]).logits[0],
                                   atol=1e-4, rtol=0)


@pytest.mark.parametrize("family_name", ["llama", "qwen2", "gpt2"])
def test_exports_carry_special_tokens_and_stop_at_eos(family_name, tmp_path):
    """Ids of the source (config.json and generation_config.json) reach the export, so HF
    ``generate`` stops at EOS; a model without a source takes the tokenizer's ids."""
    import transformers

    from rlcore.models.hf_io import resolve_family

    fam = resolve_family(family_name)
    source = hf_causal_lm(fam, {"bos_token_id": 1, "eos_token_id": 0, "pad_token_id": 2})
    with torch.no_grad():  # every logit equal: greedy decoding picks id 0, the EOS
        source.lm_head.weight.zero_()
    source.save_pretrained(tmp_path / "src")
    gen = json.loads((tmp_path / "src" / "generation_config.json").read_text())
    (tmp_path / "src" / "generation_config.json").write_text(json.dumps({**gen, "top_k": 7}))
    model, _ = load_pretrained(tmp_path / "src")
    save_pretrained(model, family_name, tmp_path / "out")
    hf = json.loads((tmp_path / "out" / "config.json").read_text())
    gen = json.loads((tmp_path / "out" / "generation_config.json").read_text())
    for file in (hf, gen):
        assert (file["bos_token_id"], file["eos_token_id"], file["pad_token_id"]) == (1, 0, 2)
    assert gen["top_k"] == 7  # the rest of the source's generation config travels too
    loaded = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "out").eval()
    prompt = torch.tensor([[5, 6, 7]])
    out = loaded.generate(prompt, max_new_tokens=8, do_sample=False)
    assert out[0].tolist() == [5, 6, 7, 0]  # stopped at EOS
    # Round trip: rlcore reads back what it wrote.
    again, _ = load_pretrained(tmp_path / "out")
    assert {k: again.hf_generation[k] for k in ("bos_token_id", "eos_token_id", "pad_token_id")} \
        == {"bos_token_id": 1, "eos_token_id": 0, "pad_token_id": 2}
    # No source ids: the tokenizer's are written.
    fresh = Transformer(model.config)

    class Tok:
        bos_token_id, eos_token_id, pad_token_id = 3, 4, None

    save_pretrained(fresh, family_name, tmp_path / "fresh", tokenizer=Tok())
    hf = json.loads((tmp_path / "fresh" / "config.json").read_text())
    assert (hf["bos_token_id"], hf["eos_token_id"], hf.get("pad_token_id")) == (3, 4, None)
    assert json.loads((tmp_path / "fresh" / "generation_config.json").read_text())[
        "eos_token_id"] == 4


@pytest.mark.parametrize("scaling", [
    None,
    {"rope_type": "linear", "factor": 2.0},
    {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
     "original_max_position_embeddings": 16},
])
def test_rope_is_written_in_both_forms(tmp_path, scaling):
    """transformers 5 reads ``rope_parameters``; 4.x (>= 4.46, the oldest allowed) reads
    ``rope_theta`` and ``rope_scaling`` with ``type``/``rope_type``. Both say the same."""
    import transformers

    from rlcore.models.hf_io import resolve_family

    llama = resolve_family("llama")
    cfg = dataclasses.replace(llama.tiny_config(), rope_theta=123456.0, rope_scaling=scaling)
    model = randomize_(Transformer(cfg))
    save_pretrained(model, "llama", tmp_path)
    hf = json.loads((tmp_path / "config.json").read_text())
    assert hf["rope_theta"] == 123456.0 == hf["rope_parameters"]["rope_theta"]
    if scaling is None:
        assert hf["rope_scaling"] is None and hf["rope_parameters"]["rope_type"] == "default"
    else:
        assert hf["rope_scaling"] == {**scaling, "type": scaling["rope_type"]}
    loaded, _ = load_pretrained(tmp_path)
    assert loaded.config == model.config
    hf_model = transformers.AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    ids = torch.cat(SEQS[:1])[None]
    with torch.no_grad():
        torch.testing.assert_close(hf_model(input_ids=ids).logits[0], logits(model, SEQS[:1]),
                                   atol=1e-4, rtol=0)
