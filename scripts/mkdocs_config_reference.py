"""MkDocs hook: one generated page per registered experiment, listing its config keys.

Each page is built from the experiment's config dataclass at build time (keys, types and
help text from ``describe_fields``; defaults from the resolved config, the values that
``rlcore train EXP --print-config`` prints), so it cannot drift from the code. The pages
live under ``reference/config/`` and are added to the nav entry that names
``reference/config/index.md``.
"""

from __future__ import annotations

import functools
from typing import Any

PREFIX = "reference/config/"
INDEX = PREFIX + "index.md"


@functools.cache
def experiment_names() -> tuple[str, ...]:
    """Registered experiment names, sorted."""
    from rlcore.plugins import registry

    return tuple(sorted(registry.items("experiments")))


def config_page(name: str) -> str:
    """Markdown for experiment ``name``: its doc line, provider and a table of every key."""
    from rlcore.config import describe_fields, experiment_config
    from rlcore.config.experiments import config_class_of
    from rlcore.plugins import registry

    record = registry.get("experiments", name)
    lines = [f"# `{name}` config", "", record.doc, "",
             f"Provided by `{registry.provider('experiments', name)}`; implementation "
             f"`{record.impl}`.", ""]
    cls = config_class_of(name)
    if cls is None:
        return "\n".join([*lines, "This experiment takes no config.", ""])
    _, resolved = experiment_config(name)
    lines += [
        f"Config class `{cls.__module__}.{cls.__qualname__}`. Set a key with "
        f"`rlcore train {name} --set KEY=VALUE` or in a `--config` YAML file; "
        f"`rlcore train {name} --print-config` prints every value.", "",
        "| key | type | default | meaning |", "|---|---|---|---|",
    ]
    for key, type_name, _, help_text in describe_fields(cls):
        default = _value_at(resolved, key)
        lines.append(f"| `{key}` | {_code(type_name)} | {_code(repr(default))} | {_text(help_text)} |")
    return "\n".join(lines) + "\n"


def index_page() -> str:
    """Markdown listing every experiment's page."""
    from rlcore.plugins import registry

    lines = ["# Experiment configs", "",
             "Generated from each registered experiment's config dataclass when the site is "
             "built. Defaults are what the experiment runs with (as `--print-config` shows).", "",
             "| experiment | what |", "|---|---|"]
    for name in experiment_names():
        doc = registry.get("experiments", name).doc
        lines.append(f"| [`{name}`]({name}.md) | {_text(doc)} |")
    return "\n".join(lines) + "\n"


def _value_at(config: Any, key: str) -> Any:
    for part in key.split("."):
        config = getattr(config, part)
    return config


def _code(text: str) -> str:
    """An inline code span (pipes inside code spans do not split table cells)."""
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def _text(text: str) -> str:
    """Plain text safe inside a markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


# ------------------------------------------------------------------ MkDocs events


def on_config(config: Any) -> Any:
    """Expand the nav entry of the index into the index plus one page per experiment."""
    pages = [INDEX, *(f"{PREFIX}{n}.md" for n in experiment_names())]

    def expand(items: list) -> list:
        out = []
        for item in items:
            if isinstance(item, dict):
                ((title, value),) = item.items()
                if value == INDEX:
                    out.append({title: pages})
                    continue
                if isinstance(value, list):
                    item = {title: expand(value)}
            out.append(item)
        return out

    config["nav"] = expand(config["nav"])
    return config


def on_files(files: Any, config: Any) -> Any:
    """Add the generated pages."""
    from mkdocs.structure.files import File

    files.append(File.generated(config, INDEX, content=index_page()))
    for name in experiment_names():
        files.append(File.generated(config, f"{PREFIX}{name}.md", content=config_page(name)))
    return files
