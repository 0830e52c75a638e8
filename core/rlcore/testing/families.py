"""Conformance suite for model-family plugins: parity with ``transformers`` on tiny random models.

A family plugin gets every test in a few lines::

    from rlcore.testing.families import FamilyConformance
    from my_plugin.family import MY_FAMILY

    class TestMyFamily(FamilyConformance):
        family = MY_FAMILY
        variants = {"base": {}, "tied": {"tie_word_embeddings": True}}  # HF config overrides

Each test runs once per variant: the HF config is ``family.config_to_hf(family.tiny_config())``
updated with the variant's overrides. Everything runs on CPU in fp32.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
import torch

from rlcore.models.family import ModelFamily
from rlcore.models.generation import GenerationConfig, generate
from rlcore.models.hf_io import load_pretrained, save_pretrained
from rlcore.models.transformer import Transformer

ATOL = 1e-4
SEQLENS = (7, 23, 1, 16, 30)  # uneven, including a single-token sequence
PROMPT_LENS = (5, 12, 1, 9)


def hf_config(family: ModelFamily, overrides: dict[str, Any] | None = None, **extra):
    """An HF config object for the family's tiny config plus overrides."""
    import transformers

    return transformers.AutoConfig.for_model(**{**family.config_to_hf(family.tiny_config()),
                                                **(overrides or {}), **extra})


def randomize_(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Re-draw every parameter so attention is peaky and positions matter (HF init is too flat)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            if p.ndim == 1:
                p.copy_(1.0 + 0.1 * noise if ("norm" in name or "ln" in name) else 0.1 * noise)
            else:
                p.copy_(noise * 1.5 / p.shape[-1] ** 0.5)
    return model


def hf_causal_lm(family: ModelFamily, overrides: dict[str, Any] | None = None, seed: int = 0):
    """A random HF causal LM for the family (fp32, eval mode)."""
    import transformers

    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(hf_config(family, overrides))
    return randomize_(model, seed).eval()


def hf_model_dir(family: ModelFamily, path: Any, overrides: dict[str, Any] | None = None,
                 seed: int = 0) -> Any:
    """A tiny random checkpoint of the family written by ``transformers`` into ``path``, with the
    embedded tokenizer and its vocabulary: a model directory for ``--set actor.path=...``."""
    from pathlib import Path

    from rlcore.data.embedded import embedded_tokenizer, save_embedded_tokenizer

    vocab = {"vocab_size": len(embedded_tokenizer())}
    hf_causal_lm(family, {**vocab, **(overrides or {})}, seed).save_pretrained(str(path))
    save_embedded_tokenizer(path)
    return Path(path)


def core_from_hf(family: ModelFamily, hf_model, value_head: bool = False) -> Transformer:
    """The core model holding the HF model's weights, converted by the family."""
    import dataclasses

    cfg = dataclasses.replace(family.config_from_hf(hf_model.config.to_dict()), value_head=value_head)
    model = Transformer(cfg)
    model.load_state_dict(family.state_dict_from_hf(dict(hf_model.state_dict()), cfg), strict=True)
    return model.eval()


def random_sequences(vocab: int, lens, seed: int = 1) -> list[torch.Tensor]:
    """Random token sequences of the given lengths."""
    gen = torch.Generator().manual_seed(seed)
    return [torch.randint(0, vocab, (n,), generator=gen) for n in lens]


def pack(seqs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(flat ids, cu_seqlens) of a list of sequences."""
    lens = torch.tensor([len(s) for s in seqs])
    return torch.cat(seqs), torch.cat([torch.zeros(1, dtype=torch.long), lens.cumsum(0)])


def pad(seqs: list[torch.Tensor], left: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, attention_mask) padded to the longest sequence, with 0 as the pad id."""
    n = max(len(s) for s in seqs)
    ids = torch.zeros(len(seqs), n, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, s in enumerate(seqs):
        sl = slice(n - len(s), n) if left else slice(0, len(s))
        ids[i, sl], mask[i, sl] = s, 1
    return ids, mask


def hf_logits_packed(hf_model, seqs: list[torch.Tensor]) -> torch.Tensor:
    """HF logits on the right-padded batch, with padding dropped, packed like the core's."""
    ids, mask = pad(seqs)
    with torch.no_grad():
        logits = hf_model(input_ids=ids, attention_mask=mask).logits
    return torch.cat([logits[i, : len(s)] for i, s in enumerate(seqs)])


def core_logits(model: Transformer, seqs: list[torch.Tensor]) -> torch.Tensor:
    """Core logits of the packed batch."""
    ids, cu = pack(seqs)
    with torch.no_grad():
        return model(ids, cu)


def assert_close(actual: torch.Tensor, expected: torch.Tensor, what: str, atol: float = ATOL) -> None:
    """Max-abs-diff check with a message that says how far off and where."""
    assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    diff = (actual - expected).abs()
    worst = diff.max().item()
    if not worst <= atol:  # also catches NaN
        where = tuple(int(i) for i in torch.unravel_index(diff.nan_to_num(float("inf")).argmax(),
                                                          diff.shape))
        raise AssertionError(
            f"{what}: max abs diff {worst:.3g} > atol {atol} at index {where} (rlcore "
            f"{actual[where].item():.6g}, reference {expected[where].item():.6g}); "
            f"{int((diff > atol).sum())} of {diff.numel()} values differ, mean abs diff "
            f"{diff.mean().item():.3g}")


def generation_diff(ours: list[int], theirs: list[int]) -> str:
    """Where two token lists first differ, and both tokens there."""
    at = next((i for i, (a, b) in enumerate(zip(ours, theirs, strict=False)) if a != b),
              min(len(ours), len(theirs)))
    return (f"generated tokens differ first at position {at} (rlcore {ours[at:at + 3]}..., "
            f"transformers {theirs[at:at + 3]}...); rlcore {ours}, transformers {theirs}")


class FamilyConformance:
    """Base class of a family's conformance tests; set ``family`` (and optionally ``variants``)."""

    family: ClassVar[ModelFamily | None] = None
    variants: ClassVar[dict[str, dict[str, Any]]] = {"tiny": {}}
    atol: ClassVar[float] = ATOL

    def pytest_generate_tests(self, metafunc) -> None:
        if "variant" in metafunc.fixturenames:
            metafunc.parametrize("variant", list(self.variants.values()), ids=list(self.variants))

    @pytest.fixture(autouse=True)
    def _one_thread(self):
        """Tiny models gain nothing from threads; on shared cores BLAS threads stall each other."""
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        yield
        torch.set_num_threads(before)

    @pytest.fixture
    def fam(self) -> ModelFamily:
        if self.family is None:
            pytest.fail(f"{type(self).__name__} must set `family = <ModelFamily object>`")
        return self.family

    def test_config_round_trip(self, fam, variant):
        """core config -> HF config -> core config is the identity."""
        cfg = fam.config_from_hf(hf_config(fam, variant).to_dict())
        again = fam.config_from_hf(hf_config(fam, None, **fam.config_to_hf(cfg)).to_dict())
        changed = {k: (v, getattr(again, k)) for k, v in vars(cfg).items() if getattr(again, k) != v}
        assert not changed, f"fields changed in the round trip (before, after): {changed}"

    def test_state_dict_round_trip(self, fam, variant):
        """HF -> core -> HF returns the same names and the same tensors."""
        hf = hf_causal_lm(fam, variant)
        cfg = fam.config_from_hf(hf.config.to_dict())
        sd = dict(hf.state_dict())
        back = fam.state_dict_to_hf(fam.state_dict_from_hf(sd, cfg), cfg)
        assert sorted(back) == sorted(sd)
        for key, t in sd.items():
            assert torch.equal(back[key], t), f"{key} changed in the round trip"

    def test_param_names_cover_state_dict(self, fam, variant):
        """embedding + blocks + head names list every HF tensor once (tied copies excepted)."""
        hf = hf_causal_lm(fam, variant)
        cfg = fam.config_from_hf(hf.config.to_dict())
        names = fam.param_names(cfg)
        sd = dict(hf.state_dict())
        assert len(names) == len(set(names)), "a parameter name is listed twice"
        assert set(names) <= set(sd), f"unknown names: {sorted(set(names) - set(sd))}"
        listed = {sd[n].data_ptr() for n in names}
        unlisted = [k for k in sd if k not in names and sd[k].data_ptr() not in listed]
        assert not unlisted, f"HF parameters missing from the name lists: {unlisted}"

    def test_logits_parity_packed_vs_padded(self, fam, variant):
        """Core logits on a packed uneven batch match HF's on the padded batch."""
        hf = hf_causal_lm(fam, variant)
        model = core_from_hf(fam, hf)
        seqs = random_sequences(model.config.vocab_size, SEQLENS)
        assert_close(core_logits(model, seqs), hf_logits_packed(hf, seqs), "logits", self.atol)

    def test_greedy_generation_matches_hf(self, fam, variant):
        """Greedy core generation is token-identical to HF generate on left-padded prompts."""
        hf = hf_causal_lm(fam, variant)
        model = core_from_hf(fam, hf)
        prompts = random_sequences(model.config.vocab_size, PROMPT_LENS, seed=2)
        n_new = 10
        out = generate(model, [p.tolist() for p in prompts],
                       GenerationConfig(max_new_tokens=n_new, greedy=True))
        ids, mask = pad(prompts, left=True)
        with torch.no_grad():
            ref = hf.generate(input_ids=ids, attention_mask=mask, max_new_tokens=n_new,
                              min_new_tokens=n_new, do_sample=False, pad_token_id=0,
                              eos_token_id=None)
        for i in range(len(prompts)):
            ours, theirs = out.tokens[i].tolist(), ref[i, ids.shape[1]:].tolist()
            assert ours == theirs, f"prompt {i}: {generation_diff(ours, theirs)}"

    def test_save_then_hf_loads_same_logits(self, fam, variant, tmp_path):
        """save_pretrained writes a directory that transformers loads to the same logits."""
        import transformers

        hf = hf_causal_lm(fam, variant)
        model = core_from_hf(fam, hf)
        save_pretrained(model, fam.name, tmp_path, family=fam)
        loaded = transformers.AutoModelForCausalLM.from_pretrained(tmp_path).eval()
        seqs = random_sequences(model.config.vocab_size, SEQLENS)
        assert_close(hf_logits_packed(loaded, seqs), core_logits(model, seqs), "logits", self.atol)

    def test_files_hold_what_transformers_writes(self, fam, variant, tmp_path):
        """save_pretrained's safetensors hold the tensor names and shapes that transformers'
        own save_pretrained writes (so tools reading HF files, not only transformers, load it)."""
        from safetensors import safe_open

        def tensors(path):
            out = {}
            for file in sorted(path.glob("*.safetensors")):
                with safe_open(file, framework="pt") as f:
                    out.update({k: tuple(f.get_slice(k).get_shape()) for k in f.keys()})
            return out

        hf = hf_causal_lm(fam, variant)
        hf.save_pretrained(tmp_path / "hf")
        save_pretrained(core_from_hf(fam, hf), fam.name, tmp_path / "core", family=fam)
        assert tensors(tmp_path / "core") == tensors(tmp_path / "hf")

    def test_hf_save_then_core_load(self, fam, variant, tmp_path):
        """A directory written by transformers loads into the core with the same logits."""
        hf = hf_causal_lm(fam, variant)
        hf.save_pretrained(tmp_path)
        model, name = load_pretrained(tmp_path, family=fam)
        assert name == fam.name
        seqs = random_sequences(model.config.vocab_size, SEQLENS)
        assert_close(core_logits(model.eval(), seqs), hf_logits_packed(hf, seqs), "logits", self.atol)

    def test_value_head_saves_as_sequence_classifier(self, fam, variant, tmp_path):
        """A value-head model loads in AutoModelForSequenceClassification (num_labels=1)."""
        import transformers

        model = core_from_hf(fam, hf_causal_lm(fam, variant), value_head=False)
        critic = Transformer(_with_value_head(model.config))
        critic.load_state_dict({k: v for k, v in model.state_dict().items() if k != "lm_head.weight"},
                               strict=False)
        randomize_(critic.value_head, seed=3)
        save_pretrained(critic, fam.name, tmp_path, family=fam)
        hf = transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
        assert hf.config.num_labels == 1
        seqs = random_sequences(model.config.vocab_size, SEQLENS)
        values = core_logits(critic.eval(), seqs)
        ends = torch.tensor([len(s) for s in seqs]).cumsum(0) - 1
        with torch.no_grad():
            ref = torch.stack([hf(input_ids=s[None]).logits[0, 0] for s in seqs])
        assert_close(values[ends], ref, "sequence scores", self.atol)
        reloaded, _ = load_pretrained(tmp_path, value_head=True, family=fam)
        assert_close(core_logits(reloaded.eval(), seqs), values, "values after reload", 1e-6)


def _with_value_head(cfg):
    import dataclasses

    return dataclasses.replace(cfg, value_head=True)


class MoEConformance(FamilyConformance):
    """FamilyConformance plus the router's load-balancing loss, for mixture-of-experts families."""

    def test_router_aux_loss_matches_hf(self, fam, variant):
        """``rlcore.models.moe.aux_loss`` on the packed batch equals HF's ``aux_loss`` (padded, masked)."""
        from rlcore.models.moe import aux_loss

        hf = hf_causal_lm(fam, variant)
        model = core_from_hf(fam, hf)
        seqs = random_sequences(model.config.vocab_size, SEQLENS)
        ids, mask = pad(seqs)
        with torch.no_grad():
            ref = hf(input_ids=ids, attention_mask=mask, output_router_logits=True).aux_loss
            core_logits(model, seqs)
        assert_close(aux_loss(model), ref, "router aux loss", 1e-5)
