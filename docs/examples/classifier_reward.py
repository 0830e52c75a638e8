"""Replace PPO's reward interface with a local HF sequence classifier (the seed's sentiment reward).

The guide docs/guides/classifier-reward.md walks through it. Running this file builds a tiny
random classifier with its own tokenizer, scores two responses through the interface exactly
as the executor would call it, checks the scores against the classifier run directly, and
shows the PPO graph that uses it: ``python docs/examples/classifier_reward.py``.
"""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass, field

from rlcore.sdk import MFC, REWARDS, ModelHandle, ModelInterface
from rlcore_plugin_algorithms.rewards import per_sequence, responses
from rlcore_plugin_algorithms.rl_config import PPOConfig
from rlcore_plugin_algorithms.rl_experiments import RL


# --8<-- [start:interface]
class ClassifierReward(ModelInterface):
    """inference: ``rewards`` = a sequence classifier's score of each decoded response.

    The classifier is any local HF ``*ForSequenceClassification`` directory with its own
    tokenizer: responses are decoded with the actor's tokenizer and re-tokenised with the
    classifier's. ``label`` picks the class whose log-probability is the reward; a
    single-logit model's raw logit is used as it is.
    """

    def __init__(self, path: str, label: int = 1, max_length: int = 512, batch_size: int = 32):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModelForSequenceClassification.from_pretrained(
            path, local_files_only=True, dtype=torch.float32).eval()
        self.label, self.max_length, self.batch_size = label, max_length, batch_size

    def scores(self, texts: list[str]) -> list[float]:
        """The reward of each text."""
        import torch

        out: list[float] = []
        for start in range(0, len(texts), self.batch_size):
            enc = self.tokenizer(texts[start : start + self.batch_size], padding=True,
                                 truncation=True, max_length=self.max_length, return_tensors="pt")
            with torch.no_grad():
                logits = self.model(**enc).logits.float()
            if logits.shape[-1] == 1:
                out += logits[:, 0].tolist()
            else:
                out += logits.log_softmax(-1)[:, self.label].tolist()
        return out

    def inference(self, handle: ModelHandle, data):
        texts, _, _ = responses(handle.tokenizer, data)  # the actor's tokenizer decodes
        return per_sequence(data, REWARDS, self.scores(texts))
# --8<-- [end:interface]


# --8<-- [start:experiment]
@dataclass
class ClassifierPPOConfig(PPOConfig):
    """PPO's config plus the classifier to reward with."""

    classifier: str | None = field(default=None, metadata={
        "help": "local HF sequence-classification directory that scores responses"})
    classifier_label: int = field(default=1, metadata={"help": "class whose log-prob is the reward"})


class ClassifierPPO(RL):
    """The RL experiment (PPO preset) whose reward node calls :class:`ClassifierReward`."""

    config_class = ClassifierPPOConfig

    def reward_mfc(self, name: str = "rew_inf", rename: dict[str, str] | None = None,
                   output: str = REWARDS) -> MFC:
        mfc = super().reward_mfc(name, rename, output)  # keeps the RL graph's keys and wiring
        if self.config.classifier is None:
            return mfc
        return dataclasses.replace(mfc, interface="classifier_reward:ClassifierReward",
                                   interface_args={"path": self.config.classifier,
                                                   "label": self.config.classifier_label})
# --8<-- [end:experiment]


def tiny_classifier(path: str) -> None:
    """A random 2-class Llama classifier and a word-level tokenizer trained here, saved to ``path``."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForSequenceClassification, PreTrainedTokenizerFast

    raw = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.Split("", "isolated")  # one token per character
    raw.train_from_iterator(["0123456789+= great awful"],
                            trainers.WordLevelTrainer(special_tokens=["[PAD]", "[UNK]"]))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, pad_token="[PAD]",
                                        unk_token="[UNK]")
    tokenizer.save_pretrained(path)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=1, num_attention_heads=4, num_labels=2,
                         pad_token_id=tokenizer.pad_token_id)
    LlamaForSequenceClassification(config).save_pretrained(path)


def main() -> None:
    import torch

    from rlcore.config import experiment_config
    from rlcore.sdk import INPUT_IDS, PROMPT_MASK, PackedBatch, embedded

    with tempfile.TemporaryDirectory() as path:
        tiny_classifier(path)
        reward = ClassifierReward(path)
        actor_tok = embedded.embedded_tokenizer()

        # What the executor hands the reward node: prompt + response ids and the prompt mask.
        prompts, answers = ["12+30=", "7+8="], ["42", "great"]
        seqs, masks = [], []
        for p, a in zip(prompts, answers, strict=True):
            p_ids, a_ids = actor_tok(p)["input_ids"], actor_tok(a, add_special_tokens=False)["input_ids"]
            seqs.append([torch.tensor(p_ids + a_ids)])
            masks.append([torch.tensor([True] * len(p_ids) + [False] * len(a_ids))])
        data = PackedBatch.from_sequences(["a", "b"], {INPUT_IDS: seqs, PROMPT_MASK: masks})
        handle = ModelHandle(role="reward", module=None, model=None, tokenizer=actor_tok)
        out = reward.inference(handle, data)
        got = out.data[REWARDS].tolist()
        print("rewards:", got)
        assert torch.allclose(torch.tensor(got), torch.tensor(reward.scores(answers)))
        assert all(s < 0 for s in got)  # log-probabilities of class 1

        _, config = experiment_config(ClassifierPPO, sets=[f"classifier={path}"])
        graph = ClassifierPPO(config).graph()
        node = next(m for m in graph.mfcs if m.name == "rew_inf")
        print(graph.render("text"))
        assert node.interface == "classifier_reward:ClassifierReward"
        assert node.interface_args["path"] == path


if __name__ == "__main__":
    main()
