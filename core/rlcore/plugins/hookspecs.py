"""Hook specifications of the ``rlcore`` plugin project.

Registration hooks take no arguments and return a list of typed records
(see :mod:`rlcore.plugins.records`). Lifecycle hooks receive run events, so that
loggers and metric sinks are ordinary plugins. docs/hooks.md is generated from
these docstrings by ``rlcore docs hooks``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rlcore.plugins.markers import hookspec
from rlcore.plugins.records import (
    AdvantageEstimatorRecord,
    BackendRecord,
    DatasetRecord,
    EnvironmentRecord,
    ExperimentRecord,
    InterfaceRecord,
    LoggerRecord,
    ModelFamilyRecord,
    PolicyLossRecord,
    RewardFunctionRecord,
    RolloutEngineRecord,
)

if TYPE_CHECKING:
    import typer


@hookspec
def rlcore_datasets() -> list[DatasetRecord]:
    """Register datasets.

    Returns: a list of ``DatasetRecord``; ``impl`` builds the dataset from
    ``(config, tokenizer)`` and ``config`` names its config dataclass.

    Example::

        @rlcore.hookimpl
        def rlcore_datasets():
            return [DatasetRecord("my_qa", impl="my_pkg.data:MyQA",
                                  config="my_pkg.data:MyQAConfig", doc="Q/A pairs.")]
    """


@hookspec
def rlcore_model_families() -> list[ModelFamilyRecord]:
    """Register HF model families that convert to and from the core transformer.

    Returns: a list of ``ModelFamilyRecord``; ``impl`` points at a ``ModelFamily``
    object and ``hf_model_types`` lists the ``config.json`` ``model_type`` values it reads.

    Example::

        @rlcore.hookimpl
        def rlcore_model_families():
            return [ModelFamilyRecord("llama", impl="rlcore_plugin_llama.family:LLAMA",
                                      hf_model_types=("llama",), doc="Llama 2/3/3.1")]
    """


@hookspec
def rlcore_interfaces() -> list[InterfaceRecord]:
    """Register model interfaces (generate / inference / train_step implementations).

    Returns: a list of ``InterfaceRecord``; ``impl`` points at a ``ModelInterface`` subclass.

    Example::

        @rlcore.hookimpl
        def rlcore_interfaces():
            return [InterfaceRecord("sft", impl="my_pkg.sft:SFTInterface", doc="Next-token loss.")]
    """


@hookspec
def rlcore_experiments() -> list[ExperimentRecord]:
    """Register experiments that ``rlcore train NAME`` runs.

    Returns: a list of ``ExperimentRecord``; ``impl`` points at the experiment class and
    ``config`` at its config dataclass (importing the config must not import torch).

    Example::

        @rlcore.hookimpl
        def rlcore_experiments():
            return [ExperimentRecord("my-ppo", impl="my_pkg.exp:MyPPO",
                                     config="my_pkg.exp_config:MyPPOConfig", doc="PPO variant.")]
    """


@hookspec
def rlcore_reward_functions() -> list[RewardFunctionRecord]:
    """Register rule-based reward functions.

    Returns: a list of ``RewardFunctionRecord``; ``impl`` points at a callable
    ``fn(completions: list[str], samples: list[dict]) -> list[float]``.

    Example::

        @rlcore.hookimpl
        def rlcore_reward_functions():
            return [RewardFunctionRecord("exact_match", impl="my_pkg.rewards:exact_match")]
    """


@hookspec
def rlcore_backends() -> list[BackendRecord]:
    """Register model backends that wrap a role's model for training or inference.

    Returns: a list of ``BackendRecord``; ``impl`` points at a backend class, which
    satisfies ``rlcore.runtime.protocols.Backend`` (see docs/runtime.md).

    Example::

        @rlcore.hookimpl
        def rlcore_backends():
            return [BackendRecord("deepspeed", impl="rlcore.runtime.backends:DeepSpeedBackend")]
    """


@hookspec
def rlcore_advantage_estimators() -> list[AdvantageEstimatorRecord]:
    """Register advantage estimators (``adv.estimator`` of the RL experiments).

    Returns: a list of ``AdvantageEstimatorRecord``; ``impl`` maps an ``AdvantageInputs``
    to ``(advantages, returns)`` per action, and the record's fields say what it needs
    (a critic, a baseline, groups of responses) and where the KL penalty goes.

    Example::

        @rlcore.hookimpl
        def rlcore_advantage_estimators():
            return [AdvantageEstimatorRecord("median", impl="my_pkg.adv:median_baseline",
                                             grouped=True, min_samples=2,
                                             doc="reward minus the group's median")]
    """


@hookspec
def rlcore_policy_losses() -> list[PolicyLossRecord]:
    """Register policy losses (``policy.loss`` of the RL experiments).

    Returns: a list of ``PolicyLossRecord``; ``impl`` maps a ``PolicyLossInputs`` to
    ``{"loss": per-action loss, ...}`` (optionally ``clipped``, ``ratio``, ``approx_kl``).

    Example::

        @rlcore.hookimpl
        def rlcore_policy_losses():
            return [PolicyLossRecord("cispo", impl="my_pkg.loss:cispo",
                                     doc="clipped importance-sampling weights")]
    """


@hookspec
def rlcore_rollout_engines() -> list[RolloutEngineRecord]:
    """Register rollout engines (``rollout.engine`` of the RL experiments).

    Returns: a list of ``RolloutEngineRecord``; ``impl`` is built as ``impl(handle)`` from the
    actor's model handle and satisfies ``rlcore.rollout.engine.RolloutEngine`` (generate with
    log-probs and weight versions, update_weights, release/resume memory, close). Test it with
    ``rlcore.testing.rollout.RolloutEngineConformance``.

    Example::

        @rlcore.hookimpl
        def rlcore_rollout_engines():
            return [RolloutEngineRecord("vllm", impl="my_pkg.engine:VLLMEngine",
                                        doc="vLLM on the rollout GPUs")]
    """


@hookspec
def rlcore_loggers() -> list[LoggerRecord]:
    """Register metrics loggers (``run.loggers`` selects them; default ``[tensorboard]``).

    Returns: a list of ``LoggerRecord``; ``impl`` is built on rank 0 as ``impl(run_dir=...,
    config=..., start_step=...)`` (``config`` the resolved config as a plain dict,
    ``start_step`` 0 or the step a resumed run continues from), then called with
    ``log(step, metrics)`` after every step and ``close(summary)`` once at the end (also
    after a failure or an interrupt; ``summary["status"]`` says which). A logger that
    raises when built stops the run before training; one that raises later warns once and
    is dropped.

    Example::

        @rlcore.hookimpl
        def rlcore_loggers():
            return [LoggerRecord("csv", impl="my_pkg.csv_logger:CsvLogger",
                                 doc="one CSV row per step")]
    """


@hookspec
def rlcore_environments() -> list[EnvironmentRecord]:
    """Register environments for multi-turn episodes with tools (``env.name`` of grpo, ppo, remax).

    Returns: a list of ``EnvironmentRecord``; ``impl`` is a subclass of
    ``rlcore.agents.environment.Environment`` (``reset(sample)`` gives the first messages,
    ``step(assistant_message)`` gives observation messages, a reward, done and info; ``tools``
    declares OpenAI function schemas), built as ``impl(**env.args)`` once per episode. Test it
    with ``rlcore.testing.environments.EnvironmentConformance``; docs/agents.md explains the API.

    Example::

        @rlcore.hookimpl
        def rlcore_environments():
            return [EnvironmentRecord("units", impl="my_pkg.env:UnitsEnv",
                                      doc="unit conversion with a convert tool")]
    """


@hookspec
def rlcore_run_start(run_dir: str, config: dict[str, Any], rank: int, start_step: int) -> None:
    """Called once per rank when a run starts.

    Args: ``run_dir`` (where checkpoints and logs go), ``config`` (the resolved
    config as a plain dict), ``rank`` and ``start_step`` (0, or the step a resumed
    run continues from: a logger drops what it holds beyond it, so each step shows
    once). Returns nothing.

    Example::

        @rlcore.hookimpl
        def rlcore_run_start(run_dir, config, rank):
            if rank == 0:
                print("starting", config["experiment"])
    """


@hookspec
def rlcore_step_end(step: int, metrics: dict[str, float], rank: int) -> None:
    """Called after every training step with that step's scalar metrics.

    Args: ``step`` (1-based global step), ``metrics`` (name to float) and ``rank``.
    Returns nothing.

    Example::

        @rlcore.hookimpl
        def rlcore_step_end(step, metrics, rank):
            if rank == 0:
                my_logger.log(metrics, step=step)
    """


@hookspec
def rlcore_run_end(run_dir: str, summary: dict[str, Any], rank: int) -> None:
    """Called once per rank when a run ends, with the final summary.

    Args: ``run_dir``, ``summary`` (final metrics and status) and ``rank``. Returns nothing.

    Example::

        @rlcore.hookimpl
        def rlcore_run_end(run_dir, summary, rank):
            my_logger.close()
    """


@hookspec
def rlcore_cli_commands(app: typer.Typer) -> None:
    """Add subcommands to the ``rlcore`` command line.

    Args: ``app``, a ``typer.Typer`` to add commands to (``@app.command()``) or command
    groups (``app.add_typer(...)``). Returns nothing. A name the core or another plugin
    already uses is skipped with a warning, and a plugin whose hook raises only loses its
    own commands. Import heavy modules inside the command, so ``rlcore --help`` stays fast.

    Example::

        @rlcore.hookimpl
        def rlcore_cli_commands(app):
            @app.command()
            def hello(name: str = "world"):
                \"\"\"Say hello.\"\"\"
                print(f"hello {name}")
    """
