"""KV-cache generation: cache vs. full recompute, sampling filters vs. transformers, EOS, seeds."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from rlcore.errors import ConfigError
from rlcore.models.config import TransformerConfig
from rlcore.models.generation import GenerationConfig, generate, process_logits
from rlcore.models.transformer import Transformer
from rlcore.testing.families import pack, random_sequences, randomize_

PROMPT_LENS = (4, 13, 1, 8)


def model_for(cfg: TransformerConfig, seed: int = 0) -> Transformer:
    torch.manual_seed(seed)
    return randomize_(Transformer(cfg), seed).eval()


def prompts_for(cfg: TransformerConfig) -> list[list[int]]:
    return [s.tolist() for s in random_sequences(cfg.vocab_size, PROMPT_LENS, seed=5)]


def replay_logits(model, prompts, out) -> list[torch.Tensor]:
    """Logits that predicted each generated token, recomputed by one packed forward (no cache)."""
    seqs = [torch.tensor(p + t.tolist()) for p, t in zip(prompts, out.tokens, strict=True)]
    with torch.no_grad():
        logits = model(*pack(seqs)).split([len(s) for s in seqs])
    return [lg[len(p) - 1: len(p) - 1 + len(t)] for lg, p, t in zip(logits, prompts, out.tokens,
                                                                    strict=True)]


def test_greedy_with_cache_matches_full_recompute(config):
    """Every greedy token is the argmax of a cache-free forward over prompt + tokens so far."""
    model = model_for(config)
    prompts = prompts_for(config)
    out = generate(model, prompts, GenerationConfig(max_new_tokens=12, greedy=True))
    for tokens, logits in zip(out.tokens, replay_logits(model, prompts, out), strict=True):
        assert len(tokens) == 12
        assert tokens.tolist() == logits.argmax(-1).tolist()


def test_sampled_logprobs_replay_under_the_logits_mask(config):
    """A trainer recomputes the same logprobs from logits, temperature and logits_mask."""
    model = model_for(config)
    prompts = prompts_for(config)
    g = GenerationConfig(max_new_tokens=10, temperature=0.7, top_k=7, top_p=0.9)
    out = generate(model, prompts, g, seed=0)
    for i, logits in enumerate(replay_logits(model, prompts, out)):
        mask = out.logits_mask[i]
        assert mask.shape == (10, config.vocab_size) and mask.dtype == torch.bool
        assert (mask.sum(-1) <= 7).all() and (mask.sum(-1) >= 1).all()
        assert mask.gather(1, out.tokens[i][:, None]).all(), "a sampled token was outside the mask"
        lp = (logits / 0.7).masked_fill(~mask, float("-inf")).log_softmax(-1)
        expected = lp.gather(1, out.tokens[i][:, None])[:, 0]
        torch.testing.assert_close(out.logprobs[i], expected, atol=1e-4, rtol=0)


def test_no_mask_when_nothing_is_cut():
    cfg = TransformerConfig(vocab_size=50, hidden_size=32, n_q_heads=4)
    model = model_for(cfg)
    for g in (GenerationConfig(max_new_tokens=5, temperature=1.3),
              GenerationConfig(max_new_tokens=5, greedy=True),
              GenerationConfig(max_new_tokens=5, top_k=50)):
        out = generate(model, prompts_for(cfg), g, seed=1)
        assert out.logits_mask == [None] * len(PROMPT_LENS)


def test_same_seed_same_output_other_seed_differs():
    cfg = TransformerConfig(vocab_size=50, hidden_size=32, n_q_heads=4)
    model = model_for(cfg)
    g = GenerationConfig(max_new_tokens=16, temperature=1.5)
    a = generate(model, prompts_for(cfg), g, seed=3)
    b = generate(model, prompts_for(cfg), g, generator=torch.Generator().manual_seed(3))
    c = generate(model, prompts_for(cfg), g, seed=4)
    assert [t.tolist() for t in a.tokens] == [t.tolist() for t in b.tokens]
    assert all(torch.equal(x, y) for x, y in zip(a.logprobs, b.logprobs, strict=True))
    assert [t.tolist() for t in a.tokens] != [t.tolist() for t in c.tokens]


def test_top_k_one_is_greedy():
    cfg = TransformerConfig(vocab_size=50, hidden_size=32, n_q_heads=4)
    model = model_for(cfg)
    greedy = generate(model, prompts_for(cfg), GenerationConfig(max_new_tokens=8, greedy=True))
    top1 = generate(model, prompts_for(cfg), GenerationConfig(max_new_tokens=8, top_k=1), seed=9)
    assert [t.tolist() for t in greedy.tokens] == [t.tolist() for t in top1.tokens]
    assert all(torch.allclose(lp, torch.zeros_like(lp)) for lp in top1.logprobs)


@pytest.mark.parametrize("temperature, top_k, top_p", [(0.7, 0, 1.0), (1.0, 5, 1.0),
                                                        (1.0, 0, 0.8), (0.5, 10, 0.6)])
def test_filters_match_transformers_warpers(temperature, top_k, top_p):
    from transformers.generation.logits_process import (
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    logits = torch.randn(6, 40, generator=torch.Generator().manual_seed(0)) * 3
    ours, cut = process_logits(logits.clone(), 0, GenerationConfig(
        temperature=temperature, top_k=top_k, top_p=top_p))
    theirs = TemperatureLogitsWarper(temperature)(None, logits.clone())
    if top_k:
        theirs = TopKLogitsWarper(top_k)(None, theirs)
    if top_p < 1:
        theirs = TopPLogitsWarper(top_p)(None, theirs)
    assert cut == bool(top_k or top_p < 1)
    assert torch.equal(torch.isinf(ours), torch.isinf(theirs))
    torch.testing.assert_close(ours[~torch.isinf(ours)], theirs[~torch.isinf(theirs)])


def test_eos_stops_each_row_and_min_new_tokens_holds():
    cfg = TransformerConfig(vocab_size=40, hidden_size=32, n_q_heads=4)
    model = model_for(cfg)
    eos = list(range(0, 40, 3))  # a third of the vocabulary ends a sequence
    g = GenerationConfig(max_new_tokens=30, min_new_tokens=4, temperature=1.0, eos_token_ids=eos)
    out = generate(model, prompts_for(cfg), g, seed=0)
    lengths = [len(t) for t in out.tokens]
    assert min(lengths) >= 4 and max(lengths) <= 30 and len(set(lengths)) > 1
    for tokens, mask, lp in zip(out.tokens, out.logits_mask, out.logprobs, strict=True):
        body = tokens[:-1].tolist() if tokens[-1].item() in eos else tokens.tolist()
        assert not set(body) & set(eos), "a token after EOS, or EOS before the end"
        assert not set(tokens[:4].tolist()) & set(eos), "EOS before min_new_tokens"
        assert not mask[:4, eos].any() and mask[4:].all(), "the mask bans EOS only before min"
        assert len(lp) == len(tokens) and torch.isfinite(lp).all()


def test_rows_finishing_early_do_not_change_the_others():
    """Greedy rows are independent of their batch, even when other rows hit EOS and leave."""
    cfg = TransformerConfig(vocab_size=40, hidden_size=32, n_q_heads=4, sliding_window=6)
    model = model_for(cfg)
    prompts = prompts_for(cfg)
    free = generate(model, prompts, GenerationConfig(max_new_tokens=10, greedy=True))
    eos = free.tokens[1][2].item()  # row 1 stops after 3 tokens
    g = GenerationConfig(max_new_tokens=10, greedy=True, eos_token_ids=[eos])
    batched = generate(model, prompts, g)
    for i, p in enumerate(prompts):
        alone = generate(model, [p], g)
        assert batched.tokens[i].tolist() == alone.tokens[0].tolist()
        torch.testing.assert_close(batched.logprobs[i], alone.logprobs[0], atol=1e-5, rtol=0)
    assert len(batched.tokens[1]) <= 3 and batched.tokens[1][-1].item() == eos


def test_generation_errors_are_clear():
    cfg = TransformerConfig(vocab_size=40, hidden_size=32, n_q_heads=4)
    model = model_for(cfg)
    with pytest.raises(ConfigError, match="temperature"):
        generate(model, [[1]], GenerationConfig(temperature=0))
    with pytest.raises(ConfigError, match="min_new_tokens"):
        generate(model, [[1]], GenerationConfig(max_new_tokens=2, min_new_tokens=3))
    with pytest.raises(ConfigError, match="at least one token"):
        generate(model, [[1], []], GenerationConfig())
    critic = model_for(dataclasses.replace(cfg, value_head=True))
    with pytest.raises(ConfigError, match="value head"):
        generate(critic, [[1]], GenerationConfig())
    short = model_for(TransformerConfig(vocab_size=40, hidden_size=32, n_q_heads=4,
                                        position="learned", max_positions=16))
    with pytest.raises(ConfigError, match="max_positions=16"):
        generate(short, [[1] * 10], GenerationConfig(max_new_tokens=8))
