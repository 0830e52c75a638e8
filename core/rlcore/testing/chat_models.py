"""A tiny model that has learned a few conversations, saved as an HF directory with the
embedded tokenizer (about 10 s on one CPU core for 200 steps; a random model never writes a
tool call), and ``rlcore serve`` on it in a subprocess: what agent tests talk to.

    from rlcore.testing.chat_models import save_chat_model, served
    model = save_chat_model(tmp_path / "model", [env.demonstration(row) for row in rows])
    with served(model) as url:  # http://127.0.0.1:PORT
        ...
"""

from __future__ import annotations

import os
import random
import select
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def save_chat_model(path: str | Path, chats: list[list[dict[str, Any]]], *, steps: int = 200,
                    batch_size: int = 16, lr: float = 3e-3, hidden_size: int = 64,
                    max_positions: int = 256, seed: int = 0) -> Path:
    """Train :func:`~rlcore.testing.interfaces.tiny_model` on ``chats`` (rendered by the
    embedded chat template, every token a target) and save it with its tokenizer in ``path``
    (as a Llama: the llama family plugin must be installed)."""
    import torch

    from rlcore.data.embedded import embedded_tokenizer, save_embedded_tokenizer
    from rlcore.models.hf_io import save_pretrained
    from rlcore.testing.interfaces import tiny_model

    tok = embedded_tokenizer()
    model = tiny_model(tok, hidden_size=hidden_size, max_positions=max_positions, seed=seed)
    rows = [tok(tok.apply_chat_template(c, tokenize=False), add_special_tokens=False)["input_ids"]
            for c in chats]
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    rng = random.Random(seed)
    for _ in range(steps):
        batch = [rows[rng.randrange(len(rows))] for _ in range(batch_size)]
        ids = torch.tensor([t for r in batch for t in r])
        cu = torch.tensor([0, *(len(r) for r in batch)]).cumsum(0)
        last = torch.zeros(len(ids), dtype=torch.bool)
        last[cu[1:] - 1] = True  # the last token of a row predicts nothing
        logits = model(ids, cu)
        loss = torch.nn.functional.cross_entropy(logits[~last], torch.roll(ids, -1)[~last])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    path = Path(path)
    save_pretrained(model.eval(), "llama", path, tokenizer=tok)
    save_embedded_tokenizer(path)
    return path


@contextmanager
def served(model: str | Path, *args: str, timeout: float = 120.0) -> Iterator[str]:
    """``rlcore serve MODEL --port 0 ARGS`` in a subprocess (one torch thread) until the block
    ends; yields its base URL (``http://HOST:PORT``, without ``/v1``)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "from rlcore.cli.app import main; main()", "serve", str(model),
         "--port", "0", *args], stderr=subprocess.PIPE, text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        lines, deadline = [], time.monotonic() + timeout
        while not (lines and lines[-1].startswith("serving ")) and time.monotonic() < deadline:
            if select.select([proc.stderr], [], [], 1)[0]:
                lines.append(proc.stderr.readline())
                if not lines[-1]:
                    break
        if not (lines and lines[-1].startswith("serving ")):
            raise RuntimeError("rlcore serve did not start:\n" + "".join(lines))
        threading.Thread(target=proc.stderr.read, daemon=True).start()  # the pipe never fills
        yield lines[-1].split(" at ", 1)[1].split()[0].removesuffix("/v1")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
