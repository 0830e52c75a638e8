"""The core's own plugin: the standard backends and the local rollout engine, registered like
any other plugin's items."""

from rlcore.plugins.markers import hookimpl
from rlcore.plugins.records import BackendRecord, RolloutEngineRecord


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


@hookimpl
def rlcore_rollout_engines():
    """The core sampler in the trainer's process, and separate rollout worker processes."""
    return [
        RolloutEngineRecord("local", impl="rlcore.rollout.local:LocalEngine",
                            doc="The core KV-cache sampler on the trainer's own module."),
        RolloutEngineRecord("worker", impl="rlcore.rollout.remote:WorkerEngine",
                            doc="Separate rollout processes (rollout.procs), each with its own "
                                "inference copy, fed over a gloo group; probe-checked syncs."),
    ]
