"""The docs' figures of embedded runs live in blocks that scripts/measure_docs.py writes.

Cheap: no training. Every ``<!-- measured: NAME -->`` block names a known measurement and is
closed, and each block holds what ``measure_docs.py --render`` draws from docs/measured.json.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "measure_docs.py"


def load():
    spec = importlib.util.spec_from_file_location("measure_docs", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["measure_docs"] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


def test_check_passes_on_the_docs():
    done = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "every measured block" in done.stdout


def test_check_names_unknown_unclosed_and_nested_blocks(tmp_path):
    md = load()
    page = tmp_path / "page.md"
    page.write_text("<!-- measured: nosuch -->\nx\n<!-- /measured -->\n"
                    "<!-- measured: sft -->\n<!-- measured: ppo -->\n<!-- /measured -->\n"
                    "<!-- /measured -->\n<!-- measured: grpo-remax -->\n")
    problems = md.check([page])
    assert any("unknown measurement 'nosuch'" in p and "known: sft" in p for p in problems)
    assert any(":5: a measured block inside the one of line 4" in p for p in problems)
    assert any(":7: <!-- /measured --> with no block open" in p for p in problems)
    assert any(":8: measured block never closed" in p for p in problems)


def test_every_view_is_in_the_docs_and_every_run_feeds_a_view():
    md = load()
    text = "\n".join(p.read_text() for p in md.DOC_FILES if p not in md.EXCLUDED)
    assert {n for n in md.VIEWS if f"<!-- measured: {n} -->" not in text} == set()
    assert set(md.RUNS) == {n for v in md.VIEWS.values() for n in v.needs}


def test_blocks_hold_what_render_draws_from_the_stored_results(tmp_path):
    # Hand edits inside a block are overwritten by the next measurement: make them there.
    md = load()
    results = json.loads(md.RESULTS.read_text())
    stale = []
    for path in md.DOC_FILES:
        if path in md.EXCLUDED or "<!-- measured:" not in path.read_text():
            continue
        copy = tmp_path / path.name
        copy.write_text(path.read_text())
        md.rewrite(results, [copy])
        if copy.read_text() != path.read_text():
            stale.append(str(path.relative_to(ROOT)))
    assert not stale, f"run `python scripts/measure_docs.py --render`; stale blocks in {stale}"


def test_rewrite_leaves_blocks_whose_runs_were_not_measured(tmp_path):
    md = load()
    page = tmp_path / "page.md"
    page.write_text("<!-- measured: ppo -->\nold\n<!-- /measured -->\n")
    md.rewrite({"sft": {}}, [page])
    assert "old" in page.read_text()
