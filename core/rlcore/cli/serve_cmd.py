"""``rlcore serve``: an OpenAI-compatible chat endpoint over the core sampler, for agents."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from rlcore.cli.model_source import MODEL_HELP, ROLE_HELP, load, resolve, say_source
from rlcore.errors import ConfigError


def serve(
    model: Path = typer.Argument(..., help=MODEL_HELP),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="Port (0: any free one)."),
    max_tokens: int = typer.Option(256, "--max-tokens", min=1, help="Completion budget of a request that sets no max_tokens."),
    tool_format: str = typer.Option("auto", "--tool-format", help="How the model writes tool calls: auto, hermes or llama3_json."),
    role: str = typer.Option("actor", "--role", help=ROLE_HELP),
    verbose: bool = typer.Option(False, "--verbose", help="Log every request on stderr."),
) -> None:
    """Serve a model at POST /v1/chat/completions (and GET /v1/models), OpenAI-style.

    Responses carry the token ids and sampling log-probs too, so an agent written against the
    OpenAI API collects episodes rlcore trains on (docs/serve.md):

    * `rlcore serve runs/grpo --port 8000`
    * `python -m rlcore_contrib_http_agent --url http://127.0.0.1:8000 --tasks 8 --out episodes.jsonl`
    """
    from rlcore.agents.openai_server import http_server

    chat = chat_server(model, role, max_tokens, tool_format)
    server = http_server(chat, host, port, verbose)
    typer.echo(f"serving {chat.name} at http://{host}:{server.server_address[1]}/v1 (Ctrl-C stops)",
               err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        typer.echo("stopped", err=True)
    finally:
        server.server_close()


def chat_server(model: Path, role: str = "actor", max_tokens: int = 256,
                tool_format: str = "auto") -> Any:
    """The :class:`~rlcore.agents.openai_server.ChatServer` of MODEL (a run, checkpoint or HF
    directory) on the core sampler: weight version 0, on the GPU when there is one."""
    import torch

    from rlcore.agents.openai_server import ChatServer
    from rlcore.data.tokenizer import has_chat_template
    from rlcore.rollout.local import LocalEngine
    from rlcore.runtime.backends import FrozenModel
    from rlcore.runtime.interface import ModelHandle
    from rlcore.runtime.options import InferenceOptions
    from rlcore.scoring import eos_ids

    source = resolve(model, role)
    say_source(source)
    module, tokenizer, _ = load(source)
    if not has_chat_template(tokenizer):
        raise ConfigError(f"the tokenizer in {source.model_dir} has no chat template, which "
                          "rlcore serve renders messages with; add a chat_template to its "
                          "tokenizer_config.json")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    frozen = FrozenModel(module, InferenceOptions(), device)
    engine = LocalEngine(ModelHandle(role, frozen.module, frozen, tokenizer))
    ckpt = source.checkpoint  # RUN/checkpoints/step-N: named RUN/step-N
    name = f"{ckpt.parent.parent.name}/{ckpt.name}" if ckpt else source.model_dir.name
    return ChatServer(engine, tokenizer, name=name, eos_ids=eos_ids(module, tokenizer),
                      max_positions=module.config.max_positions, max_tokens=max_tokens,
                      tool_format=tool_format)


def register(app: typer.Typer) -> None:
    """Attach ``rlcore serve`` to the root app."""
    app.command("serve")(serve)
