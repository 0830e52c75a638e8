"""ClassifierRewardInterface: a HF sequence classifier scores each response as its reward.

The actor's tokens are decoded to text (its tokenizer), then encoded again with the
classifier's tokenizer, so the two models need not share a vocabulary. The reward is the
chosen label's logit (``score="logit"``), its probability (``"prob"``), or the single
output of a one-label (regression) head.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

import torch

from rlcore.sdk import INPUT_IDS, PROMPT_MASK, REWARDS, ConfigError, ModelHandle, ModelInterface
from rlcore_plugin_algorithms.rewards import per_sequence, responses

if TYPE_CHECKING:
    from rlcore.sdk import PackedBatch

ARGS = "reward.interface_args"


class ClassifierRewardInterface(ModelInterface):
    """inference: ``rewards`` = the classifier's score of each decoded response.

    ``model``: a local HF directory with a sequence-classification model and its tokenizer.
    ``label``: the label scored (an index, or a name from the model's ``id2label``; default
    the last label, e.g. POSITIVE). ``with_prompt`` scores prompt + response.
    """

    def __init__(self, model: str, label: int | str | None = None,
                 score: Literal["logit", "prob"] = "logit", with_prompt: bool = False,
                 max_length: int = 512, batch_size: int = 32):
        import transformers

        path = Path(model)
        if not (path / "config.json").is_file():
            raise ConfigError(f"{ARGS}.model: {path} is not a HF model directory (no config.json); "
                              "point it at a local sequence-classification model")
        if score not in ("logit", "prob"):
            raise ConfigError(f"{ARGS}.score: expected 'logit' or 'prob', got {score!r}")
        if max_length < 1 or batch_size < 1:
            raise ConfigError(f"{ARGS}: max_length and batch_size must be >= 1")
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(path)
            self.model = transformers.AutoModelForSequenceClassification.from_pretrained(path)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{ARGS}.model: cannot load {path} as a sequence classifier "
                              f"with its tokenizer ({exc})") from None
        if self.tokenizer.pad_token is None:  # GPT-style classifiers: pad with eos, batches need it
            self.tokenizer.pad_token = self.tokenizer.eos_token
            self.model.config.pad_token_id = self.tokenizer.pad_token_id
        self.model.eval().requires_grad_(False)
        self.label = self._label_index(label)
        self.score, self.with_prompt = score, with_prompt
        self.max_length, self.batch_size = max_length, batch_size

    def _label_index(self, label: int | str | None) -> int:
        config = self.model.config
        n = config.num_labels
        if label is None:
            return n - 1
        names = {str(v): int(k) for k, v in config.id2label.items()}
        if isinstance(label, str) and not label.lstrip("-").isdigit():
            if label not in names:
                raise ConfigError(f"{ARGS}.label: the classifier has no label {label!r}; its "
                                  f"labels are {sorted(names, key=names.get)}")
            return names[label]
        index = int(label)
        if not 0 <= index < n:
            raise ConfigError(f"{ARGS}.label: {index} is not a label index of a classifier with "
                              f"{n} labels (0..{n - 1})")
        return index

    def texts(self, handle: ModelHandle, data: PackedBatch) -> list[str]:
        """Each sequence's response (or prompt + response) as text, in the actor's tokenizer."""
        texts, _, _ = responses(handle.tokenizer, data)
        if not self.with_prompt:
            return texts
        ids, mask = data.data[INPUT_IDS], data.data[PROMPT_MASK].bool()
        prompts, start = [], 0
        for lens in data.seqlens[INPUT_IDS]:
            for n in lens:
                piece = slice(start, start + n)
                prompts.append(ids[piece][mask[piece]].tolist())
                start += n
        decoded = handle.tokenizer.batch_decode(prompts, skip_special_tokens=True)
        return [p + t for p, t in zip(decoded, texts, strict=True)]

    @torch.no_grad()
    def scores(self, texts: list[str]) -> torch.Tensor:
        """The classifier's score of each text ``[n]``, in batches."""
        from rlcore.sdk import distributed

        device = distributed.device()
        self.model.to(device)
        out = []
        for start in range(0, len(texts), self.batch_size):
            enc = self.tokenizer(texts[start:start + self.batch_size], padding=True,
                                 truncation=True, max_length=self.max_length, return_tensors="pt")
            logits = self.model(**enc.to(device)).logits.float()
            if self.score == "prob" and logits.shape[-1] > 1:
                logits = logits.softmax(-1)
            elif self.score == "prob":
                logits = logits.sigmoid()
            out.append(logits[:, self.label].cpu())
        return torch.cat(out) if out else torch.zeros(0)

    def inference(self, handle: ModelHandle, data: PackedBatch) -> PackedBatch:
        return per_sequence(data, REWARDS, self.scores(self.texts(handle, data)).tolist())
