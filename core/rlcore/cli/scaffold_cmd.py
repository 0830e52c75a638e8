"""``rlcore new-plugin NAME --kind KIND``: scaffold an installable plugin package whose tests pass.

The files come from ``cli/templates/`` (``base/`` for every kind, then ``<kind>/``), filled in
with :class:`string.Template` (``$name``, ``$module``, ``$Class``, ...); ``PKG`` in a path
becomes ``rlcore_plugin_<module>``. The kinds themselves, their hooks (``$hook``) and record
classes (``$record``), are the plugin kernel's (:data:`rlcore.plugins.records.KINDS`); this
module only adds what a scaffold needs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from pathlib import Path
from string import Template

import typer

import rlcore
from rlcore.errors import RlcoreError
from rlcore.plugins.records import KINDS, Kind


@dataclass(frozen=True)
class Scaffold:
    """The template of one plugin kind: ``templates/<singular>/`` plus what the README says.

    ``item`` is the registered name (``$module`` is the plugin name with '_' for '-');
    ``what``, ``try_it`` and ``about`` fill the README; ``needs`` are extra requirements.
    """

    item: str
    what: str
    try_it: str
    needs: tuple[str, ...] = ()
    about: str = ""


# Scaffolds by the singular of a kind in records.KINDS; adding one: ``templates/<singular>/``
# and one entry here (a name that is not a registered kind fails at import).
SCAFFOLDS: dict[str, Scaffold] = {
    "reward": Scaffold(
        "${module}_keyword", "a reward function, `$item`",
        "rlcore train grpo --set 'reward.functions=[$item]'"),
    "experiment": Scaffold(
        "$name", "an experiment, `$name` (SFT that also learns the prompt)",
        "rlcore train $name", ("rlcore-plugin-algorithms", "rlcore-plugin-datasets")),
    "dataset": Scaffold(
        "${module}_qa", "a dataset, `$item` (question/answer rows under a prompt template)",
        "rlcore train sft --set dataset.name=$item --set dataset.path=qa.jsonl",
        ("rlcore-plugin-algorithms", "rlcore-plugin-datasets"),
        'Each line of `qa.jsonl` is a row such as `{"question": "12+30=", "answer": '
        '"42"}`; the prompt is `Question: {question}\\nAnswer: ` unless you set '
        "`--set dataset.options.template='Q: {question} A: '` (any row field can "
        "appear in braces). The loss is on the answer."),
    "interface": Scaffold(
        "${module}_length_reward", "a model interface, `$item` (a reward node that scores "
        "response length in tokens)", "rlcore train grpo --set reward.interface=$item "
        "--set reward.interface_args.target_tokens=8", ("rlcore-plugin-algorithms",),
        "A response of `target_tokens` tokens scores 1; each token more or fewer "
        "costs 1/target_tokens. The run logs the mean response length as "
        "`rew_inf/response_tokens`."),
    "family": Scaffold(
        "$name", "a model family, `$name` (StarCoder2 declared on `DecoderFamily`)",
        "rlcore train sft --set actor.preset=$name", ("rlcore-plugin-algorithms",)),
    "environment": Scaffold(
        "${module}_calculator", "an environment, `$item` (sums, with an `add` tool)",
        "rlcore train grpo --set env.name=$item", (),
        "An episode asks for a sum; the model may call `add(a, b)`, then answers. `tasks()` gives "
        "questions, `demonstration()` a correct episode; `tests/` runs `EnvironmentConformance`."),
}
PLUGIN_KINDS: dict[str, Kind] = {k.singular: k for k in KINDS.values()}
SCAFFOLD_KINDS: dict[str, Kind] = {name: PLUGIN_KINDS[name] for name in SCAFFOLDS}
PluginKind = StrEnum("PluginKind", {name: name for name in SCAFFOLDS})  # typer lists the choices


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

    `--kind` picks what it registers (MOD is NAME with '_' for '-'): `reward`, a keyword
    reward function `MOD_keyword` that GRPO uses when named in `reward.functions`;
    `experiment`, an experiment `NAME` (SFT that also learns the prompt); `dataset`,
    `MOD_qa`, question/answer rows under a prompt template, selected with
    `--set dataset.name=MOD_qa`; `interface`, `MOD_length_reward`, a reward node scoring
    response length, selected with `--set reward.interface=MOD_length_reward`; `family`, a
    model family `NAME` (StarCoder2, declared on DecoderFamily) that `--set actor.preset=NAME`
    trains and saves; `environment`, `MOD_calculator`, sums with an `add` tool, selected
    with `--set env.name=MOD_calculator`.
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
    spec, plugin_kind = SCAFFOLDS[kind.value], SCAFFOLD_KINDS[kind.value]
    values = {
        "name": name,
        "module": module,
        "Class": "".join(part.capitalize() for part in module.split("_")),
        "kind": kind.value,
        "hook": plugin_kind.hook,
        "record": plugin_kind.record.__name__,
        "api": str(rlcore.API_VERSION),
    }
    values["item"] = Template(spec.item).substitute(values)
    requirements = [f"rlcore>={major}.{minor},<{core_next}", *spec.needs]
    values["dependencies"] = ", ".join(f'"{r}"' for r in requirements)
    values["what"] = Template(spec.what).substitute(values)
    values["try_it"] = Template(spec.try_it).substitute(values)
    values["about"] = Template(spec.about).substitute(values) + "\n\n" if spec.about else ""
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
