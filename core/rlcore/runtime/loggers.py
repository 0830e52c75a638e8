"""Logger plugins that ``run.loggers`` selects: on rank 0 each gets the config, every step's
metrics and the summary. The default is ``[tensorboard]`` when that plugin is installed."""

from __future__ import annotations

import logging
from typing import Any

from rlcore.errors import ConfigError, RlcoreError, UnknownItemError

log = logging.getLogger(__name__)
DEFAULT = ("tensorboard",)


def selected(names: list[str] | None) -> list[str]:
    """The loggers a run uses: ``names`` (each checked against the registry), or, for None,
    those of :data:`DEFAULT` that are installed."""
    from rlcore.first_party import LOGGER_PACKAGES, installed
    from rlcore.plugins import registry

    if names is None:
        return [n for n in DEFAULT if n in registry.items("loggers")]
    for name in names:
        try:
            registry.get("loggers", name)
        except UnknownItemError as exc:
            package = LOGGER_PACKAGES.get(name)
            hint = (f" Install it: pip install {package}." if package and not installed(package)
                    else "")
            raise ConfigError(f"run.loggers: {exc}{hint}") from None
    return list(dict.fromkeys(names))


class Loggers:
    """The selected loggers of a run, built on rank 0 (other ranks get none)."""

    def __init__(self, names: list[str], run_dir: str, config: dict[str, Any], start_step: int):
        from rlcore.plugins import registry

        self.active: list[tuple[str, Any]] = []
        for name in names:
            cls = registry.load("loggers", name)
            try:
                self.active.append((name, cls(run_dir=run_dir, config=config,
                                              start_step=start_step)))
            except RlcoreError:
                raise
            except Exception as exc:
                self.close({"status": "failed", "error": f"logger {name!r} could not start"})
                raise RlcoreError(
                    f"logger {name!r} ({registry.provider('loggers', name)}) could not start: "
                    f"{type(exc).__name__}: {exc}. Fix its setup, or leave it out of "
                    f"run.loggers (now {names})") from exc

    def log(self, step: int, metrics: dict[str, float]) -> None:
        """Give each logger step ``step``'s metrics."""
        self._each("log", step, metrics)

    def close(self, summary: dict[str, Any]) -> None:
        """Give each logger the summary and let it finish."""
        self._each("close", summary)
        self.active = []

    def _each(self, method: str, *args: Any) -> None:
        for entry in list(self.active):
            name, logger = entry
            try:
                getattr(logger, method)(*args)
            except Exception as exc:  # tracking must not end a run: warn once and drop it
                log.warning("logger %r: %s failed (%s: %s); it logs nothing more in this run",
                            name, method, type(exc).__name__, exc)
                self.active.remove(entry)
