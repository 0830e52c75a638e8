"""``rlcore train`` and ``rlcore show``: resolve an experiment and its typed config, then run or render it."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from rlcore.config.profiles import PROFILE_HELP

console = Console()

SET_HELP = "Override one config key, e.g. `--set train.optimizer.lr=1e-5`. Repeatable; applied in order after --config."


class Profile(StrEnum):
    """``--profile``: whose defaults fill the keys the user leaves alone."""

    auto = "auto"
    real = "real"
    tiny = "tiny"


def resolve_experiment(name: str, config_file: Path | None, sets: list[str],
                       profile: str = "auto") -> tuple[Any, Any]:
    """The experiment record and its validated config: defaults < profile < YAML < each --set."""
    from rlcore.config import experiment_config
    from rlcore.errors import RlcoreError, UnknownItemError
    from rlcore.first_party import install_hint
    from rlcore.plugins import registry

    try:
        record = registry.get("experiments", name)
    except UnknownItemError as err:
        hint = install_hint("experiments")
        if not hint:
            raise
        raise UnknownItemError(f"{err} {hint}") from err
    if not record.config:
        raise RlcoreError(f"experiment {name!r} ({registry.provider('experiments', name)}) declares no config class")
    return record, experiment_config(name, config_file=config_file, sets=sets,
                                     profile=str(profile))[1]


def train(
    experiment: str | None = typer.Argument(None, show_default=False, help=(
        "Experiment to run; without one, the experiments are listed.")),
    config: Path | None = typer.Option(None, "--config", "-c", help="YAML file of config values (applied over the defaults)."),
    sets: list[str] = typer.Option([], "--set", "-s", help=SET_HELP),
    profile: Profile = typer.Option(Profile.auto, "--profile", help=PROFILE_HELP),
    print_config: bool = typer.Option(False, "--print-config", help="Print the resolved config as YAML and exit."),
    dry_run: bool = typer.Option(False, "--dry-run", help=(
        "Check what a run would reject (config ranges, every data and eval file, model "
        "directories, dataflow graph), print the graph and exit (status 2 on an error); "
        "starts and writes nothing.")),
    nproc: int = typer.Option(1, "--nproc", min=1, help="Processes (ranks) on this machine (per node)."),
    nnodes: int | None = typer.Option(None, "--nnodes", min=1, help="Machines in a multi-node run; start `rlcore train` on each with --node-rank and --master-addr (or --rdzv-endpoint)."),
    node_rank: int | None = typer.Option(None, "--node-rank", min=0, help="This machine's rank, 0..nnodes-1; node 0 hosts the rendezvous."),
    master_addr: str | None = typer.Option(None, "--master-addr", help="Address of node 0, where the rendezvous listens (only there)."),
    master_port: int | None = typer.Option(None, "--master-port", min=1, max=65535, help="Port of the rendezvous on node 0 (default 29500)."),
    rdzv_endpoint: str | None = typer.Option(None, "--rdzv-endpoint", help="HOST:PORT of a c10d rendezvous instead of --node-rank/--master-addr; the node that owns HOST hosts it."),
    hostfile: Path | None = typer.Option(None, "--hostfile", help="DeepSpeed hostfile for a multi-node run (DeepSpeed's launcher, ssh/pdsh)."),
    run_dir: Path | None = typer.Option(None, "--run-dir", help="Where checkpoints and logs go (default: runs/EXPERIMENT)."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Continue from the latest checkpoint in the run dir, if any."),
) -> None:
    """Train an experiment.

    With no options, the built-in experiments train a tiny model on the embedded
    task, on CPU, with no downloads. Examples:

    * `rlcore train sft`
    * `rlcore train dpo --set train.optimizer.lr=5e-4 --set run.max_steps=50`
    * `rlcore train sft --config my.yaml --print-config`
    * `rlcore train sft --set dataset.path=data.jsonl --dry-run`
    * `rlcore train grpo --set actor.path=my-model --set dataset.path=train.jsonl` (real-model
      defaults: `--profile real`, the default when actor.path is set)
    * `rlcore train sft --nproc 2`
    * `rlcore train sft --nnodes 2 --node-rank 0 --master-addr node0 --nproc 8` (on each node)
    * `srun rlcore train sft --nproc 8` (Slurm: one task per node)

    SIGTERM or Ctrl-C saves a checkpoint at the next step boundary and exits with
    143 / 130; the same command resumes.
    """
    from rlcore.config import to_yaml
    from rlcore.config.profiles import describe

    if experiment is None:
        from rlcore.cli.plugins_cmd import list_items

        list_items("experiments")
        typer.echo("Train one with `rlcore train NAME`; `rlcore info experiments NAME` shows its "
                   "config.")
        return
    record, cfg = resolve_experiment(experiment, config, sets, profile)
    typer.echo(describe(cfg), err=True)  # stderr: --print-config's YAML stays clean
    if print_config:
        typer.echo(to_yaml(cfg), nl=False)
        return
    if dry_run:
        check_run(record.name, cfg, world=nproc * (nnodes or 1))
        return
    from rlcore.launch.launcher import launch
    from rlcore.launch.rendezvous import from_options

    rdzv = from_options(nnodes, node_rank, master_addr, master_port, rdzv_endpoint)
    if rdzv.source.startswith("Slurm"):
        typer.echo(f"{rdzv.source}: node {rdzv.node_rank} of {rdzv.nnodes}, rendezvous "
                   f"{rdzv.endpoint}", err=True)
    run_dir = run_dir or Path("runs") / record.name
    summary = launch(
        experiment=record.name,
        config=cfg,
        nproc=nproc,
        hostfile=hostfile,
        run_dir=run_dir,
        resume=resume,
        rdzv=rdzv,
    )
    if summary is not None:
        report_outputs(run_dir)


def check_run(experiment: str, cfg: Any, world: int = 1) -> None:
    """``--dry-run``: the experiment's checks (data, models, graph) as ``world`` ranks would
    batch the data, then its graph and a verdict."""
    from rlcore.runtime import distributed
    from rlcore.runtime.experiment import build_experiment

    exp = build_experiment(experiment, cfg)
    distributed.PLANNED_WORLD[0] = world
    try:
        exp.check()
    finally:
        distributed.PLANNED_WORLD[0] = 1
    typer.echo(exp.graph().render("text"))
    typer.echo(f"dry run: {experiment} would start (config, data, model directories and graph "
               "checked; nothing was started or written)")


def report_outputs(run_dir: Path) -> None:
    """Say where the run left its metrics and its newest checkpoint."""
    from rlcore.models.peft_io import is_adapter_dir
    from rlcore.runtime.checkpoint import CheckpointManager

    typer.echo(f"metrics: {run_dir / 'metrics.jsonl'}")  # plain: paths must not wrap
    latest = CheckpointManager(run_dir).latest()
    if latest is not None:
        roles = sorted(p.name for p in latest.iterdir() if (p / "config.json").is_file())
        adapters = sorted(p.name for p in latest.iterdir() if is_adapter_dir(p))
        also = f"; LoRA adapter dirs (PEFT): {', '.join(adapters)}" if adapters else ""
        typer.echo(f"checkpoint: {latest} (HF model dirs: {', '.join(roles) or 'none'}{also})")


class GraphFormat(StrEnum):
    """How ``rlcore show`` renders the dataflow graph."""

    text = "text"
    mermaid = "mermaid"
    dot = "dot"


def show(
    experiment: str = typer.Argument(..., help="Experiment to show."),
    config: Path | None = typer.Option(None, "--config", "-c", help="YAML file of config values."),
    sets: list[str] = typer.Option([], "--set", "-s", help=SET_HELP),
    profile: Profile = typer.Option(Profile.auto, "--profile", help=PROFILE_HELP),
    fmt: GraphFormat = typer.Option(GraphFormat.text, "--format", "-f", help="text (graph + resolved config), mermaid or dot."),
) -> None:
    """Print an experiment's dataflow graph of model function calls and its resolved config."""
    from rlcore.config import to_yaml
    from rlcore.dfg.render import render
    from rlcore.runtime.experiment import build_experiment

    record, cfg = resolve_experiment(experiment, config, sets, profile)
    graph = build_experiment(record.name, cfg).graph()
    if fmt is GraphFormat.text:
        console.print(render(graph, "text"))
        console.rule("resolved config")
        console.print(to_yaml(cfg), highlight=False, markup=False)
    else:
        typer.echo(render(graph, fmt.value))


def register(app: typer.Typer) -> None:
    """Attach these commands to the root app."""
    app.command("train")(train)
    app.command("show")(show)
