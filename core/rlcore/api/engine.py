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


class ModuleExperiment(Experiment):
    """The experiment an :class:`Engine` over modules runs (one per ``learn``/``graph``)."""

    name = "api"
    config_class = EngineConfig

    def __init__(self, engine: Engine):
        super().__init__(engine.config)
        self.engine = engine

    def roles(self) -> list[RoleSpec]:
        return [RoleSpec(m.name, trainable=m.trainable, options=m.options)
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


class Engine:
    """Train user modules with rlcore's runtime: ``Engine(policy, reference, ..., flow=fn)``.

    ``flow`` is a function of one batch that calls the modules (see rlcore.api.flow);
    without it every module's ``forward_step`` and ``train_step`` run, ordered by
    their keys. ``run`` (a :class:`RunOptions`) or its fields as keywords
    (``max_steps=20, batch_size=8``) set the run. ``run_dir`` (default
    ``runs/<name>``) holds metrics and checkpoints. ``tokenizer`` is a tokenizer or
    a local directory (default: the embedded task's).
    """

    def __init__(
        self,
        *modules: Module,
        flow: Callable[[Any], Any] | None = None,
        run: RunOptions | None = None,
        run_dir: str | os.PathLike | None = None,
        tokenizer: Any = None,
        name: str = "engine",
        **run_options: Any,
    ):
        if not modules:
            raise ConfigError("Engine(...) needs at least one module (or use "
                              "Engine.from_experiment(name))")
        self.modules: dict[str, Module] = {}
        for m in modules:
            if not isinstance(m, Module):
                raise ConfigError(f"Engine(...) takes rlcore.api.Module objects, got {m!r}")
            if m.name in self.modules:
                raise ConfigError(f"two modules are named {m.name!r}; module names are roles "
                                  "and must be unique")
            self.modules[m.name] = m
            m._owner = self
        self.flow = flow
        self.name = name
        self.run_dir = Path(run_dir) if run_dir is not None else Path("runs") / name
        self.config = EngineConfig(_run_options(run, run_options), {
            m.name: {
                "class": f"{type(m).__module__}.{type(m).__qualname__}",
                "trainable": m.trainable,
                "input_keys": list(m.input_keys),
                "output_keys": list(m.output_keys),
                "train_keys": list(m.train_keys or ()),
                "options": m.options,
            }
            for m in self.modules.values()
        })
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
        from rlcore.runtime.loop import run

        if current() is None:
            init(seed=self.config.run.seed)
        exp = self.experiment()
        graph = exp.graph()
        if self.evaluator is not None:
            self.evaluator.check(graph.roles)
        self.summary = run(exp, self.config, self.run_dir, resume=resume)
        return self.summary

    def __repr__(self) -> str:
        return f"Engine({', '.join(map(repr, self.modules.values()))}, run_dir={str(self.run_dir)!r})"


class ExperimentEngine(Engine):
    """An engine over an experiment plugin (``Engine.from_experiment``)."""

    def __init__(self, experiment: str | type, config: Any, overrides: Iterable[str],
                 config_file: str | os.PathLike | None, run_dir: str | os.PathLike | None,
                 nproc: int):
        self.experiment_ref = experiment
        self.config = _experiment_config(experiment, config, list(overrides), config_file)
        label = experiment if isinstance(experiment, str) else experiment.__name__
        self.name = label.split(":")[-1]
        self.run_dir = Path(run_dir) if run_dir is not None else Path("runs") / self.name
        if not isinstance(nproc, int) or nproc < 1:
            raise ConfigError(f"nproc: expected an integer >= 1, got {nproc!r}")
        self.nproc = nproc
        self.modules = {}
        self.flow = None
        self.dataset = None
        self._dataset_keys = None
        self.evaluator = None
        self.summary = None
        self._tokenizer_arg = self._tokenizer = None

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
            from rlcore.runtime.launcher import launch

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


def _experiment_config(experiment: str | type, config: Any, overrides: list[str],
                       config_file: str | os.PathLike | None) -> Any:
    """The typed config, resolved like the CLI does: defaults (or ``config``) < file < overrides."""
    from rlcore.config import resolve, to_yaml

    config_cls = _config_class(experiment)
    if config is not None:
        if config_file is not None:
            raise ConfigError("give a config object or a config_file, not both")
        if config_cls is not None and not isinstance(config, config_cls):
            raise ConfigError(f"config is a {type(config).__name__}; experiment {experiment!r} "
                              f"expects a {config_cls.__name__}")
        if not overrides:
            return copy.deepcopy(config)
        import tempfile

        # The object's values become the YAML layer under the overrides.
        with tempfile.TemporaryDirectory(prefix="rlcore-api-config-") as d:
            base = Path(d) / "config.yaml"
            base.write_text(to_yaml(config))
            return resolve(type(config), base, overrides)
    if config_cls is None:
        if overrides or config_file is not None:
            raise ConfigError(f"experiment {experiment!r} declares no config class to override")
        return None
    return resolve(config_cls, config_file, overrides)


def _config_class(experiment: str | type) -> type | None:
    from rlcore.runtime.experiment import resolve_impl

    if isinstance(experiment, str) and ":" not in experiment:
        from rlcore.plugins import registry
        from rlcore.plugins.records import load_object

        record = registry.get("experiments", experiment)
        if getattr(record, "config", None):
            return load_object(record.config)
        return getattr(record.load(), "config_class", None)
    cls = resolve_impl("experiments", experiment)
    return getattr(cls, "config_class", None)
