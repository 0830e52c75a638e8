"""``rlcore generate`` and ``rlcore chat``: the core sampler on a checkpoint or HF directory."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from rlcore.cli.model_source import MODEL_HELP, ROLE_HELP, load, resolve, say_source
from rlcore.errors import ConfigError, DataError


def _sampling(max_new_tokens: int, temperature: float, top_p: float, top_k: int,
              model: Any, tokenizer: Any) -> Any:
    from rlcore.models.generation import GenerationConfig
    from rlcore.scoring import eos_ids

    return GenerationConfig(max_new_tokens=max_new_tokens, greedy=temperature == 0,
                            temperature=temperature or 1.0, top_p=top_p, top_k=top_k,
                            eos_token_ids=eos_ids(model, tokenizer)).validate()


MAX_NEW = typer.Option(64, "--max-new-tokens", min=1, help="Generation budget per reply.")
TOP_P = typer.Option(1.0, "--top-p", help="Nucleus sampling (1: off).")
TOP_K = typer.Option(0, "--top-k", min=0, help="Top-k sampling (0: off).")
SEED = typer.Option(0, "--seed", help="Seed of the sampling noise.")
ROLE = typer.Option("actor", "--role", help=ROLE_HELP)


def generate(
    model: Path = typer.Argument(..., help=MODEL_HELP),
    prompts: list[str] = typer.Argument(None, help="Prompts (or use --file)."),
    file: Path | None = typer.Option(None, "--file", "-f", help="Prompts: a .jsonl with a `prompt` field, else one per line."),
    chat: bool = typer.Option(False, "--chat", help="Send each prompt as a user message through the chat template."),
    samples: int = typer.Option(1, "--samples", "-n", min=1, help="Completions per prompt."),
    max_new_tokens: int = MAX_NEW,
    temperature: float = typer.Option(0.0, "--temperature", "-t", min=0.0, help="0: greedy; > 0: sample."),
    top_p: float = TOP_P,
    top_k: int = TOP_K,
    seed: int = SEED,
    role: str = ROLE,
    as_json: bool = typer.Option(False, "--json", help="One JSON line per completion: prompt, sample, completion."),
) -> None:
    """Complete prompts with a trained role or an HF model (rlcore's KV-cache sampler).

    Examples:

    * `rlcore generate runs/sft "12+30="`
    * `rlcore generate runs/grpo --file prompts.txt --samples 4 --temperature 1 --json`
    * `rlcore generate /models/my-llama "Why is the sky blue?" --chat --max-new-tokens 200`
    """
    import torch

    from rlcore.data.tokenizer import encode, render_chat
    from rlcore.models.generation import generate as sample

    texts = list(prompts or []) + (_read_prompts(file) if file else [])
    if not texts:
        raise ConfigError("no prompts: give them as arguments (rlcore generate MODEL 'text') or "
                          "with --file prompts.txt")
    source = resolve(model, role)
    say_source(source)
    module, tokenizer, _ = load(source)
    if chat:
        _need_template(tokenizer, source.model_dir)
    ids = [encode(tokenizer, render_chat(tokenizer, [{"role": "user", "content": t}], True), False)
           if chat else encode(tokenizer, t, True) for t in texts]
    gconfig = _sampling(max_new_tokens, temperature, top_p, top_k, module, tokenizer)
    out = sample(module, [p for p in ids for _ in range(samples)], gconfig,
                 generator=torch.Generator().manual_seed(seed))
    replies = tokenizer.batch_decode([t.tolist() for t in out.tokens], skip_special_tokens=True)
    for i, reply in enumerate(replies):
        prompt = texts[i // samples]
        if as_json:
            typer.echo(json.dumps({"prompt": prompt, "sample": i % samples, "completion": reply}))
        else:
            typer.echo(reply if len(texts) == 1 and samples == 1 else f"[{i // samples}.{i % samples}] {prompt!r} -> {reply!r}")


def chat(
    model: Path = typer.Argument(..., help=MODEL_HELP),
    system: str | None = typer.Option(None, "--system", help="A system message first."),
    max_new_tokens: int = typer.Option(256, "--max-new-tokens", min=1, help="Generation budget per reply."),
    temperature: float = typer.Option(0.7, "--temperature", "-t", min=0.0, help="0: greedy; > 0: sample."),
    top_p: float = TOP_P,
    top_k: int = TOP_K,
    seed: int = SEED,
    role: str = ROLE,
) -> None:
    """Talk to a model through its chat template: one user message per line of stdin.

    `/reset` forgets the conversation, `/exit` (or end of input) quits. Each reply is printed
    on its own line, so a file or pipe works as well as a terminal:

    * `rlcore chat runs/sft`
    * `printf '12+30=\\n/reset\\n7+8=\\n' | rlcore chat runs/sft --temperature 0`
    """
    import torch

    from rlcore.data.tokenizer import encode, render_chat
    from rlcore.models.generation import generate as sample

    source = resolve(model, role)
    say_source(source)
    module, tokenizer, _ = load(source)
    _need_template(tokenizer, source.model_dir)
    gconfig = _sampling(max_new_tokens, temperature, top_p, top_k, module, tokenizer)
    generator = torch.Generator().manual_seed(seed)
    start = [{"role": "system", "content": system}] if system else []
    messages = list(start)
    interactive = sys.stdin.isatty()
    if interactive:
        typer.echo("chat: /reset forgets, /exit or Ctrl-D quits", err=True)
    while True:
        if interactive:
            typer.echo("you> ", nl=False, err=True)
        line = sys.stdin.readline()
        if not line or line.strip() == "/exit":
            break
        if line.strip() == "/reset":
            messages = list(start)
            typer.echo("(conversation reset)", err=True)
            continue
        messages.append({"role": "user", "content": line.rstrip("\n")})
        ids = encode(tokenizer, render_chat(tokenizer, messages, True), False)
        out = sample(module, [ids], gconfig, generator=generator)
        reply = tokenizer.decode(out.tokens[0].tolist(), skip_special_tokens=True)
        messages.append({"role": "assistant", "content": reply})
        typer.echo(reply)


def _need_template(tokenizer: Any, where: Path) -> None:
    from rlcore.data.tokenizer import has_chat_template

    if not has_chat_template(tokenizer):
        raise ConfigError(f"the tokenizer in {where} has no chat template; use `rlcore generate` "
                          "without --chat, or add a chat_template to its tokenizer_config.json")


def _read_prompts(file: Path) -> list[str]:
    """Prompts of a .jsonl file (field ``prompt``) or of a text file (one per non-empty line)."""
    if not file.is_file():
        raise DataError(f"--file {file}: no such file; give a text file (one prompt per line) or "
                        "a .jsonl with a prompt field")
    lines = [line for line in file.read_text().splitlines() if line.strip()]
    if file.suffix != ".jsonl":
        return lines
    prompts = []
    for n, line in enumerate(lines, 1):
        try:
            prompts.append(str(json.loads(line)["prompt"]))
        except (ValueError, KeyError, TypeError):
            raise DataError(f"{file}:{n}: expected a JSON object with a 'prompt' field") from None
    return prompts


def register(app: typer.Typer) -> None:
    """Attach ``rlcore generate`` and ``rlcore chat`` to the root app."""
    app.command("generate")(generate)
    app.command("chat")(chat)
