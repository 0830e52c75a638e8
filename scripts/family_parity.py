"""Print the parity table of model families: max |logit diff| against transformers per test variant.

    python scripts/family_parity.py plugins/rlcore-plugin-mixtral plugins/rlcore-plugin-qwen3-moe

Each package's ``tests/test_conformance.py`` names its families and variants; the numbers are
those the conformance suite asserts <= 1e-4 (CPU, fp32, the packed batch of uneven lengths).
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from pathlib import Path

import torch

from rlcore.models.hf_io import load_pretrained, save_pretrained
from rlcore.models.moe import aux_loss
from rlcore.testing.families import (
    SEQLENS,
    FamilyConformance,
    core_from_hf,
    core_logits,
    hf_causal_lm,
    hf_logits_packed,
    pad,
    random_sequences,
)


def suites(package: Path) -> list[type[FamilyConformance]]:
    """The FamilyConformance subclasses of a package's tests/test_conformance.py."""
    spec = importlib.util.spec_from_file_location(f"_parity_{package.name}",
                                                  package / "tests" / "test_conformance.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [v for v in vars(module).values() if isinstance(v, type)
            and issubclass(v, FamilyConformance) and v.family is not None]


def row(fam, variant: dict) -> list[str]:
    """Max |diff| of packed logits, after rlcore save -> HF load, HF save -> rlcore load; aux loss."""
    import transformers

    hf = hf_causal_lm(fam, variant)
    model = core_from_hf(fam, hf)
    seqs = random_sequences(model.config.vocab_size, SEQLENS)
    ref, ours = hf_logits_packed(hf, seqs), core_logits(model, seqs)
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        save_pretrained(model, fam.name, a, family=fam)
        theirs = hf_logits_packed(transformers.AutoModelForCausalLM.from_pretrained(a).eval(), seqs)
        hf.save_pretrained(b)
        loaded = core_logits(load_pretrained(b, family=fam)[0].eval(), seqs)
    cells = [(ours - ref).abs().max(), (theirs - ours).abs().max(), (loaded - ref).abs().max()]
    core_logits(model, seqs)
    ours_aux = aux_loss(model)
    if ours_aux is not None:
        ids, mask = pad(seqs)
        with torch.no_grad():
            hf_aux = hf(input_ids=ids, attention_mask=mask, output_router_logits=True).aux_loss
        cells.append((ours_aux - hf_aux).abs())
    return [f"{float(c):.1e}" for c in cells] + ([] if ours_aux is not None else ["-"])


def main(packages: list[str]) -> None:
    torch.set_num_threads(1)
    print("| family | variant | logits, packed vs HF padded | rlcore save -> HF load | "
          "HF save -> rlcore load | router aux loss |")
    print("|---|---|---|---|---|---|")
    for package in packages:
        for suite in suites(Path(package)):
            for name, variant in suite.variants.items():
                print(f"| {suite.family.name} | {name} | " + " | ".join(row(suite.family, variant)) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
