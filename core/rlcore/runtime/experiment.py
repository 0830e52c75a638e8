"""Experiments: what an algorithm declares — roles, dataflow graph, dataset, evaluation.

An experiment plugin subclasses :class:`Experiment`, names a config dataclass that
embeds :class:`~rlcore.runtime.options.RunOptions` as ``run``, declares its roles
and MFCs, and builds its dataset. :func:`rlcore.runtime.loop.run` does the rest on
every rank.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rlcore.dfg import MFC, DataflowGraph, build_graph
from rlcore.errors import ConfigError, RlcoreError
from rlcore.plugins.registry import resolve_impl  # also re-exported here for older plugins
from rlcore.runtime.options import RunOptions
from rlcore.runtime.roles import RoleSpec

if TYPE_CHECKING:
    from rlcore.data.batch import PackedBatch
    from rlcore.runtime.step import StepContext


class Experiment:
    """Base of experiments; subclasses override ``roles``, ``mfcs`` and ``build_dataset``."""

    name: ClassVar[str] = ""
    config_class: ClassVar[type | None] = None
    headline: ClassVar[tuple[str, ...]] = ()  # see headline_metrics()

    def __init__(self, config: Any = None):
        if config is None:
            from rlcore.config.experiments import config_class_of

            config_cls = config_class_of(type(self))
            if config_cls is None:
                raise ConfigError(f"{type(self).__name__} has no config class to default from; "
                                  "name one in its ExperimentRecord (config=...) or as config_class")
            from rlcore.config.resolve import check_config

            config = config_cls()
            check_config(config, origin=f"the defaults of {config_cls.__name__}")
        self.config = config

    # ------------------------------------------------------------- what subclasses declare

    def roles(self) -> list[RoleSpec]:
        raise NotImplementedError(f"{type(self).__name__} must declare its roles()")

    def mfcs(self) -> list[MFC]:
        raise NotImplementedError(f"{type(self).__name__} must declare its mfcs()")

    def dataset_keys(self) -> list[str] | None:
        """Keys each dataset batch provides (None: whatever no MFC produces)."""
        return None

    def build_tokenizer(self) -> Any:
        return None

    def build_dataset(self, tokenizer: Any) -> Any:
        """A dataset with ``__len__``, ``__getitem__`` and ``collate(samples) -> PackedBatch``."""
        raise NotImplementedError(f"{type(self).__name__} must implement build_dataset()")

    def run_options(self) -> RunOptions:
        run = getattr(self.config, "run", None)
        return run if run is not None else RunOptions()

    def prepare(self, run_dir: Path) -> None:
        """Work before the roles are built, on every rank (e.g. a warm-start stage); default none."""

    def headline_metrics(self) -> list[str]:
        """The metrics that progress shows and the summary lists first (default: the class's
        ``headline``); name only those this config's roles produce."""
        return list(self.headline)

    def rollout_processes(self) -> int:
        """Processes of the launch that sample instead of training (default none)."""
        return 0

    def weight_syncs(self) -> dict[str, str]:
        """``{trained role: frozen role}`` whose weights follow it after every step (default none)."""
        return {}

    # ------------------------------------------------------------- defaults subclasses may replace

    def graph(self) -> DataflowGraph:
        """The validated dataflow graph (also what ``rlcore show`` prints)."""
        graph = build_graph(self.mfcs(), self.dataset_keys())
        declared = {r.name for r in self.roles()}
        missing = sorted({m.role for m in graph.mfcs} - declared)
        if missing:
            raise ConfigError(
                f"MFCs use roles {missing} that {type(self).__name__}.roles() does not "
                f"declare (it declares {sorted(declared)})"
            )
        return graph

    def build_model(self, role: RoleSpec, tokenizer: Any) -> tuple[Any, str | None]:
        """``(nn.Module, family name or None)`` for ``role``, before any backend wraps it."""
        if role.model:
            from rlcore.models.hf_io import load_pretrained

            return load_pretrained(role.model, value_head=role.value_head)
        if role.preset:
            from rlcore.models.transformer import Transformer
            from rlcore.plugins import registry

            family = registry.load("families", role.preset)
            cfg = family.tiny_config()
            if tokenizer is not None and hasattr(tokenizer, "get_vocab_size"):
                cfg = dataclasses.replace(cfg, vocab_size=max(cfg.vocab_size,
                                                              tokenizer.get_vocab_size()))
            if role.value_head:
                cfg = dataclasses.replace(cfg, value_head=True, tie_embeddings=False)
            return Transformer(cfg), role.preset
        raise ConfigError(
            f"role {role.name!r} names neither a model path nor a preset; set one, or "
            f"override {type(self).__name__}.build_model"
        )

    def interface(self, mfc: MFC) -> Any:
        """The interface object of ``mfc``: a registered name or ``module:Class``."""
        cls = resolve_impl("interfaces", mfc.interface)
        return cls(**mfc.interface_args)

    def interfaces(self, mfcs: list[MFC]) -> dict[str, Any]:
        """MFC name -> interface object, one object per (role, interface, args): the MFCs of a
        role that name the same interface with the same arguments share its state."""
        from rlcore.config import to_plain

        built: dict[tuple[str, str, str], Any] = {}
        out = {}
        for mfc in mfcs:
            args = json.dumps(to_plain(dict(mfc.interface_args)), sort_keys=True, default=repr)
            key = (mfc.role, repr(mfc.interface), args)
            if key not in built:
                built[key] = self.interface(mfc)
            out[mfc.name] = built[key]
        return out

    def step(self, ctx: StepContext, batch: PackedBatch) -> PackedBatch:
        """One training step on this rank's ``batch``: by default every MFC once, in order.

        Override it for control flow (filter and refill, consume a queue); return the
        batch the step ended with. ``ctx`` runs MFCs, draws more data and reduces across
        ranks (:class:`~rlcore.runtime.step.StepContext`).
        """
        return ctx.run(batch)

    def build_batches(self, dataset: Any) -> Any:
        """A resumable batch iterator (``state_dict``/``load_state_dict``) over ``dataset``.

        With several ranks an epoch's final short batch is dropped, so that no rank
        is left without samples.
        """
        from rlcore.data.loader import BatchIterator
        from rlcore.runtime import distributed

        run = self.run_options()
        return BatchIterator(
            dataset,
            batch_size=run.batch_size if run.max_tokens is None else None,
            max_tokens=run.max_tokens,
            seed=run.seed,
            epochs=run.epochs,
            drop_last=distributed.world_size() > 1,
        )

    def load_eval_data(self, tokenizer: Any) -> None:
        """Read the held-out data now, so that a bad eval file fails at start (default: none)."""

    def evaluate(self, step: int, handles: dict[str, Any]) -> dict[str, float]:
        """Eval metrics every ``run.eval_every`` steps (default: none)."""
        return {}

    def check(self) -> None:
        """Reject now what a run would reject later, starting no process and building no model.

        What ``rlcore train --dry-run`` runs: the dataflow graph, the names in
        ``run.loggers``, the tokenizer, every role's model directory (config, family and
        weight files, not the weights), the training data read and batched, and the held-out
        data.
        """
        from rlcore.runtime.loggers import selected

        self.graph()
        selected(self.run_options().loggers)
        tokenizer = self.build_tokenizer()
        for spec in self.roles():
            if spec.model:
                check_model_dir(spec.model, f"role {spec.name!r}")
        batches = self.build_batches(self.build_dataset(tokenizer))
        total_steps_of(self.run_options(), batches)
        next(iter(batches), None)  # the first batch as the run makes it: none at all fails here
        self.load_eval_data(tokenizer)


def build_experiment(name: str | type, config: Any = None) -> Experiment:
    """The experiment ``name`` (registered name, ``module:Class`` or class) over ``config``.

    A config built in code gets the checks a resolved config has passed (ranges, ``validate()``).
    """
    from rlcore.config.experiments import experiment_class
    from rlcore.config.resolve import check_config

    cls = experiment_class(name)
    if not (isinstance(cls, type) and issubclass(cls, Experiment)):
        raise RlcoreError(f"experiment {name!r} resolves to {cls!r}, not an Experiment subclass")
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        check_config(config, origin="the config given")
    return cls(config)


def check_model_dir(path: str | Path, key: str) -> None:
    """Fail unless ``path`` is an HF model directory rlcore can load; ``key`` names the setting.

    Reads ``config.json`` and the safetensors index or header, never the weights.
    """
    from rlcore.errors import ModelLoadError
    from rlcore.models.hf_io import read_hf_config, resolve_family, weight_files

    try:
        hf = read_hf_config(path)
        resolve_family(None, hf["model_type"], f" (from {Path(path) / 'config.json'})")
        weight_files(Path(path))
    except ModelLoadError as err:
        raise ModelLoadError(f"{key}: {err}") from None


def total_steps_of(run: RunOptions, batches: Any) -> int:
    """Steps of the run: ``epochs`` passes over the data, capped by ``max_steps``."""
    per_epoch = len(batches)
    total = per_epoch * run.epochs
    if run.max_steps > 0:
        total = min(total, run.max_steps) if total else run.max_steps
    if total <= 0:
        raise ConfigError("the run has no steps: the dataset yields no batch; check the data")
    return total


def steps_note(run: RunOptions, batches: Any) -> str | None:
    """A line saying which of ``run.max_steps`` and ``run.epochs`` caps the other, if one does."""
    per_epoch = len(batches)
    by_epochs = per_epoch * run.epochs
    if run.max_steps <= 0 or run.max_steps == by_epochs or not per_epoch:
        return None
    if run.max_steps < by_epochs:
        return (f"{run.max_steps} steps (run.max_steps; run.epochs={run.epochs} would give "
                f"{by_epochs}, {per_epoch} batches an epoch)")
    return (f"run.max_steps={run.max_steps} is capped by run.epochs={run.epochs}: "
            f"{by_epochs} steps ({per_epoch} batches an epoch); raise run.epochs to train longer")
