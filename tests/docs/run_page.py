"""Run the python examples of one markdown page, in order, in one namespace (``__main__``).

    python tests/docs/run_page.py docs/models.md

Tracebacks point at the page and line of the failing example. Blocks marked ``not run``
are compiled and only their imports of rlcore run; ``no main`` blocks run with a
``__name__`` other than ``"__main__"``; ``synopsis`` blocks are skipped.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from doc_blocks import PYTHON, blocks, snippet_includes  # noqa: E402


def run(path: Path) -> None:
    """Execute the page's python blocks as a reader would, one after the other."""
    namespace: dict = {"__name__": "__main__"}
    sys.argv = [str(path)]
    for block in blocks(path):
        if block.lang not in PYTHON or block.kind == "synopsis" or snippet_includes(block):
            continue
        if block.setup_code:
            exec(compile(block.setup_code, f"{block.where} (docs-test setup)", "exec"), namespace)
        tree = compile("\n" * (block.line - 1) + block.code, str(block.path), "exec",
                       flags=ast.PyCF_ONLY_AST)
        if block.kind == "not run":  # only check that rlcore's names exist
            tree.body = [n for n in tree.body if _imports_rlcore(n)]
        print(f"--- {block.where} ({block.kind})", flush=True)
        namespace["__name__"] = "docs_example" if block.kind == "no main" else "__main__"
        exec(compile(tree, str(block.path), "exec"), namespace)
        if block.kind in ("run", "no main", "setup"):
            check_interfaces(namespace, block.where)


def _imports_rlcore(node: ast.stmt) -> bool:
    if isinstance(node, ast.ImportFrom):
        return (node.module or "").startswith("rlcore")
    return isinstance(node, ast.Import) and all(a.name.startswith("rlcore") for a in node.names)


def check_interfaces(namespace: dict, where: str) -> None:
    """Every MFC the example built names an interface that exists and takes its arguments."""
    import inspect

    from rlcore.dfg import MFC, DataflowGraph
    from rlcore.plugins.registry import resolve_impl

    found: list = []
    for value in namespace.values():
        if isinstance(value, DataflowGraph):
            found += value.mfcs
        elif isinstance(value, MFC):
            found.append(value)
        elif isinstance(value, list | tuple):
            found += [v for v in value if isinstance(v, MFC)]
    for mfc in found:
        try:
            cls = resolve_impl("interfaces", mfc.interface)
            inspect.signature(cls).bind(**mfc.interface_args)
        except Exception as exc:
            raise AssertionError(f"{where}: MFC {mfc.name!r} names interface "
                                 f"{mfc.interface!r} with args {mfc.interface_args}: {exc}") from exc


if __name__ == "__main__":
    run(Path(sys.argv[1]).resolve())
