"""``rlcore new-plugin NAME --kind KIND``: scaffold an installable plugin package whose tests pass.

The files come from ``cli/templates/`` (``base/`` for every kind, then ``<kind>/``), filled in
with :class:`string.Template` (``$name``, ``$module``, ``$Class``, ...); ``PKG`` in a path
becomes ``rlcore_plugin_<module>``.
"""

from __future__ import annotations

import re
from enum import StrEnum
from importlib import resources
from pathlib import Path
from string import Template

import typer

import rlcore
from rlcore.errors import RlcoreError


class PluginKind(StrEnum):
    """What the scaffolded plugin registers."""

    reward = "reward"
    experiment = "experiment"
    family = "family"


# Per kind: what the README says it adds, how to try it, and the first-party packages it builds on.
ABOUT = {
    PluginKind.reward: ("a reward function, `$item`",
                        "rlcore train grpo --set 'reward.functions=[$item]'", ()),
    PluginKind.experiment: ("an experiment, `$name` (SFT that also learns the prompt)",
                            "rlcore train $name", ("rlcore-plugin-algorithms",
                                                   "rlcore-plugin-datasets")),
    PluginKind.family: ("a model family, `$name` (StarCoder2 declared on `DecoderFamily`)",
                        "rlcore train sft --set actor.preset=$name", ("rlcore-plugin-algorithms",)),
}


def _template_files(kind: PluginKind) -> dict[str, str]:
    """``relative path -> template text`` of ``base/`` and ``<kind>/``."""
    root = resources.files("rlcore.cli") / "templates"
    files: dict[str, str] = {}
    for part in ("base", kind.value):
        stack = [(root / part, "")]
        while stack:
            folder, prefix = stack.pop()
            for entry in folder.iterdir():
                if entry.is_dir():
                    stack.append((entry, f"{prefix}{entry.name}/"))
                elif entry.name.endswith(".tmpl"):
                    files[prefix + entry.name.removesuffix(".tmpl")] = entry.read_text()
    return files


def new_plugin(
    name: str = typer.Argument(..., help="Plugin name: lowercase letters, digits and '-', e.g. `demo`."),
    kind: PluginKind = typer.Option(PluginKind.reward, "--kind", "-k", help="What the plugin registers."),
    directory: Path = typer.Option(Path("."), "--dir", "-d", help="Parent directory for the new package."),
) -> None:
    """Create `rlcore-plugin-NAME/`, an installable plugin whose tests pass as generated.

    `--kind reward` registers a keyword reward function (`NAME_keyword`, with '-' as '_')
    that a GRPO run uses when named in `reward.functions`; `--kind experiment` registers
    an experiment `NAME` (SFT that also learns the prompt) that `rlcore train NAME` runs;
    `--kind family` registers a model family `NAME` (StarCoder2, declared on DecoderFamily)
    that `--set actor.preset=NAME` trains and saves.
    Then: `pip install -e rlcore-plugin-NAME` (offline: add `--no-build-isolation`),
    `rlcore list-plugins` and `pytest rlcore-plugin-NAME/tests`.
    """
    if not re.fullmatch(r"[a-z][a-z0-9-]*", name):
        raise RlcoreError(f"plugin name {name!r} must start with a letter and use only a-z, 0-9 and '-'")
    module = name.replace("-", "_")
    root = directory / f"rlcore-plugin-{name}"
    if root.exists():
        raise RlcoreError(f"{root} already exists; choose another name or --dir")
    major, minor = (int(x) for x in rlcore.__version__.split(".")[:2])
    core_next = f"{major}.{minor + 1}" if major == 0 else f"{major + 1}"
    what, try_it, needs = ABOUT[kind]
    values = {
        "name": name,
        "module": module,
        "Class": "".join(part.capitalize() for part in module.split("_")),
        "item": f"{module}_keyword",
        "kind": kind.value,
    }
    requirements = [f"rlcore>={major}.{minor},<{core_next}", *needs]
    values["dependencies"] = ", ".join(f'"{r}"' for r in requirements)
    values["what"] = Template(what).substitute(values)
    values["try_it"] = Template(try_it).substitute(values)
    for rel, template in _template_files(kind).items():
        path = root / rel.replace("PKG", f"rlcore_plugin_{module}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Template(template).substitute(values))
    typer.echo(  # plain: commands must not wrap
        f"Created {root}/ ({kind.value}). Next:\n  pip install -e {root}"
        f"    # offline: pip install --no-build-isolation -e {root}\n"
        f"  rlcore list-plugins\n  pytest {root}/tests")


def register(app: typer.Typer) -> None:
    """Attach this command to the root app."""
    app.command("new-plugin")(new_plugin)
