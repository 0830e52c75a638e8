"""Rollouts: the actor's sampled responses as packed sequences, and log-probs replayed at train time.

A generated batch holds, per prompt sample, ``n_samples`` sequences of prompt + response:

- ``packed_input_ids`` the tokens; ``prompt_mask`` True on prompt tokens;
- ``packed_logprobs`` at position t the sampling log-prob of token t+1 (0 off the response);
- ``logits_mask`` (only when sampling cut tokens, i.e. top-k/top-p/min-tokens) at position t
  the tokens that were allowed when token t+1 was sampled;
- ``seq_no_eos_mask`` and ``version`` one value per sequence: the response was cut at
  ``max_new_tokens``, and the actor's weight version that sampled it.
"""

from __future__ import annotations

import zlib
from typing import Any

import torch

from rlcore.data.batch import PackedBatch
from rlcore.models.generation import GenerationConfig, generate
from rlcore.models.token_logprobs import TokenQuery
from rlcore.runtime.interface import ModelHandle
from rlcore_plugin_algorithms.losses import next_token_query, next_token_valid

IDS = "packed_input_ids"
ROLLOUT_KEYS = ("packed_input_ids", "prompt_mask", "packed_logprobs", "seq_no_eos_mask", "version")


def generation_seed(base: int, version: int, rank: int, ids: list[str]) -> int:
    """A sampling seed fixed by the run seed, weight version, rank and batch (so resume repeats it)."""
    return zlib.crc32(f"{base}:{version}:{rank}:{','.join(ids)}".encode())


def sample_responses(handle: ModelHandle, data: PackedBatch, gconfig: GenerationConfig,
                     n_samples: int, seed: int, with_mask: bool) -> PackedBatch:
    """Sample ``n_samples`` responses per prompt of ``data['packed_prompts']`` with the actor."""
    prompts = [data.sequences("packed_prompts", i)[0].tolist() for i in range(len(data))]
    flat = [p for p in prompts for _ in range(n_samples)]
    module = handle.module
    generator = torch.Generator(handle.device).manual_seed(seed)
    with handle.model.gathered_parameters(), torch.no_grad():
        out = generate(module, flat, gconfig, generator=generator)
    eos = set(gconfig.eos_token_ids)
    ids, prompt_mask, logprobs, masks, no_eos = [], [], [], [], []
    vocab = module.config.vocab_size
    for prompt, tokens, lp, mask in zip(flat, out.tokens, out.logprobs, out.logits_mask,
                                        strict=True):
        n_prompt, n_new = len(prompt), len(tokens)
        ids.append(torch.cat([torch.tensor(prompt), tokens]))
        prompt_mask.append(torch.arange(n_prompt + n_new) < n_prompt)
        seq_lp = torch.zeros(n_prompt + n_new)
        seq_lp[n_prompt - 1 : n_prompt - 1 + n_new] = lp.float()
        logprobs.append(seq_lp)
        no_eos.append(int(tokens[-1]) not in eos)
        if with_mask:
            full = torch.ones(n_prompt + n_new, vocab, dtype=torch.bool)
            if mask is not None:
                full[n_prompt - 1 : n_prompt - 1 + n_new] = mask
            masks.append(full)
    n = n_samples
    groups = lambda seqs: [seqs[i * n : (i + 1) * n] for i in range(len(prompts))]  # noqa: E731
    sequences: dict[str, Any] = {
        IDS: groups(ids), "prompt_mask": groups(prompt_mask), "packed_logprobs": groups(logprobs),
        "seq_no_eos_mask": groups([[v] for v in no_eos]),
        "version": groups([[handle.version] for _ in no_eos]),
    }
    dtypes = {"prompt_mask": torch.bool, "seq_no_eos_mask": torch.bool, "version": torch.int64,
              "packed_logprobs": torch.float32}
    batch = PackedBatch.from_sequences(data.ids, sequences, dtypes=dtypes)
    if with_mask:
        # One row of the vocabulary per token: packed directly, from_sequences wants 1-D rows.
        batch.data["logits_mask"] = torch.cat(masks)
        batch.seqlens["logits_mask"] = [list(s) for s in batch.seqlens[IDS]]
    return batch


def action_mask(prompt_mask: torch.Tensor, cu_seqlens: torch.Tensor) -> torch.Tensor:
    """Bool ``[T]``: position t predicts a response token (an action) of its own sequence."""
    response = ~prompt_mask.bool()
    return torch.roll(response, shifts=-1) & next_token_valid(cu_seqlens, response.numel())


def action_counts(act: torch.Tensor, cu_seqlens: torch.Tensor) -> torch.Tensor:
    """Offsets ``[B+1]`` of each sequence's actions in ``act``-compacted tensors."""
    counts = torch.zeros(cu_seqlens.numel() - 1, dtype=torch.long, device=act.device)
    seq = torch.repeat_interleave(torch.arange(counts.numel(), device=act.device),
                                  (cu_seqlens[1:] - cu_seqlens[:-1]).long())
    counts.index_add_(0, seq, act.long())
    return torch.cat([counts.new_zeros(1), counts.cumsum(0)])


def sampling_temperature(gconfig: GenerationConfig) -> float:
    """The temperature sampling divided the logits by (1.0 when greedy)."""
    return 1.0 if gconfig.greedy else float(gconfig.temperature)


def action_query(input_ids: torch.Tensor, act: torch.Tensor, gconfig: GenerationConfig,
                 logits_mask: torch.Tensor | None, entropy: bool = False) -> TokenQuery:
    """A query for the log-probs of the actions (``act``) as sampling saw them: same
    temperature, same cut tokens (the rows of ``logits_mask`` [T, V] at the actions)."""
    query = next_token_query(input_ids, act, temperature=sampling_temperature(gconfig),
                             entropy=entropy)
    if logits_mask is not None:
        query.logits_mask = logits_mask.to(input_ids.device)[query.positions]
    return query


def processed_logits(logits: torch.Tensor, gconfig: GenerationConfig,
                     logits_mask: torch.Tensor | None) -> torch.Tensor:
    """fp32 logits as sampling saw them: divided by the temperature, cut tokens at -inf."""
    logits = logits.float()
    if sampling_temperature(gconfig) != 1.0:
        logits = logits / sampling_temperature(gconfig)
    if logits_mask is not None:
        logits = logits.masked_fill(~logits_mask.to(logits.device), float("-inf"))
    return logits


def token_logprobs(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """``out[t] = log p(input_ids[t+1])`` under ``logits[t]`` (the last position wraps: mask it)."""
    targets = torch.roll(input_ids, shifts=-1)
    return torch.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
