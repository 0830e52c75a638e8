"""Experiments: roles + dataset + dataflow graph, and ``run``, the per-rank entry point.

An experiment plugin subclasses :class:`Experiment`, names a config dataclass that
embeds :class:`~rlcore.runtime.options.RunOptions` as ``run``, declares its roles
and MFCs, and builds its dataset. ``run`` does the rest on every rank: builds the
roles with their backends, iterates the data, runs the executor, logs, evaluates,
checkpoints and resumes.
"""

from __future__ import annotations

import dataclasses
import math
import os
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rlcore.dfg import MFC, DataflowGraph, build_graph
from rlcore.errors import ConfigError, RlcoreError
from rlcore.runtime.options import DeepSpeedOptions, InferenceOptions, RunOptions

if TYPE_CHECKING:
    from rlcore.runtime.protocols import Backend


@dataclass
class RoleSpec:
    """One model role.

    The weights come from ``model`` (an HF directory), else ``preset`` (a family
    name whose tiny config is built with random weights), else the experiment's
    own ``build_model``. ``init_from`` starts from another role's initial weights
    (a DPO reference = the policy). ``backend`` defaults to ``deepspeed`` when
    ``trainable`` and ``inference`` otherwise; ``options`` are that backend's.
    """

    name: str
    trainable: bool = False
    model: str | None = None
    preset: str | None = None
    value_head: bool = False
    init_from: str | None = None
    backend: str | None = None
    options: DeepSpeedOptions | InferenceOptions | None = None

    @property
    def backend_name(self) -> str:
        return self.backend or ("deepspeed" if self.trainable else "inference")


class Experiment:
    """Base of experiments; subclasses override ``roles``, ``mfcs`` and ``build_dataset``."""

    name: ClassVar[str] = ""
    config_class: ClassVar[type | None] = None

    def __init__(self, config: Any = None):
        if config is None:
            if self.config_class is None:
                raise ConfigError(f"{type(self).__name__} has no config_class to default from")
            config = self.config_class()
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
        cls = _resolve("interfaces", mfc.interface)
        return cls(**mfc.interface_args)

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

    def evaluate(self, step: int, handles: dict[str, Any]) -> dict[str, float]:
        """Eval metrics every ``run.eval_every`` steps (default: none)."""
        return {}


def _resolve(kind: str, ref: Any) -> Any:
    if not isinstance(ref, str):
        return ref
    if ":" in ref:
        from rlcore.plugins.records import load_object

        return load_object(ref)
    from rlcore.plugins import registry

    return registry.load(kind, ref)


def build_experiment(name: str | type, config: Any = None) -> Experiment:
    """The experiment ``name`` (registered name, ``module:Class`` or class) over ``config``."""
    cls = _resolve("experiments", name)
    if not (isinstance(cls, type) and issubclass(cls, Experiment)):
        raise RlcoreError(f"experiment {name!r} resolves to {cls!r}, not an Experiment subclass")
    return cls(config)


def optimizer_steps(graph: DataflowGraph, role: str, steps: int, grad_accum: int) -> int:
    """Optimizer steps ``role`` takes over ``steps`` training steps."""
    micro = sum(m.n_minibatches for m in graph.mfcs if m.role == role and m.is_train)
    return max(1, math.ceil(steps * micro / grad_accum))


def build_roles(exp: Experiment, graph: DataflowGraph, tokenizer: Any, total_steps: int) -> dict:
    """A :class:`ModelHandle` per role the graph uses, each wrapped by its backend."""
    from rlcore.runtime.interface import ModelHandle

    specs = {r.name: r for r in exp.roles()}
    used = graph.roles
    unused = sorted(set(specs) - set(used))
    if unused:
        warnings.warn(f"roles {unused} are declared but no MFC uses them", stacklevel=2)
    trained = set(graph.trainable_roles)
    handles: dict[str, ModelHandle] = {}
    initial: dict[str, dict] = {}
    # Roles that others start from are built first, so their initial weights can be copied.
    names = [r.name for r in exp.roles() if r.name in used]
    for name in sorted(names, key=lambda n: specs[n].init_from is not None):
        spec = specs[name]
        if name in trained and not spec.trainable:
            raise ConfigError(f"role {name!r} has a train_step MFC but is not marked trainable")
        if spec.init_from:
            src = specs.get(spec.init_from)
            if src is None:
                raise ConfigError(f"role {name!r}: init_from names unknown role {spec.init_from!r}")
            module, family = exp.build_model(dataclasses.replace(src, value_head=spec.value_head),
                                              tokenizer)
            if spec.init_from in initial:
                module.load_state_dict(initial[spec.init_from], strict=False)
        else:
            module, family = exp.build_model(spec, tokenizer)
        if any(s.init_from == name for s in specs.values()):
            initial[name] = {k: v.detach().clone() for k, v in module.state_dict().items()}
        backend_cls = _resolve("backends", spec.backend_name)
        options = spec.options if spec.options is not None else backend_cls.options_class()
        backend: Backend = backend_cls(options)
        steps = total_steps
        if getattr(backend, "trainable", False):
            steps = optimizer_steps(graph, name, total_steps, options.grad_accum_steps)
        model = backend.wrap(module, total_steps=steps)
        handles[name] = ModelHandle(name, model.module, model, tokenizer, spec, family)
    return handles


def _config_dict(config: Any) -> dict[str, Any]:
    from rlcore.config import to_plain

    plain = to_plain(config)
    if isinstance(plain, dict):
        return plain
    return dataclasses.asdict(config) if dataclasses.is_dataclass(config) else {}


def total_steps_of(run: RunOptions, batches: Any) -> int:
    """Steps of the run: ``epochs`` passes over the data, capped by ``max_steps``."""
    per_epoch = len(batches)
    total = per_epoch * run.epochs
    if run.max_steps > 0:
        total = min(total, run.max_steps) if total else run.max_steps
    if total <= 0:
        raise ConfigError("the run has no steps: the dataset yields no batch; check the data")
    return total


def run(
    experiment: str | type | Experiment,
    config: Any,
    run_dir: str | os.PathLike,
    resume: bool | str | os.PathLike = True,
) -> dict[str, Any]:
    """Train ``experiment`` on this rank; return the summary (same on every rank).

    ``resume``: True continues from the latest complete checkpoint in ``run_dir``
    if there is one; a path resumes from that checkpoint; False starts fresh.
    """
    from rlcore.runtime import distributed
    from rlcore.runtime.checkpoint import CheckpointError, CheckpointManager, seed_everything
    from rlcore.runtime.executor import Executor
    from rlcore.runtime.metrics import MetricsLogger

    exp = experiment if isinstance(experiment, Experiment) else build_experiment(experiment, config)
    opts = exp.run_options()
    run_dir = Path(run_dir)
    rank, world = distributed.init(opts.collective_timeout_s)
    seed_everything(opts.seed)
    graph = exp.graph()
    tokenizer = exp.build_tokenizer()
    dataset = exp.build_dataset(tokenizer)
    batches = exp.build_batches(dataset)
    total = total_steps_of(opts, batches)
    handles = build_roles(exp, graph, tokenizer, total)
    interfaces = {m.name: exp.interface(m) for m in graph.mfcs}
    ckpt = CheckpointManager(run_dir, keep_last=opts.keep_last)

    step = 0
    source = None
    if resume is False:
        aside = ckpt.set_aside()
        if aside is not None:
            print(f"--no-resume: the earlier checkpoints are kept in {aside}")
        distributed.barrier()
    elif resume is True:
        source = ckpt.latest()
    elif resume:
        source = Path(resume)
        if not source.is_dir():
            raise CheckpointError(f"--resume {source}: no such checkpoint directory")
    config_dict = _config_dict(exp.config)
    if source is not None:
        state = ckpt.load(source, handles, config=config_dict)
        batches.load_state_dict(state["data"])
        step = int(state["step"])

    logger = MetricsLogger(run_dir, rank, total, start_step=step, progress=opts.progress)
    logger.start(config_dict)
    executor = Executor(graph, handles, interfaces, rank, world)
    saved_at = step if source is not None else -1

    def interface_files(role: str, path: Path) -> None:
        for m in graph.roles[role]:
            interfaces[m.name].save(handles[role], str(path))

    def save(at: int) -> None:
        ckpt.save(at, handles, {"data": batches.state_dict(), "config": config_dict},
                  extras=interface_files)

    try:
        it = iter(batches)
        while step < total:
            try:
                batch = next(it)
            except StopIteration:
                break
            step += 1
            metrics = distributed.mean_metrics(executor.step(batch))
            if opts.eval_every and step % opts.eval_every == 0:
                evals = exp.evaluate(step, handles)
                metrics.update(distributed.mean_metrics({f"eval/{k}": v for k, v in evals.items()}))
            logger.log(step, metrics)
            if opts.save_every and step % opts.save_every == 0:
                save(step)
                saved_at = step
        if saved_at != step:
            save(step)
    except BaseException as exc:
        logger.finish("failed", error="".join(traceback.format_exception_only(exc)).strip())
        raise
    summary = logger.finish("completed")
    summary["checkpoint"] = str(ckpt.latest()) if ckpt.latest() else None
    return summary
