"""DecoderFamily: a model family declared as tables (names, fixed options, config keys).

Most HF decoders differ from Llama in a few names and options. A family on this base declares
them as class attributes; the config, state-dict and parameter-name methods of
:class:`~rlcore.models.family.ModelFamily` follow from the declarations. What a table cannot say
goes in a hook: ``quirks_from_hf`` / ``quirks_to_hf`` (extra config keys, refusals) and, for a
config with other key names (GPT-2), ``shape_from_hf`` / ``shape_to_hf``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from rlcore.errors import ConfigError, ModelLoadError
from rlcore.models.config import TransformerConfig
from rlcore.models.family import ModelFamily, StateDict
from rlcore.models.hf_layout import DecoderKeys, rope_from_hf, rope_to_hf

# HF activation names the core computes exactly (gelu_pytorch_tanh is gelu_new's tanh formula).
HF_ACTIVATIONS = {"silu": "silu", "swish": "silu", "gelu": "gelu", "gelu_new": "gelu_new",
                  "gelu_pytorch_tanh": "gelu_new", "gelu_fast": "gelu_new", "relu": "relu",
                  "quick_gelu": "quick_gelu"}
# What transformers assumes for Llama-style keys that a config.json leaves out.
LLAMA_DEFAULTS = {"hidden_act": "silu", "rms_norm_eps": 1e-6, "tie_word_embeddings": False,
                  "max_position_embeddings": 2048}


class DecoderFamily(ModelFamily):
    """A family declared by tables; the defaults describe Llama (``model.layers.{i}.*``, RMSNorm,
    gated SiLU MLP, RoPE), so a Llama-like family sets only its names and its differences.

    A core config is saved only when reading the written ``config.json`` gives it back, so
    ``fixed`` and ``options`` also decide which core configs the architecture can express.
    """

    keys: ClassVar[DecoderKeys] = DecoderKeys()  # HF <-> core state-dict names
    fixed: ClassVar[dict[str, Any]] = {}  # core options every model of the family has
    options: ClassVar[dict[str, str]] = {}  # core option -> HF config key, read and written
    renamed: ClassVar[dict[str, str]] = {}  # Llama-style config key -> this family's name for it
    activations: ClassVar[dict[str, str]] = HF_ACTIVATIONS  # HF activation name -> core
    hf_defaults: ClassVar[dict[str, Any]] = LLAMA_DEFAULTS  # for keys config.json leaves out
    tiny: ClassVar[dict[str, Any]] = {}  # HF config of tiny_config(), without model_type

    # ---------------------------------------------------------------- configs
    def config_from_hf(self, hf: dict[str, Any]) -> TransformerConfig:
        where = f"{self.model_type} config.json"
        if hf.get("model_type", self.model_type) != self.model_type:
            raise ModelLoadError(f"{where}: model_type is {hf.get('model_type')!r}, "
                                 f"expected {self.model_type!r}")
        hf = {**self.hf_defaults, **{k: v for k, v in hf.items() if v is not None}}
        hf.update({llama: hf[own] for llama, own in self.renamed.items() if own in hf})
        try:
            fields = {**self.shape_from_hf(hf, where), **self.fixed,
                      **{opt: _option(opt, hf.get(key)) for opt, key in self.options.items()},
                      **self.quirks_from_hf(hf, where)}
        except KeyError as err:
            raise ModelLoadError(f"{where} has no {err.args[0]!r}, which {self.architecture} "
                                 "needs") from err
        try:
            return TransformerConfig(**fields).validate()
        except ConfigError as err:
            raise ModelLoadError(f"{where}: {err}") from err

    def config_to_hf(self, cfg: TransformerConfig) -> dict[str, Any]:
        shape = {self.renamed.get(k, k): v for k, v in self.shape_to_hf(cfg).items()}
        hf = {"architectures": [self.architecture], "model_type": self.model_type, **shape,
              **{key: getattr(cfg, opt) for opt, key in self.options.items()},
              **self.quirks_to_hf(cfg)}
        self._check_expressible(cfg, hf)
        return hf

    def shape_from_hf(self, hf: dict[str, Any], where: str) -> dict[str, Any]:
        """Sizes, norm epsilon, activation, RoPE, tying and context from Llama-style keys."""
        n_q = int(hf["num_attention_heads"])
        theta, scaling = rope_from_hf(hf, where)
        return dict(
            vocab_size=int(hf["vocab_size"]), hidden_size=int(hf["hidden_size"]),
            intermediate_size=int(hf["intermediate_size"]), n_layers=int(hf["num_hidden_layers"]),
            n_q_heads=n_q, n_kv_heads=int(hf.get("num_key_value_heads") or n_q),
            head_dim=int(hf.get("head_dim") or int(hf["hidden_size"]) // n_q),
            norm_eps=float(hf["rms_norm_eps"]), activation=self.activation(hf, "hidden_act", where),
            rope_theta=theta, rope_scaling=scaling, tie_embeddings=bool(hf["tie_word_embeddings"]),
            max_positions=int(hf["max_position_embeddings"]))

    def shape_to_hf(self, cfg: TransformerConfig) -> dict[str, Any]:
        """The inverse of :meth:`shape_from_hf`."""
        return {"vocab_size": cfg.vocab_size, "hidden_size": cfg.hidden_size,
                "intermediate_size": cfg.intermediate_size, "num_hidden_layers": cfg.n_layers,
                "num_attention_heads": cfg.n_q_heads, "num_key_value_heads": cfg.n_kv_heads,
                "head_dim": cfg.head_dim, "hidden_act": cfg.activation,
                "max_position_embeddings": cfg.max_positions, "rms_norm_eps": cfg.norm_eps,
                "rope_parameters": rope_to_hf(cfg), "tie_word_embeddings": cfg.tie_embeddings}

    def quirks_from_hf(self, hf: dict[str, Any], where: str) -> dict[str, Any]:
        """Core fields from config keys no table covers; raise ModelLoadError for what the core lacks."""
        return {}

    def quirks_to_hf(self, cfg: TransformerConfig) -> dict[str, Any]:
        """Config keys no table covers (the inverse of :meth:`quirks_from_hf`)."""
        return {}

    def activation(self, hf: dict[str, Any], key: str, where: str) -> str:
        """The core activation of ``hf[key]``, or a ModelLoadError listing the supported ones."""
        if hf[key] not in self.activations:
            raise ModelLoadError(f"{where}: {key} {hf[key]!r} is not supported "
                                 f"(supported: {', '.join(self.activations)})")
        return self.activations[hf[key]]

    def _check_expressible(self, cfg: TransformerConfig, hf: dict[str, Any]) -> None:
        """Refuse a core config that this architecture's config.json cannot hold."""
        try:
            back = dataclasses.replace(self.config_from_hf(hf), value_head=cfg.value_head)
        except ModelLoadError as err:
            raise ModelLoadError(f"core config cannot be saved as {self.model_type}: {err}") from err
        ignored = {"rope_theta"} if cfg.position == back.position == "learned" else set()
        bad = {f.name: (getattr(cfg, f.name), getattr(back, f.name))
               for f in dataclasses.fields(cfg)
               if f.name not in ignored and getattr(cfg, f.name) != getattr(back, f.name)}
        if bad:
            raise ModelLoadError(
                f"core config cannot be saved as {self.model_type}: "
                + ", ".join(f"{k}={a!r} (its config.json gives {b!r})" for k, (a, b) in bad.items())
                + f"; {self.architecture} cannot express these options")

    def tiny_config(self) -> TransformerConfig:
        """``config_from_hf`` of the ``tiny`` table."""
        return self.config_from_hf({"model_type": self.model_type, **self.tiny})

    # ----------------------------------------------------------- state dicts
    def state_dict_from_hf(self, sd: StateDict, cfg: TransformerConfig) -> StateDict:
        return self.keys.to_core(sd, cfg, self.model_type)

    def state_dict_to_hf(self, sd: StateDict, cfg: TransformerConfig) -> StateDict:
        return self.keys.to_hf(sd, cfg, self.model_type)

    # -------------------------------------------------------- parameter names
    def embedding_param_names(self, cfg: TransformerConfig) -> list[str]:
        return self.keys.hf_names(cfg, "embedding")

    def block_param_names(self, cfg: TransformerConfig, i: int) -> list[str]:
        return self.keys.hf_names(cfg, f"block {i}")

    def head_param_names(self, cfg: TransformerConfig) -> list[str]:
        return self.keys.hf_names(cfg, "head")


def _option(name: str, value: Any) -> Any:
    """An ``options`` value as its core field's type: bool flags, or an int that may be absent."""
    default = TransformerConfig.__dataclass_fields__[name].default
    if isinstance(default, bool):
        return bool(value)
    return None if value is None else int(value)
