"""``rlcore.init()``: join the process group, seed, set up logging; safe to call repeatedly."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("rlcore.api")


@dataclass(frozen=True)
class Context:
    """What ``init`` set up on this process."""

    rank: int
    world_size: int
    seed: int
    device: Any
    log_level: str


_CONTEXT: Context | None = None


def init(
    seed: int = 1,
    log_level: str = "INFO",
    timeout_s: float = 300.0,
) -> Context:
    """Initialise this process for the Python API and return its :class:`Context`.

    - joins the process group: a group of one for a plain ``python`` process, the
      launcher's group under ``torchrun`` / ``deepspeed`` (read from the environment);
    - seeds python, numpy and torch with ``seed`` (the engines' default run seed);
    - sends the ``rlcore`` loggers to stderr at ``log_level`` (rank 0 only above WARNING).

    Idempotent: the process group is created once. A later call with the same
    arguments returns the same context without reseeding; a different ``seed``
    reseeds, a different ``log_level`` changes the level.
    """
    global _CONTEXT
    level = _level(log_level)
    if _CONTEXT is not None and (_CONTEXT.seed, _CONTEXT.log_level) == (seed, log_level):
        return _CONTEXT

    from rlcore.runtime import distributed
    from rlcore.runtime.seeding import seed_everything

    rank, world = distributed.init(timeout_s)
    _setup_logging(level if rank == 0 else max(level, logging.WARNING))
    if _CONTEXT is None or _CONTEXT.seed != seed:
        seed_everything(seed)
    _CONTEXT = Context(rank, world, seed, distributed.device(), log_level)
    log.debug("rlcore.init: rank %d of %d, seed %d, device %s", rank, world, seed,
              _CONTEXT.device)
    return _CONTEXT


def current() -> Context | None:
    """The context of the last ``init`` call, or None before the first."""
    return _CONTEXT


def _level(name: str) -> int:
    from rlcore.errors import ConfigError

    value = logging.getLevelName(str(name).upper())
    if not isinstance(value, int):
        raise ConfigError(
            f"rlcore.init(log_level={name!r}): expected DEBUG, INFO, WARNING, ERROR or CRITICAL"
        )
    return value


def _setup_logging(level: int) -> None:
    logger = logging.getLogger("rlcore")
    logger.setLevel(level)
    if not any(getattr(h, "_rlcore_api", False) for h in logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler._rlcore_api = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
