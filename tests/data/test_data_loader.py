"""BatchIterator: seeded order, batching by count or token budget, mid-epoch resume."""

from __future__ import annotations

import pytest

from rlcore.data.loader import BatchIterator
from rlcore.errors import ConfigError
from rlcore_plugin_datasets.config import PromptAnswerConfig
from rlcore_plugin_datasets.prompt_answer import PromptAnswerDataset


@pytest.fixture(scope="module")
def ds():
    from rlcore.data.embedded import embedded_tokenizer

    return PromptAnswerDataset(PromptAnswerConfig(embedded_size=53, seed=3), embedded_tokenizer())


def ids_of(batches):
    return [b.ids for b in batches]


def test_same_seed_same_order_other_seed_other_order(ds):
    a = ids_of(BatchIterator(ds, batch_size=8, seed=5))
    assert a == ids_of(BatchIterator(ds, batch_size=8, seed=5))
    assert a != ids_of(BatchIterator(ds, batch_size=8, seed=6))
    flat = [i for b in a for i in b]
    assert sorted(flat) == sorted(s.id for s in ds.samples)  # one epoch: each sample once
    assert [len(b) for b in a] == [8] * 6 + [5]
    assert len(BatchIterator(ds, batch_size=8, drop_last=True)) == 6
    unshuffled = ids_of(BatchIterator(ds, batch_size=53, shuffle=False))
    assert unshuffled == [[s.id for s in ds.samples]]


def test_epochs_reshuffle(ds):
    batches = ids_of(BatchIterator(ds, batch_size=53, epochs=3, seed=1))
    assert len(batches) == 3
    assert all(sorted(b) == sorted(batches[0]) for b in batches)
    assert batches[0] != batches[1]


@pytest.mark.parametrize("stop", [0, 1, 4, 7, 9, 13])
@pytest.mark.parametrize("mode", [{"batch_size": 8}, {"max_tokens": 64}])
def test_resume_mid_epoch_gives_the_same_remaining_batches(ds, stop, mode):
    full = BatchIterator(ds, epochs=2, seed=11, **mode)
    expected = [(b.ids, b.data["packed_input_ids"].tolist()) for b in full]
    it = BatchIterator(ds, epochs=2, seed=11, **mode)
    gen = iter(it)
    for _ in range(stop):
        next(gen)
    state = it.state_dict()
    resumed = BatchIterator(ds, epochs=2, seed=11, **mode)
    resumed.load_state_dict(state)
    rest = [(b.ids, b.data["packed_input_ids"].tolist()) for b in resumed]
    assert rest == expected[stop:]


def test_token_budget_batches(ds):
    it = BatchIterator(ds, max_tokens=40, seed=2)
    batches = list(it)
    assert all(b.num_tokens("packed_input_ids") <= 40 for b in batches)
    assert sum(len(b) for b in batches) == len(ds)
    with pytest.raises(ConfigError, match="smaller than the longest sample"):
        BatchIterator(ds, max_tokens=5)


def test_resume_refuses_changed_settings(ds):
    state = BatchIterator(ds, batch_size=8, seed=1).state_dict()
    with pytest.raises(ConfigError, match="seed was 1 when the state was saved and is 2"):
        BatchIterator(ds, batch_size=8, seed=2).load_state_dict(state)
    with pytest.raises(ConfigError, match="batch_size"):
        BatchIterator(ds, batch_size=4, seed=1).load_state_dict(state)


def test_argument_errors(ds):
    with pytest.raises(ConfigError, match="exactly one"):
        BatchIterator(ds)
    with pytest.raises(ConfigError, match="batch_size"):
        BatchIterator(ds, batch_size=0)
