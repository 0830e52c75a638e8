"""Write a tiny random Llama as a local HF model directory, saved by transformers itself, with the
embedded task's tokenizer: the `actor.path` of the install check (`nox -s user_install`).

    python scripts/tiny_llama.py DIR
"""

from __future__ import annotations

import sys

from transformers import LlamaConfig, LlamaForCausalLM

from rlcore.data.embedded import embedded_tokenizer, save_embedded_tokenizer


def main(out: str) -> None:
    """Save the model and tokenizer into ``out``."""
    vocab = len(embedded_tokenizer())
    config = LlamaConfig(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)
    LlamaForCausalLM(config).save_pretrained(out)
    save_embedded_tokenizer(out)
    print(f"tiny Llama (vocab {vocab}) written to {out}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
