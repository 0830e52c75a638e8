"""rlcore: a plugin-based framework for RLHF and LLM post-training.

Importing this package is cheap: torch and friends load only when a model,
dataset or runtime is actually used.
"""

__version__ = "0.1.0"

# The plugin API version. A plugin declares the range it supports (see
# docs/plugins.md); the manager checks it before importing the plugin.
API_VERSION = 2  # 2: Experiment.step replaced SampleFilter; estimator and policy-loss hooks

from rlcore.plugins.markers import hookimpl, hookspec  # noqa: E402

__all__ = ["API_VERSION", "__version__", "hookimpl", "hookspec", "init"]


def init(**kwargs):
    """Initialise the runtime for the Python API (ChatLearn style); see rlcore.api."""
    from rlcore.api import init as _init

    return _init(**kwargs)
