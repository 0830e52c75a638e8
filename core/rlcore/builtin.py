"""The core's own plugin: the standard backends, registered like any other plugin's items."""

from rlcore.plugins.markers import hookimpl
from rlcore.plugins.records import BackendRecord


@hookimpl
def rlcore_backends():
    """DeepSpeed for trainable roles, inference wrappers for frozen ones, none for model-free roles."""
    return [
        BackendRecord(
            "deepspeed",
            impl="rlcore.runtime.backends:DeepSpeedBackend",
            doc="Trainable roles: ZeRO 0-3, fp32/bf16/fp16, accumulation, clipping, schedules, offload.",
        ),
        BackendRecord(
            "inference",
            impl="rlcore.runtime.backends:InferenceBackend",
            doc="Frozen roles: eval mode, no gradients, optionally parked on the CPU while idle.",
        ),
        BackendRecord(
            "none",
            impl="rlcore.runtime.backends:NoModelBackend",
            doc="Roles without a neural model (reward functions): no module is built.",
        ),
    ]
