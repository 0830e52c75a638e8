"""Measure every family's parity with transformers and write the table in docs/families.md.

For each variant of each ``FamilyConformance`` class under plugins/*/tests and contrib/*/tests,
the table gives the max abs logit difference (core on the packed batch vs HF on the padded one,
the suite's ``test_logits_parity_packed_vs_padded``) and whether greedy generation is
token-identical, and is written between ``<!-- parity-table -->`` and ``<!-- /parity-table -->``.

    .venv/bin/python scripts/parity_table.py           # measure (about a minute) and rewrite
    .venv/bin/python scripts/parity_table.py --check   # the rows name every variant (no models)
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import platform
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "families.md"
START, END = "<!-- parity-table -->", "<!-- /parity-table -->"
HEADER = ["| family | variant | max abs logit diff | greedy = HF |", "|---|---|---|---|"]


def suites() -> list[tuple[str, str, type]]:
    """(family name, variant, class) of every conformance variant in the repo's tests."""
    from rlcore.testing.families import FamilyConformance

    found = []
    for path in sorted([*ROOT.glob("plugins/*/tests/test_*.py"), *ROOT.glob("contrib/*/tests/test_*.py")]):
        text = path.read_text()
        if not re.search(r"(Family|MoE)Conformance\)", text):  # MoEConformance: a subclass
            continue
        name = "parity_" + re.sub(r"\W", "_", str(path.relative_to(ROOT)))
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        for cls in vars(module).values():
            if isinstance(cls, type) and issubclass(cls, FamilyConformance) and cls.family is not None:
                found += [(cls.family.name, variant, cls) for variant in cls.variants]
    return found


def measure(cls: type, variant: str) -> tuple[float, bool]:
    """Max abs logit difference and greedy equality of one variant, as the suite computes them."""
    import torch

    from rlcore.models.generation import GenerationConfig, generate
    from rlcore.testing import families as f

    torch.set_num_threads(1)
    hf = f.hf_causal_lm(cls.family, cls.variants[variant])
    model = f.core_from_hf(cls.family, hf)
    seqs = f.random_sequences(model.config.vocab_size, f.SEQLENS)
    diff = float((f.core_logits(model, seqs) - f.hf_logits_packed(hf, seqs)).abs().max())
    prompts = f.random_sequences(model.config.vocab_size, f.PROMPT_LENS, seed=2)
    out = generate(model, [p.tolist() for p in prompts], GenerationConfig(max_new_tokens=10, greedy=True))
    ids, mask = f.pad(prompts, left=True)
    with torch.no_grad():
        ref = hf.generate(input_ids=ids, attention_mask=mask, max_new_tokens=10, min_new_tokens=10,
                          do_sample=False, pad_token_id=0, eos_token_id=None)
    same = all(out.tokens[i].tolist() == ref[i, ids.shape[1]:].tolist() for i in range(len(prompts)))
    return diff, same


def block(rows: list[str]) -> str:
    import torch
    import transformers

    stamp = (f"Written by `scripts/parity_table.py` on {datetime.date.today()}: torch {torch.__version__}, "
             f"transformers {transformers.__version__}, {platform.machine()} CPU, fp32.")
    return "\n".join([START, stamp, "", *HEADER, *rows, END])


def table_rows(text: str) -> list[str]:
    """The table rows between the markers of ``text`` (KeyError-free: [] when absent)."""
    if START not in text or END not in text:
        return []
    inner = text.split(START, 1)[1].split(END, 1)[0].splitlines()
    return [line for line in inner if line.startswith("|") and line not in HEADER]


def check() -> list[str]:
    """Problems with the docs' table: variants it lacks or names that no suite has."""
    want = {(fam, var) for fam, var, _ in suites()}
    got = {tuple(c.strip(" `") for c in row.strip("|").split("|")[:2]) for row in table_rows(PAGE.read_text())}
    return ([f"missing from docs/families.md: {fam} / {var}" for fam, var in sorted(want - got)]
            + [f"no such conformance variant: {fam} / {var}" for fam, var in sorted(got - want)])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="check the rows only, run no model")
    if parser.parse_args().check:
        problems = check()
        print("\n".join(problems) or "the parity table names every conformance variant")
        return 1 if problems else 0
    rows = []
    for fam, variant, cls in suites():
        diff, same = measure(cls, variant)
        rows.append(f"| `{fam}` | `{variant}` | {diff:.1e} | {'yes' if same else '**no**'} |")
        print(rows[-1], flush=True)
    text = PAGE.read_text()
    if START not in text:
        raise SystemExit(f"{PAGE} has no {START} ... {END} block to fill")
    head, rest = text.split(START, 1)
    PAGE.write_text(head + block(rows) + rest.split(END, 1)[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
