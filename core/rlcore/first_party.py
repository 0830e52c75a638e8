"""Which first-party distribution provides what, so that a core without it can say what to install.

Kept true to the plugins by tests/packaging/test_first_party.py; the split is explained in
docs/plugins.md ("Which packages to install").
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, distribution

ALGORITHMS = "rlcore-plugin-algorithms"
# Each family distribution depends on ALGORITHMS, so installing one gives a working `rlcore train`.
FAMILY_PACKAGES = {
    "rlcore-plugin-llama": ("llama", "mistral", "smollm3"),
    "rlcore-plugin-qwen2": ("qwen2", "qwen3"),
    "rlcore-plugin-gpt2": ("gpt2",),
    "rlcore-plugin-mixtral": ("mixtral",),
    "rlcore-plugin-qwen3-moe": ("qwen3_moe", "qwen2_moe"),
    "rlcore-plugin-olmoe": ("olmoe",),
    "rlcore-plugin-gemma": ("gemma2", "gemma3", "gemma3_text"),
    "rlcore-plugin-glm": ("glm4",),
}
# HF model_types no first-party family handles, and what the core lacks (docs/families.md).
UNSUPPORTED = {
    "qwen3_next": "hybrid Gated DeltaNet linear attention (layer_types 'linear_attention'), "
                  "gated attention and a sparse MoE MLP",
    "gemma3": "the multimodal Gemma3ForConditionalGeneration (a vision tower); text-only "
              "Gemma 3 checkpoints are model_type 'gemma3_text' (rlcore-plugin-gemma)",
    "gemma3n": "per-layer embeddings, AltUp and laurel blocks",
    "recurrent_gemma": "RG-LRU recurrent blocks",
    "chatglm": "remote code, which rlcore never runs; GLM-4 weights in the glm4 layout load as "
               "'glm4' (rlcore-plugin-glm)",
}
# Every item of these kinds that a first-party plugin registers comes from this distribution.
KIND_PACKAGES = {
    "experiments": ALGORITHMS,
    "interfaces": ALGORITHMS,
    "datasets": "rlcore-plugin-datasets",
    "rewards": "rlcore-plugin-rewards",
}

# The first-party loggers (run.loggers), each its own distribution.
LOGGER_PACKAGES = {"tensorboard": "rlcore-plugin-tensorboard", "wandb": "rlcore-plugin-wandb",
                   "mlflow": "rlcore-plugin-mlflow"}



def installed(dist: str) -> bool:
    """Whether the distribution ``dist`` is installed."""
    try:
        distribution(dist)
    except PackageNotFoundError:
        return False
    return True


def family_package(name: str) -> str | None:
    """The first-party distribution of the family (or HF ``model_type``) ``name``, if any."""
    return next((dist for dist, names in FAMILY_PACKAGES.items() if name in names), None)


def install_hint(kind: str, name: str | None = None) -> str:
    """A sentence naming the package to ``pip install`` for ``name`` of ``kind``; empty if installed.

    ``name`` matters for families only (a family name or HF ``model_type``).
    """
    any_family = " or ".join(f"`pip install {d}`" for d in FAMILY_PACKAGES)
    if kind == "families":
        dist = family_package(name) if name else None
        if dist is not None and not installed(dist):
            return f"{name!r} is provided by {dist}: `pip install {dist}`."
        if name in UNSUPPORTED:  # also the model_type 'gemma3', beside the family name 'gemma3'
            return (f"No rlcore family supports model_type {name!r}: the core transformer lacks "
                    f"{UNSUPPORTED[name]} (docs/families.md, 'Not supported').")
        if dist is None:
            return f"Model families come from plugins: {any_family}, or a third-party family plugin."
        return ""
    dist = KIND_PACKAGES.get(kind)
    if dist is None or installed(dist):
        return ""
    return (f"rlcore's standard {kind} come from {dist}, which every model family installs: "
            f"{any_family} (or `pip install {dist}` alone).")
