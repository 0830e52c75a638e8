"""``ItemsDataset``: what ``engine.set_dataset(items)`` builds from plain Python items.

Each item becomes one sample. A string is ``{"prompt": text}``. In a dict, each
field becomes a batch key of the same name:

- a string is tokenized with the engine's tokenizer (special tokens added, so the
  embedded tokenizer prepends ``<bos>``);
- a number is a one-value sequence;
- a list of numbers, an array or a tensor is one sequence (packed along dim 0, so a
  ``[tokens, features]`` array is one sequence of feature vectors);
- a list of strings or of sequences is several sequences (a chosen/rejected pair).

The item itself rides along in the batch metadata under ``"item"``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from rlcore.errors import DataError

ITEM_KEY = "item"


class ItemsDataset:
    """A map-style rlcore dataset over ``items`` (a list, or any ``__len__``/``__getitem__``)."""

    def __init__(self, items: Sequence[Any], get_tokenizer: Callable[[], Any] | None = None,
                 add_special_tokens: bool = True):
        if not hasattr(items, "__len__") or not hasattr(items, "__getitem__"):
            raise DataError(f"set_dataset expects a list of items or a map-style dataset, got "
                            f"{type(items).__name__}")
        if len(items) == 0:
            raise DataError("set_dataset got no items; give at least one")
        self.items = items
        self._get_tokenizer = get_tokenizer
        self.add_special_tokens = add_special_tokens
        self._cache: dict[int, dict[str, list[np.ndarray]]] = {}
        self.fields = tuple(self._fields(0))

    @property
    def tokenizer(self) -> Any:
        tok = self._get_tokenizer() if self._get_tokenizer is not None else None
        if tok is None:
            from rlcore.data.tokenizer import load_tokenizer

            tok = load_tokenizer(None)
        return tok

    def _item(self, i: int) -> Mapping[str, Any]:
        item = self.items[i]
        if isinstance(item, str):
            return {"prompt": item}
        if isinstance(item, Mapping):
            if not item:
                raise DataError(f"item {i} is an empty dict; give at least one field")
            return item
        raise DataError(f"item {i} is a {type(item).__name__}; give strings or dicts")

    def _fields(self, i: int) -> list[str]:
        return list(self._sample(i))

    def _sample(self, i: int) -> dict[str, list[np.ndarray]]:
        if i not in self._cache:
            item = self._item(i)
            self._cache[i] = {str(k): self._sequences(v, i, str(k)) for k, v in item.items()}
        return self._cache[i]

    def _encode(self, text: str) -> np.ndarray:
        ids = self.tokenizer(text, add_special_tokens=self.add_special_tokens)["input_ids"]
        return np.asarray(ids, dtype=np.int64)

    def _sequences(self, value: Any, i: int, field: str) -> list[np.ndarray]:
        if _is_tensor(value):
            value = _array(value)
        if isinstance(value, str):
            return [self._encode(value)]
        if isinstance(value, bool | int | float | np.number):
            return [np.asarray([value])]
        if isinstance(value, np.ndarray):
            return [value.reshape(-1) if value.ndim == 0 else value]
        if isinstance(value, list | tuple):
            if not value:
                return [np.zeros((0,), dtype=np.int64)]
            if all(isinstance(v, str) for v in value):
                return [self._encode(v) for v in value]
            if all(isinstance(v, bool | int | float | np.number) for v in value):
                return [np.asarray(value)]
            if all(isinstance(v, list | tuple | np.ndarray) or _is_tensor(v) for v in value):
                return [_array(v) for v in value]
        raise DataError(
            f"item {i}, field {field!r}: cannot turn a {type(value).__name__} into token "
            "sequences; use a string, a number, a list of numbers, or a list of those"
        )

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[int, dict[str, list[np.ndarray]]]:
        sample = self._sample(i)
        if set(sample) != set(self.fields):
            raise DataError(
                f"item {i} has fields {sorted(sample)} but item 0 has {sorted(self.fields)}; "
                "every item needs the same fields"
            )
        return i, sample

    def num_tokens(self, i: int) -> int:
        return max(sum(len(s) for s in seqs) for seqs in self._sample(i).values())

    def collate(self, samples: Sequence[tuple[int, dict[str, list[np.ndarray]]]]) -> Any:
        from rlcore.data.batch import PackedBatch

        return PackedBatch.from_sequences(
            [str(i) for i, _ in samples],
            {k: [s[k] for _, s in samples] for k in self.fields},
            metadata={ITEM_KEY: [dict(self._item(i)) for i, _ in samples]},
        )


def _is_tensor(v: Any) -> bool:
    return type(v).__name__ == "Tensor" and hasattr(v, "detach")


def _array(v: Any) -> np.ndarray:
    if _is_tensor(v):
        return v.detach().cpu().numpy()
    return np.asarray(v)
