"""Chunked token log-probs/entropy equal the full-logits computation, values and gradients."""

from __future__ import annotations

import pytest
import torch

from rlcore.models.kept_tokens import KeptTokens
from rlcore.models.token_logprobs import TokenQuery, score_tokens
from rlcore.models.transformer import Transformer
from rlcore.testing.families import pack, random_sequences, randomize_


def assert_same(actual, expected, what: str, tol: float = 1e-6) -> None:
    """Equal in fp32 to ``tol`` of the tensor's scale (max |expected|, at least 1): gradients
    that reach ~10 differ by ~1e-6 from summation order alone."""
    scale = max(1.0, float(expected.abs().max()))
    err = float((actual - expected).abs().max())
    assert err <= tol * scale, f"{what}: max |diff| {err:.3g} > {tol:g} x scale {scale:.3g}"


def full_scores(hidden, weight, query: TokenQuery, softcap=None):
    """The reference: all logits, soft cap, temperature, mask, log_softmax, gather; entropy as rl does."""
    z = torch.nn.functional.linear(hidden, weight).float()[query.positions]
    if softcap is not None:
        z = softcap * torch.tanh(z / softcap)
    if query.temperature != 1.0:
        z = z / query.temperature
    if query.kept is not None:
        z = z.masked_fill(~query.kept.to_mask(z.shape[1]), float("-inf"))
    logp_all = torch.log_softmax(z, dim=-1)
    logp = logp_all.gather(-1, query.targets[:, None]).squeeze(-1)
    entropy = -(logp_all.exp() * torch.where(torch.isneginf(logp_all), 0.0, logp_all)).sum(-1)
    return logp, entropy


def random_query(n_tokens: int, vocab: int, *, masked: bool, temperature: float, chunk: int):
    gen = torch.Generator().manual_seed(3)
    positions = torch.randperm(n_tokens, generator=gen)[: n_tokens * 2 // 3].sort().values
    n = positions.numel()
    kept = None
    if masked:  # rows that keep few, rows that cut few, a row that cuts nothing
        mask = torch.rand(n, vocab, generator=gen) < torch.linspace(0.05, 0.95, n)[:, None]
        mask[n // 2] = True
        targets = torch.multinomial(mask.float(), 1, generator=gen).squeeze(-1)  # allowed tokens
        kept = KeptTokens.from_mask(mask)
        assert (kept.counts > 0).any() and (kept.counts < 0).any() and (kept.counts == 0).any()
    else:
        targets = torch.randint(0, vocab, (n,), generator=gen)
    return TokenQuery(positions, targets, temperature, kept, entropy=True, chunk_tokens=chunk)


@pytest.mark.parametrize("masked,temperature,softcap", [
    (False, 1.0, None), (True, 0.7, None), (False, 1.3, None), (True, 0.7, 2.0), (False, 1.0, 2.0)])
@pytest.mark.parametrize("chunk", [1, 5, 1000])
def test_chunked_equals_full_values_and_gradients(masked, temperature, softcap, chunk):
    torch.manual_seed(0)
    t, c, v = 23, 16, 97
    hidden = torch.randn(t, c, requires_grad=True)
    weight = (0.3 * torch.randn(v, c)).requires_grad_()
    query = random_query(t, v, masked=masked, temperature=temperature, chunk=chunk)
    g_logp, g_ent = torch.randn(query.positions.numel()), torch.randn(query.positions.numel())

    logp, ent = score_tokens(hidden, weight, query, softcap=softcap)
    ((logp * g_logp).sum() + (ent * g_ent).sum()).backward()
    got = logp.detach(), ent.detach(), hidden.grad.clone(), weight.grad.clone()
    hidden.grad = weight.grad = None

    ref_logp, ref_ent = full_scores(hidden, weight, query, softcap)
    ((ref_logp * g_logp).sum() + (ref_ent * g_ent).sum()).backward()
    want = ref_logp.detach(), ref_ent.detach(), hidden.grad, weight.grad
    for name, a, b in zip(("logprobs", "entropy", "grad hidden", "grad weight"), got, want, strict=True):
        assert torch.isfinite(a).all(), name
        assert_same(a, b, name)
    # Positions not queried get no gradient: the head never saw them.
    unused = torch.ones(t, dtype=torch.bool)
    unused[query.positions] = False
    assert (got[2][unused] == 0).all()


def test_without_entropy_grad_only_through_logprobs():
    torch.manual_seed(1)
    hidden = torch.randn(9, 8, requires_grad=True)
    weight = torch.randn(31, 8, requires_grad=True)
    query = TokenQuery(torch.arange(9), torch.randint(0, 31, (9,)), chunk_tokens=4)
    logp, ent = score_tokens(hidden, weight, query)
    assert ent is None
    logp.sum().backward()
    ref, _ = full_scores(hidden.detach().requires_grad_(), weight, query)
    assert_same(logp.detach(), ref.detach(), "logprobs")


def test_model_query_matches_model_logits(config):
    """``model(ids, cu, query)`` scores exactly what ``model(ids, cu)`` logits give, grads too."""
    model = randomize_(Transformer(config), seed=2)
    ids, cu = pack(random_sequences(config.vocab_size, [7, 12, 5]))
    positions = torch.tensor([0, 3, 6, 8, 15, 19, 21])
    targets = torch.roll(ids, -1)[positions]
    query = TokenQuery(positions, targets, entropy=True, chunk_tokens=3)

    logp, ent = model(ids, cu, query)
    (logp.sum() - 0.5 * ent.sum()).backward()
    got = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    z = torch.log_softmax(model(ids, cu).float()[positions], -1)
    ref_logp = z.gather(-1, targets[:, None]).squeeze(-1)
    ref_ent = -(z.exp() * z).sum(-1)
    (ref_logp.sum() - 0.5 * ref_ent.sum()).backward()
    assert_same(logp.detach(), ref_logp.detach(), "logprobs")
    assert_same(ent.detach(), ref_ent.detach(), "entropy")
    # Back through two blocks, fp32 rounding of the head's different summation order grows
    # past 1e-6 (measured up to 1.1e-6): parameter grads get 1e-5 of their scale.
    for (name, p), g in zip(model.named_parameters(), got, strict=True):
        assert_same(g, p.grad, name, tol=1e-5)


def test_bad_mask_shape_and_value_head_are_clear_errors(config):
    model = Transformer(config)
    ids, cu = pack(random_sequences(config.vocab_size, [4]))
    bad = TokenQuery(torch.arange(3), ids[1:], kept=KeptTokens.empty(4))
    with pytest.raises(ValueError, match=r"kept tokens cover 4 positions; expected 3"):
        model(ids, cu, bad)
    config.value_head = True
    with pytest.raises(ValueError, match="value-head model has no token log-probs"):
        Transformer(config)(ids, cu, TokenQuery(torch.arange(3), ids[1:]))
