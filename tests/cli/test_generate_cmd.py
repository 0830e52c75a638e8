"""``rlcore generate`` and ``rlcore chat`` through the CLI, on a trained checkpoint."""

import json
import shutil

from typer.testing import CliRunner

from rlcore.cli.app import app
from rlcore.data.tokenizer import load_tokenizer
from rlcore.models.generation import GenerationConfig, generate
from rlcore.models.hf_io import load_pretrained

runner = CliRunner()


def test_generate_is_the_core_sampler_on_the_checkpoint(sft_run, tmp_path):
    """Greedy replies equal the core sampler's; prompts come from arguments and files."""
    actor = sft_run / "checkpoints" / "step-00000030" / "actor"
    model, _ = load_pretrained(actor)
    tok = load_tokenizer(actor)
    prompts = ["12+30=", "7+8=", "41+41="]
    out = generate(model.eval(), [tok(p)["input_ids"] for p in prompts],
                   GenerationConfig(max_new_tokens=8, greedy=True, eos_token_ids=[tok.eos_token_id]))
    want = tok.batch_decode([t.tolist() for t in out.tokens], skip_special_tokens=True)
    (tmp_path / "p.txt").write_text("7+8=\n\n41+41=\n")
    result = runner.invoke(app, ["generate", str(sft_run), "12+30=", "--file", str(tmp_path / "p.txt"),
                                 "--max-new-tokens", "8", "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["prompt"] for r in rows] == prompts and [r["completion"] for r in rows] == want
    sampled = runner.invoke(app, ["generate", str(sft_run), "12+30=", "-n", "3", "-t", "1", "--json"])
    assert len(sampled.stdout.splitlines()) == 3


def test_chat_reads_stdin_through_the_chat_template(sft_run):
    """One reply per line; /reset starts over, so the same question gets the same greedy reply."""
    actor = sft_run / "checkpoints" / "step-00000030" / "actor"
    tok = load_tokenizer(actor)
    model, _ = load_pretrained(actor)
    text = tok.apply_chat_template([{"role": "user", "content": "12+30="}], tokenize=False,
                                   add_generation_prompt=True)
    out = generate(model.eval(), [tok(text, add_special_tokens=False)["input_ids"]],
                   GenerationConfig(max_new_tokens=6, greedy=True, eos_token_ids=[tok.eos_token_id]))
    want = tok.decode(out.tokens[0].tolist(), skip_special_tokens=True)
    result = runner.invoke(app, ["chat", str(sft_run), "-t", "0", "--max-new-tokens", "6"],
                           input="12+30=\n/reset\n12+30=\n/exit\nnever read\n")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [want, want]


def test_chat_without_a_template_and_generate_without_prompts_say_what_to_do(sft_run, tmp_path):
    """One line each: what is missing and what to do."""
    plain = tmp_path / "plain"
    shutil.copytree(sft_run / "checkpoints" / "step-00000030" / "actor", plain)
    (plain / "chat_template.jinja").unlink()
    result = runner.invoke(app, ["chat", str(plain)], input="hi\n")
    assert result.exit_code != 0 and "has no chat template; use `rlcore generate`" in str(result.exception)
    result = runner.invoke(app, ["generate", str(sft_run)])
    assert result.exit_code != 0 and str(result.exception).startswith("no prompts: give them")
