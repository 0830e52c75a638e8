"""The loss-kernel option: chunked everywhere, liger only on CUDA with liger-kernel, clear errors."""

from __future__ import annotations

import pytest
import torch

from rlcore.errors import ConfigError
from rlcore.models.config import TransformerConfig
from rlcore.models.loss_kernel import check_loss_kernel, liger_installed
from rlcore.models.token_logprobs import TokenQuery, score_tokens
from rlcore.models.transformer import Transformer

CUDA_LIGER = torch.cuda.is_available() and liger_installed()


def test_liger_off_cuda_is_an_error_that_names_the_option_and_the_way_out():
    with pytest.raises(ConfigError, match=r"actor\.loss_kernel=liger .*actor\.loss_kernel=chunked"):
        check_loss_kernel("liger", "actor.loss_kernel", cuda=False)
    torch.manual_seed(0)
    model = Transformer(TransformerConfig(vocab_size=64, hidden_size=16, n_layers=1))
    model.loss_kernel = "liger"
    query = TokenQuery(torch.tensor([0, 1]), torch.tensor([3, 4]))
    with pytest.raises(ConfigError, match="loss_kernel=liger"):
        model(torch.tensor([1, 2, 3]), torch.tensor([0, 3]), query)


def test_unknown_kernel_names_the_choices():
    with pytest.raises(ConfigError, match="choose one of chunked, liger, auto"):
        check_loss_kernel("fused", "actor.loss_kernel")


@pytest.mark.skipif(torch.cuda.is_available(), reason="auto picks liger on CUDA")
def test_auto_off_cuda_is_the_chunked_head():
    torch.manual_seed(0)
    hidden, weight = torch.randn(9, 8), torch.randn(40, 8)
    query = TokenQuery(torch.tensor([0, 4, 8]), torch.tensor([1, 2, 39]), temperature=0.8)
    assert check_loss_kernel("auto") == "auto"
    torch.testing.assert_close(score_tokens(hidden, weight, query, "auto")[0],
                               score_tokens(hidden, weight, query)[0], rtol=0, atol=0)


def test_sft_config_takes_the_option_and_names_the_key_when_wrong():
    from rlcore.config import resolve
    from rlcore_plugin_algorithms.config import SFTConfig

    assert resolve(SFTConfig, sets=[]).actor.loss_kernel == "chunked"
    assert resolve(SFTConfig, sets=["actor.loss_kernel=auto"]).actor.loss_kernel == "auto"
    with pytest.raises(ConfigError, match="actor.loss_kernel"):
        resolve(SFTConfig, sets=["actor.loss_kernel=fused"])


@pytest.mark.skipif(not CUDA_LIGER, reason="Liger's kernels need CUDA and liger-kernel installed")
@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_liger_equals_chunked_on_cuda_values_and_gradients(temperature):
    torch.manual_seed(0)
    t, c, v = 300, 64, 5000
    hidden = torch.randn(t, c, device="cuda", requires_grad=True)
    weight = (0.3 * torch.randn(v, c, device="cuda")).requires_grad_()
    positions = torch.randperm(t, device="cuda")[:200].sort().values
    query = TokenQuery(positions, torch.randint(0, v, (200,), device="cuda"), temperature=temperature)
    g = torch.randn(200, device="cuda")
    results = []
    for kernel in ("chunked", "liger"):
        logp, _ = score_tokens(hidden, weight, query, kernel)
        (logp * g).sum().backward()
        results.append((logp.detach(), hidden.grad.clone(), weight.grad.clone()))
        hidden.grad = weight.grad = None
    for got, want in zip(results[1], results[0], strict=True):
        scale = max(1.0, float(want.abs().max()))
        assert float((got - want).abs().max()) <= 1e-4 * scale


def test_sft_experiment_sets_the_kernel_on_the_model_it_builds():
    from rlcore.config import resolve
    from rlcore.data.tokenizer import load_tokenizer
    from rlcore.runtime.roles import RoleSpec
    from rlcore_plugin_algorithms.config import SFTConfig
    from rlcore_plugin_algorithms.experiments import SFT

    tokenizer = load_tokenizer(None)
    role = RoleSpec("actor", trainable=True)
    model, _ = SFT(resolve(SFTConfig, sets=["actor.loss_kernel=auto"])).build_model(role, tokenizer)
    assert model.loss_kernel == "auto"
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match=r"actor\.loss_kernel=liger"):
            SFT(resolve(SFTConfig, sets=["actor.loss_kernel=liger"])).build_model(role, tokenizer)


@pytest.mark.skipif(torch.cuda.is_available(), reason="liger can run here")
def test_dry_run_check_rejects_a_kernel_that_cannot_run_here():
    from rlcore.config import resolve
    from rlcore_plugin_algorithms.config import SFTConfig
    from rlcore_plugin_algorithms.experiments import SFT

    with pytest.raises(ConfigError, match=r"actor\.loss_kernel=liger"):
        SFT(resolve(SFTConfig, sets=["actor.loss_kernel=liger"])).check()
