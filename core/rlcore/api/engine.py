"""``Engine``: user modules (or a registered experiment) run by rlcore's own runtime.

An engine over modules is an :class:`~rlcore.runtime.experiment.Experiment`
whose roles are the modules, whose MFCs come from a traced flow (or from the
modules' declared keys), and whose interfaces are :class:`ModuleInterface`
adapters. ``learn()`` hands it to :func:`rlcore.runtime.experiment.run`, so
checkpoints, resume, metrics, lifecycle hooks and data-parallel splitting are
exactly those of ``rlcore train``.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rlcore.api.evaluator import Evaluator
from rlcore.api.module import Module
from rlcore.errors import ConfigError, DataError, RlcoreError
from rlcore.runtime.experiment import Experiment
from rlcore.runtime.options import RunOptions
from rlcore.runtime.roles import RoleSpec

if TYPE_CHECKING:
    from rlcore.dfg import MFC, DataflowGraph


@dataclass
class EngineConfig:
    """The config an engine over modules records (metrics.jsonl, checkpoints, hooks)."""

    run: RunOptions = field(default_factory=RunOptions)
    modules: dict[str, dict[str, Any]] = field(default_factory=dict)
    sync: dict[str, str] = field(default_factory=dict)
    rollout_procs: int = 0  # rollout worker processes that learn() starts (RLHFEngine)


class ModuleExperiment(Experiment):
    """The experiment an :class:`Engine` over modules runs (one per ``learn``/``graph``)."""

    name = "api"
    config_class = EngineConfig

    def __init__(self, engine: Engine):
        super().__init__(engine.config)
        self.engine = engine

    def roles(self) -> list[RoleSpec]:
        return [RoleSpec(m.name, trainable=m.trainable, options=m.options,
                         backend=None if m.has_model else "none", lora=m.lora)
                for m in self.engine.modules.values()]

    def mfcs(self) -> list[MFC]:
        return self.engine._trace()[0]

    def dataset_keys(self) -> list[str] | None:
        return self.engine._dataset_keys

    def graph(self) -> DataflowGraph:
        return self.engine._trace()[1]

    def build_tokenizer(self) -> Any:
        return self.engine._tokenizer_if_loaded()

    def build_dataset(self, tokenizer: Any) -> Any:
        if self.engine.dataset is None:
            raise ConfigError("the engine has no data; call engine.set_dataset(items) first")
        return self.engine.dataset

    def build_model(self, role: RoleSpec, tokenizer: Any) -> tuple[Any, str | None]:
        m = self.engine.modules[role.name]
        return m._ensure_setup(), m.family

    def interface(self, mfc: MFC) -> Any:
        from rlcore.api.adapter import ModuleInterface

        return ModuleInterface(self.engine.modules[mfc.role], mfc.interface_args["method"])

    def evaluate(self, step: int, handles: dict[str, Any]) -> dict[str, float]:
        ev = self.engine.evaluator
        return ev.evaluate(handles) if ev is not None else {}

    def weight_syncs(self) -> dict[str, str]:
        return dict(self.engine.config.sync)

    def rollout_processes(self) -> int:
        return self.engine.config.rollout_procs


def _run_options(run: RunOptions | None, kwargs: dict[str, Any]) -> RunOptions:
    from rlcore.api.context import current

    if run is None:
        ctx = current()
        run = RunOptions(seed=ctx.seed) if ctx is not None else RunOptions()
    else:
        run = copy.deepcopy(run)
    names = [f.name for f in dataclasses.fields(RunOptions)]
    for key, value in kwargs.items():
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; run options are {names}"
            raise ConfigError(f"Engine(...): unknown option {key!r}{hint}")
        setattr(run, key, value)
    return run


def _check_syncs(sync: Any, modules: dict[str, Module]) -> dict[str, str]:
    """``sync`` as ``{trained module: frozen module}``, each name checked."""
    if sync is None:
        return {}
    if not isinstance(sync, dict):
        raise ConfigError(f"Engine(sync=...): expected a dict {{trained module: frozen module}}, "
                          f"got {sync!r}")
    for src, dst in sync.items():
        for n in (src, dst):
            if n not in modules:
                raise ConfigError(f"Engine(sync={{{src!r}: {dst!r}}}): {n!r} is not a module of "
                                  f"the engine (modules: {sorted(modules)})")
        if not modules[src].trainable:
            raise ConfigError(f"Engine(sync=...): {src!r} defines no train_step, so it has no "
                              f"updates for {dst!r} to follow; the key is the trained module")
        if modules[dst].trainable:
            raise ConfigError(f"Engine(sync=...): {dst!r} defines train_step; the module whose "
                              "weights are overwritten after every step must be frozen")
    followers = list(sync.values())
    twice = sorted({d for d in followers if followers.count(d) > 1})
    if twice:
        raise ConfigError(f"Engine(sync=...): {twice[0]!r} follows several trained modules; "
                          "a frozen module follows one")
    return dict(sync)


class Engine:
    """Train user modules with rlcore's runtime: ``Engine(policy, reference, ..., flow=fn)``.

    ``flow`` is a function of one batch that calls the modules (see rlcore.api.flow);
    without it every module's ``forward_step`` and ``train_step`` run, ordered by
    their keys. ``run`` (a :class:`RunOptions`) or its fields as keywords
    (``max_steps=20, batch_size=8``) set the run. ``run_dir`` (default
    ``runs/<name>``) holds metrics and checkpoints. ``tokenizer`` is a tokenizer or
    a local directory (default: the embedded task's). ``sync`` maps a trained
    module to a frozen one whose weights follow it after every step
    (``{"ppo_policy": "policy"}``, ChatLearn's trainer/inference model pairs).
    """

    def __init__(
        self,
        *modules: Module,
        flow: Callable[[Any], Any] | None = None,
        run: RunOptions | None = None,
        run_dir: str | os.PathLike | None = None,
        tokenizer: Any = None,
        name: str = "engine",
        sync: dict[str, str] | None = None,
        **run_options: Any,
    ):
        if not modules:
            raise ConfigError("Engine(...) needs at least one module (or use "
                              "Engine.from_experiment(name))")
        by_name: dict[str, Module] = {}
        for m in modules:
            if not isinstance(m, Module):
                raise ConfigError(f"Engine(...) takes rlcore.api.Module objects, got {m!r}")
            if m.name in by_name:
                raise ConfigError(f"two modules are named {m.name!r}; module names are roles "
                                  "and must be unique")
            by_name[m.name] = m
        config = EngineConfig(_run_options(run, run_options), {
            m.name: {
                "class": f"{type(m).__module__}.{type(m).__qualname__}",
                "trainable": m.trainable,
                "input_keys": list(m.input_keys),
                "output_keys": list(m.output_keys),
                "train_keys": list(m.train_keys or ()),
                "options": m.options,
            }
            for m in by_name.values()
        }, _check_syncs(sync, by_name))
        self._init_engine(name, run_dir, config, modules=by_name, flow=flow, tokenizer=tokenizer)

    def _init_engine(
        self,
        name: str,
        run_dir: str | os.PathLike | None,
        config: Any,
        *,
        modules: dict[str, Module] | None = None,
        flow: Callable[[Any], Any] | None = None,
        tokenizer: Any = None,
    ) -> None:
        """The state every engine holds; the constructors of all engines end here."""
        self.name = name
        self.run_dir = Path(run_dir) if run_dir is not None else Path("runs") / name
        self.config = config
        self.modules: dict[str, Module] = dict(modules or {})
        for m in self.modules.values():
            m._owner = self
        self.flow = flow
        self._tokenizer_arg = tokenizer
        self._tokenizer: Any = tokenizer if not isinstance(tokenizer, str | os.PathLike) else None
        self.dataset: Any = None
        self._dataset_keys: list[str] | None = None
        self.evaluator: Evaluator | None = None
        self.summary: dict[str, Any] | None = None

    # ------------------------------------------------------------------ construction helpers

    @classmethod
    def from_experiment(
        cls,
        experiment: str | type,
        config: Any = None,
        overrides: Iterable[str] = (),
        config_file: str | os.PathLike | None = None,
        run_dir: str | os.PathLike | None = None,
        nproc: int = 1,
    ) -> ExperimentEngine:
        """An engine over a registered experiment (or ``module:Class``), like ``rlcore train``.

        The config is built as the CLI builds it: ``config`` (or the experiment's
        defaults), then ``config_file``, then each ``overrides`` item
        (``"run.max_steps=20"``), validated with the same errors.
        """
        return ExperimentEngine(experiment, config, overrides, config_file, run_dir, nproc)

    # ------------------------------------------------------------------ tokenizer

    @property
    def tokenizer(self) -> Any:
        """The tokenizer modules and string items use (loaded on first use)."""
        if self._tokenizer is None:
            from rlcore.data.tokenizer import load_tokenizer

            path = self._tokenizer_arg
            self._tokenizer = load_tokenizer(str(path) if path is not None else None)
        return self._tokenizer

    def _tokenizer_if_loaded(self) -> Any:
        return self._tokenizer

    # ------------------------------------------------------------------ data and evaluation

    def set_dataset(self, items: Any) -> Engine:
        """The training data: a list of strings/dicts (see ItemsDataset), or an rlcore dataset.

        When a module overrides ``build_dataset``, the first such module builds it from
        ``items``.
        """
        self.dataset = self._make_dataset(items, self.modules.values())
        self._dataset_keys = sorted(self.dataset.collate([self.dataset[0]]).keys)
        return self

    def _make_dataset(self, items: Any, modules: Iterable[Module]) -> Any:
        from rlcore.api.dataset import ItemsDataset

        builder = next((m for m in modules if m.builds_dataset), None)
        if builder is None and modules is not self.modules.values():
            builder = next((m for m in self.modules.values() if m.builds_dataset), None)
        data = builder.build_dataset(items) if builder is not None else items
        if data is None or data is NotImplemented:
            raise DataError(f"{type(builder).__name__}.build_dataset returned {data!r}")
        if hasattr(data, "collate") and hasattr(data, "__getitem__"):
            if len(data) == 0:
                raise DataError("the dataset is empty")
            return data
        return ItemsDataset(data, lambda: self.tokenizer)

    def set_evaluator(self, evaluator: Evaluator, every: int) -> Engine:
        """Run ``evaluator`` every ``every`` training steps (metrics logged as ``eval/...``)."""
        if not isinstance(evaluator, Evaluator):
            raise ConfigError(f"set_evaluator takes an Evaluator, got {evaluator!r}")
        if not isinstance(every, int) or every < 1:
            raise ConfigError(f"set_evaluator(every=...): expected an integer >= 1, got {every!r}")
        evaluator._attach(self)
        self.evaluator = evaluator
        self.config.run.eval_every = every
        return self

    # ------------------------------------------------------------------ graph and run

    def _trace(self) -> tuple[list[MFC], DataflowGraph]:
        from rlcore.api.flow import default_flow, trace

        if self.flow is not None:
            return trace(self.flow, self._dataset_keys, modules=self.modules)
        return default_flow(list(self.modules.values()), self._dataset_keys)

    def experiment(self) -> Experiment:
        """The :class:`Experiment` that ``learn`` runs."""
        return ModuleExperiment(self)

    def graph(self) -> DataflowGraph:
        """The validated dataflow graph (checked against the dataset once one is set)."""
        return self.experiment().graph()

    def render(self, fmt: str = "text") -> str:
        """The graph as ``text``, ``mermaid`` or ``dot`` (what ``rlcore show`` prints)."""
        return self.graph().render(fmt)

    def learn(self, resume: bool | str | os.PathLike = True) -> dict[str, Any]:
        """Train on this process (and every rank of a torchrun group); return the run summary.

        ``resume=True`` continues from the newest checkpoint in ``run_dir`` if there
        is one; a path resumes from that checkpoint; False starts over.
        """
        from rlcore.api.context import current, init
        from rlcore.launch.rollout_procs import environment, rollout_workers
        from rlcore.runtime.loop import run

        if current() is None:
            init(seed=self.config.run.seed)
        exp = self.experiment()
        graph = exp.graph()
        if self.evaluator is not None:
            self.evaluator.check(graph.roles)
        procs = exp.rollout_processes()
        if procs and int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise ConfigError("rollout_procs starts rollout processes beside one trainer process; "
                              "run this script without torchrun")
        with rollout_workers(procs, self.run_dir / "logs") as env, environment(env):
            self.summary = run(exp, self.config, self.run_dir, resume=resume)
        return self.summary

    def __repr__(self) -> str:
        return f"Engine({', '.join(map(repr, self.modules.values()))}, run_dir={str(self.run_dir)!r})"


class ExperimentEngine(Engine):
    """An engine over an experiment plugin (``Engine.from_experiment``)."""

    def __init__(self, experiment: str | type, config: Any, overrides: Iterable[str],
                 config_file: str | os.PathLike | None, run_dir: str | os.PathLike | None,
                 nproc: int):
        from rlcore.config import experiment_config

        if not isinstance(nproc, int) or nproc < 1:
            raise ConfigError(f"nproc: expected an integer >= 1, got {nproc!r}")
        name, resolved = experiment_config(experiment, base=config, config_file=config_file,
                                           sets=overrides)
        self._init_engine(name, run_dir, resolved)
        self.experiment_ref = experiment
        self.nproc = nproc

    def experiment(self) -> Experiment:
        from rlcore.runtime.experiment import build_experiment

        exp = build_experiment(self.experiment_ref, self.config)
        if self.dataset is not None:
            dataset = self.dataset
            exp.build_dataset = lambda tokenizer: dataset  # type: ignore[method-assign]
        return exp

    def graph(self) -> DataflowGraph:
        return self.experiment().graph()

    def set_dataset(self, items: Any) -> ExperimentEngine:
        """Rows in the experiment dataset's own form (written as JSONL and read by its
        dataset plugin, with its checks), or an rlcore dataset object."""
        if hasattr(items, "collate") and hasattr(items, "__getitem__"):
            self.dataset = items
            return self
        ds = getattr(self.config, "dataset", None)
        if ds is None or not hasattr(ds, "path"):
            raise ConfigError(f"experiment {self.name!r} has no dataset.path in its config; "
                              "pass a dataset object instead of rows")
        rows = [{"prompt": r} if isinstance(r, str) else r for r in items]
        if not rows:
            raise DataError("set_dataset got no rows; give at least one")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        path = self.run_dir / "dataset.jsonl"
        tmp = path.with_suffix(".jsonl.tmp")
        try:
            tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
        except TypeError as exc:
            raise DataError(f"set_dataset rows must be JSON-serialisable dicts: {exc}") from None
        os.replace(tmp, path)
        ds.path = str(path.resolve())
        self.dataset = None
        return self

    def set_evaluator(self, evaluator: Evaluator, every: int) -> ExperimentEngine:
        raise RlcoreError(
            f"experiment {self.name!r} evaluates itself: set run.eval_every (and its eval "
            "options) in the overrides; Evaluator objects belong to engines over modules"
        )

    def learn(self, resume: bool | str | os.PathLike = True) -> dict[str, Any]:
        """Run the experiment: in this process, or on ``nproc`` ranks through the launcher."""
        from rlcore.api.context import current, init

        in_group = int(os.environ.get("WORLD_SIZE", "1")) > 1
        if self.nproc > 1 and not in_group:
            if self.dataset is not None:
                raise ConfigError("a dataset object cannot travel to launched ranks; pass rows "
                                  "to set_dataset, or launch this script with torchrun")
            if not isinstance(self.experiment_ref, str):
                raise ConfigError("nproc > 1 needs the experiment as a registered name or "
                                  "'module:Class' string, so the ranks can import it")
            from rlcore.launch.launcher import launch

            self.summary = launch(self.experiment_ref, self.config, nproc=self.nproc,
                                  run_dir=self.run_dir, resume=resume)
            return self.summary or {}
        from rlcore.runtime.loop import run

        if current() is None:
            run_opts = getattr(self.config, "run", None)
            init(seed=getattr(run_opts, "seed", 1))
        self.summary = run(self.experiment(), self.config, self.run_dir, resume=resume)
        return self.summary

    def __repr__(self) -> str:
        return f"ExperimentEngine({self.name!r}, run_dir={str(self.run_dir)!r})"

