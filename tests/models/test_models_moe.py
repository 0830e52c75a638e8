"""Mixture-of-experts block: routing options against a dense reference, packing, the KV cache,
checkpointing, the load-balancing loss and routing replay (HF parity is in the MoE family plugins)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from rlcore.errors import ConfigError
from rlcore.models import moe
from rlcore.models.config import TransformerConfig
from rlcore.models.generation import GenerationConfig, generate
from rlcore.models.transformer import Transformer
from rlcore.testing.families import pack, random_sequences, randomize_

LENS = (6, 19, 1, 11)
# 4 experts of 24, top-2, a gated shared expert 40 wide, layer 1 dense.
MOE = TransformerConfig(vocab_size=61, hidden_size=32, intermediate_size=48, n_layers=3, n_q_heads=4,
                        n_kv_heads=2, n_experts=4, n_experts_per_token=2, moe_intermediate_size=24,
                        shared_expert_size=40, shared_expert_gate=True, dense_layers=[1])


def model_for(cfg: TransformerConfig = MOE, seed: int = 0) -> Transformer:
    torch.manual_seed(seed)
    return randomize_(Transformer(cfg), seed).eval()


def dense_reference(block: moe.MoE, x: torch.Tensor) -> torch.Tensor:
    """Every expert on every token, weighted by the routing (zero for unchosen): the definition."""
    scores = block.router(x).float()
    scores = scores.softmax(-1) if block.score == "softmax" else scores.sigmoid()
    top, idx = scores.topk(block.top_k, -1)
    if block.norm_topk:
        top = top / top.sum(-1, keepdim=True)
    weight = torch.zeros_like(scores).scatter(-1, idx, top)  # [T, E]
    gate, up = torch.einsum("tc,eic->tei", x, block.gate_up_proj).chunk(2, dim=-1)
    experts = torch.einsum("tei,eci->tec", block.act(gate) * up, block.down_proj)
    out = (weight[..., None] * experts).sum(1)
    if block.shared is not None:
        out = out + torch.sigmoid(block.shared_gate(x)) * block.shared(x)
    return out


@pytest.mark.parametrize("score,norm", [("softmax", True), ("softmax", False), ("sigmoid", True),
                                        ("sigmoid", False)])
def test_block_matches_dense_reference(score, norm):
    model = model_for(dataclasses.replace(MOE, router_score=score, router_norm_topk=norm))
    block = model.blocks[0].mlp
    x = torch.randn(37, MOE.hidden_size, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        torch.testing.assert_close(block(x), dense_reference(block, x), atol=1e-5, rtol=0)


def test_layers_and_names():
    names = set(Transformer(MOE).state_dict())
    assert {"blocks.0.mlp.router.weight", "blocks.0.mlp.gate_up_proj", "blocks.0.mlp.down_proj",
            "blocks.0.mlp.shared.up_proj.weight", "blocks.0.mlp.shared_gate.weight",
            "blocks.1.mlp.up_proj.weight", "blocks.2.mlp.router.weight"} <= names
    assert "blocks.1.mlp.router.weight" not in names
    assert len(moe.moe_layers(Transformer(MOE))) == 2


@pytest.mark.parametrize("bad,match", [({"n_experts_per_token": 5}, "n_experts_per_token"),
                                       ({"router_score": "relu"}, "router_score"),
                                       ({"gated_mlp": False}, "gated_mlp"),
                                       ({"dense_layers": [3]}, "dense_layers")])
def test_bad_moe_config_names_the_field(bad, match):
    with pytest.raises(ConfigError, match=match):
        dataclasses.replace(MOE, **bad).validate()


def test_packed_equals_each_sequence_alone():
    model = model_for()
    seqs = random_sequences(MOE.vocab_size, LENS)
    with torch.no_grad():
        packed = model(*pack(seqs))
        alone = torch.cat([model(s, torch.tensor([0, len(s)])) for s in seqs])
    torch.testing.assert_close(packed, alone, atol=1e-5, rtol=0)


def test_greedy_with_cache_matches_full_recompute():
    model = model_for()
    prompts = [s.tolist() for s in random_sequences(MOE.vocab_size, (5, 1, 8), seed=2)]
    out = generate(model, prompts, GenerationConfig(max_new_tokens=6, greedy=True))
    for prompt, new in zip(prompts, out.tokens, strict=True):
        ids = list(prompt)
        for _ in range(6):
            with torch.no_grad():
                logits = model(torch.tensor(ids), torch.tensor([0, len(ids)]))
            ids.append(int(logits[-1].argmax()))
        assert new.tolist() == ids[len(prompt):]


def test_gradient_checkpointing_gives_same_grads_and_aux_loss():
    ids, cu = pack(random_sequences(MOE.vocab_size, LENS))
    grads, losses = [], []
    for ckpt in (False, True):
        model = model_for().train()
        model.gradient_checkpointing = ckpt
        aux = (model(ids, cu).logsumexp(-1).sum(), moe.aux_loss(model))
        (aux[0] + aux[1]).backward()
        losses.append(aux[1].detach())
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    assert torch.equal(losses[0], losses[1])
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], atol=1e-6, rtol=0, msg=name)
    assert grads[0]["blocks.0.mlp.router.weight"].abs().sum() > 0


def test_aux_loss_is_k_when_uniform_and_none_when_dense():
    model = model_for()
    with torch.no_grad():
        for m in moe.moe_layers(model):
            m.router.weight.zero_()  # uniform probabilities; top-k ties broken by index
        model(*pack(random_sequences(MOE.vocab_size, LENS)))
    # Switch loss = E * sum_e f_e * P_e; uniform P_e = 1/E gives sum_e f_e = k per token, over layers.
    assert moe.aux_loss(model).item() == pytest.approx(MOE.n_experts_per_token, rel=1e-5)
    dense = Transformer(dataclasses.replace(MOE, n_experts=0))
    dense(*pack(random_sequences(MOE.vocab_size, LENS)))
    assert moe.aux_loss(dense) is None


def test_replaying_the_natural_routing_changes_nothing_and_trains_the_router():
    model = model_for().train()
    ids, cu = pack(random_sequences(MOE.vocab_size, LENS))
    free = model(ids, cu)
    recorded = moe.recorded_routing(model)
    moe.replay_routing(model, recorded)
    replayed = model(ids, cu)
    assert torch.equal(free, replayed)
    replayed.logsumexp(-1).sum().backward()
    assert model.blocks[0].mlp.router.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match=r"replayed routing has shape \(37, 2\)"):
        model(ids[:-1], torch.tensor([0, ids.numel() - 1]))
    moe.replay_routing(model, None)
    assert all(m.forced is None for m in moe.moe_layers(model))
    with pytest.raises(ValueError, match="MoE layers"):
        moe.replay_routing(model, recorded[:1])


def test_near_tied_router_disagrees_without_replay_and_agrees_with_it():
    model = model_for()
    with torch.no_grad():
        for m in moe.moe_layers(model):  # every expert's router row nearly the same
            m.router.weight.copy_(m.router.weight[:1] + 1e-4 * torch.randn_like(m.router.weight))
    ids, cu = pack(random_sequences(MOE.vocab_size, LENS))
    with torch.no_grad():
        model(ids, cu)
        recorded = moe.recorded_routing(model)
        for m in moe.moe_layers(model):  # a small weight update (a training step) flips near ties
            m.router.weight.add_(1e-3 * torch.randn_like(m.router.weight))
        model(ids, cu)
        assert moe.router_agreement(recorded, moe.recorded_routing(model)) < 1
        moe.replay_routing(model, recorded)
        model(ids, cu)
        assert moe.router_agreement(recorded, moe.recorded_routing(model)) == 1


def test_generation_records_the_routing_that_a_packed_forward_replays_exactly():
    """Prefill and decode steps record each token's experts; a packed forward over prompt +
    response with them forced scores the sampled tokens as sampling did (the R3 ratio is 1)."""
    model = model_for()
    prompts = [[3, 9, 4], [7], [5, 1, 2, 8, 6]]
    g = GenerationConfig(max_new_tokens=5, temperature=1.0, record_routing=True)
    out = generate(model, prompts, g, seed=0)
    layers = len(moe.moe_layers(model))
    for p, toks, r in zip(prompts, out.tokens, out.routing, strict=True):
        assert r.shape == (len(p) + len(toks), layers, MOE.n_experts_per_token)
        assert r.dtype == torch.int16 and (r[-1] == -1).all() and (r[:-1] >= 0).all()
    seqs = [torch.tensor(p + t.tolist()) for p, t in zip(prompts, out.tokens, strict=True)]
    ids, cu = pack(seqs)
    routing = torch.cat(out.routing).long()
    moe.replay_routing(model, list(routing.unbind(1)))
    with torch.no_grad():
        logp = model(ids, cu).float().log_softmax(-1)
    moe.replay_routing(model, None)
    assert moe.router_agreement(list(routing.unbind(1)), moe.natural_routing(model)) == 1
    for i, (p, toks) in enumerate(zip(prompts, out.tokens, strict=True)):
        at = torch.arange(len(toks)) + int(cu[i]) + len(p) - 1
        assert torch.allclose(logp[at, toks], out.logprobs[i], atol=1e-5)
    with pytest.raises(ConfigError, match="no MoE layers"):
        generate(Transformer(dataclasses.replace(MOE, n_experts=0)), prompts, g, seed=0)


def test_a_row_of_minus_one_keeps_its_natural_routing():
    model = model_for()
    ids, cu = pack(random_sequences(MOE.vocab_size, LENS))
    with torch.no_grad():
        model(ids, cu)
        natural = moe.recorded_routing(model)
        forced = [torch.full_like(r, -1) for r in natural]
        forced[0][:3] = (natural[0][:3] + 1) % MOE.n_experts  # three tokens sent elsewhere
        moe.replay_routing(model, forced)
        model(ids, cu)
    chosen = moe.recorded_routing(model)
    assert torch.equal(chosen[0][:3], forced[0][:3]) and torch.equal(chosen[0][3:], natural[0][3:])
    assert moe.router_agreement(forced, moe.natural_routing(model)) == 0  # -1 rows do not count
    assert moe.router_agreement(natural, chosen) < 1
