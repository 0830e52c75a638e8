"""rlcore: a plugin-based framework for RLHF and LLM post-training.

Importing this package is cheap: torch and friends load only when a model,
dataset or runtime is actually used.
"""

import logging as _logging

__version__ = "0.1.0"

# The plugin API version. A plugin declares the range it supports (see
# docs/plugins.md); the manager checks it before importing the plugin.
API_VERSION = 2  # 2: Experiment.step replaced SampleFilter; estimator and policy-loss hooks

from rlcore.plugins.markers import hookimpl, hookspec  # noqa: E402


def _not_deepspeed_cpu_notice(record) -> bool:
    # DeepSpeed warns "Setting accelerator to CPU. If you have GPU ..." in every process that
    # imports it without a GPU; on CPU that is the expected case. Only that line is dropped:
    # this filter sits on DeepSpeed's logger (created at its import, the same object), before
    # any rlcore module imports deepspeed.
    return not record.getMessage().startswith("Setting accelerator to CPU")


_logging.getLogger("DeepSpeed").addFilter(_not_deepspeed_cpu_notice)

__all__ = ["API_VERSION", "__version__", "hookimpl", "hookspec", "init"]


def init(**kwargs):
    """Initialise the runtime for the Python API (ChatLearn style); see rlcore.api."""
    from rlcore.api import init as _init

    return _init(**kwargs)
