"""``rlcore export`` end to end: a clean HF directory that transformers loads to equal logits."""

import json

import pytest
import torch
from typer.testing import CliRunner

from rlcore.cli.app import app
from rlcore.models.hf_io import load_pretrained

runner = CliRunner()


def logits_of(sft_run, out):
    """The checkpoint's logits in rlcore and the export's in transformers, on one sequence."""
    import transformers

    ours, _ = load_pretrained(sft_run / "checkpoints" / "step-00000030" / "actor")
    ids = torch.tensor([5, 9, 17, 4, 30, 11, 2, 8])
    want = ours.eval()(ids, torch.tensor([0, len(ids)]))
    hf = transformers.AutoModelForCausalLM.from_pretrained(out).eval()
    with torch.no_grad():
        return want, hf(ids[None]).logits[0]


def test_export_writes_a_clean_hf_dir_with_equal_logits(sft_run, tmp_path):
    """Weights, config, generation config and tokenizer; no engine state; 0644; same logits."""
    out = tmp_path / "exported"
    result = runner.invoke(app, ["export", str(sft_run), str(out)])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json"} <= set(names)
    assert not [n for n in names if "engine" in n or "optimizer" in n or n.endswith(".txt")]
    assert {p.stat().st_mode & 0o777 for p in out.iterdir()} == {0o644}
    want, got = logits_of(sft_run, out)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_export_bf16_and_refusals(sft_run, tmp_path):
    """--dtype bf16 halves the weights and still loads; a non-empty OUT is never overwritten."""
    out = tmp_path / "bf16"
    assert runner.invoke(app, ["export", str(sft_run), str(out), "--dtype", "bf16"]).exit_code == 0
    assert json.loads((out / "config.json").read_text())["dtype"] == "bfloat16"
    want, got = logits_of(sft_run, out)
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(got.float(), want, atol=0.1, rtol=0.05)
    result = runner.invoke(app, ["export", str(sft_run), str(out)])
    assert result.exit_code != 0 and "already holds files" in str(result.exception)
    assert runner.invoke(app, ["export", str(sft_run), str(out), "--force"]).exit_code == 0


@pytest.mark.parametrize("role, expect", [("critic", "no HF model for role 'critic'; its roles: actor")])
def test_export_names_the_roles_a_checkpoint_has(sft_run, tmp_path, role, expect):
    """An unknown --role lists the roles there are."""
    result = runner.invoke(app, ["export", str(sft_run), str(tmp_path / "x"), "--role", role])
    assert result.exit_code != 0 and expect in str(result.exception)
