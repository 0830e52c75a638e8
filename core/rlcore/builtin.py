"""The core's own plugin: the standard backends, registered like any other plugin's items."""

from rlcore.plugins.markers import hookimpl
from rlcore.plugins.records import BackendRecord


@hookimpl
def rlcore_backends():
    """DeepSpeed engines for trainable roles, inference wrappers for frozen ones."""
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
    ]
