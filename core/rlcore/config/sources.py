"""Read overrides from YAML files and ``--set key=value`` strings, remembering where each came from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rlcore.errors import ConfigError


@dataclass(frozen=True)
class RawValue:
    """A ``--set`` value kept as typed text, parsed once its target type is known."""

    text: str


def parse_set(item: str, index: int) -> tuple[str, RawValue, str]:
    """Split ``a.b=c`` into key, raw value and a description of where it came from."""
    key, sep, value = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(
            f"--set #{index} {item!r} is not of the form key=value (e.g. --set train.optimizer.lr=1e-5)"
        )
    return key, RawValue(value), f"--set {key}={value}"


def load_yaml(path: str | Path) -> tuple[dict[str, Any], dict[str, str]]:
    """Load a YAML mapping and the source (``file:line``) of every dotted key in it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist; check the --config path")
    text = path.read_text()
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    if data is None:
        return {}, {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of config keys, got {type(data).__name__}")
    sources: dict[str, str] = {}
    _collect_lines(node, "", path, sources)
    return data, sources


def _collect_lines(node: yaml.Node, prefix: str, path: Path, out: dict[str, str]) -> None:
    if not isinstance(node, yaml.MappingNode):
        return
    for key_node, value_node in node.value:
        key = f"{prefix}{key_node.value}"
        out[key] = f"{path}:{key_node.start_mark.line + 1}"
        _collect_lines(value_node, key + ".", path, out)
