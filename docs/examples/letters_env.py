"""An environment plugin: count letters in words with a ``count_letter`` tool.

The guide docs/guides/new-environment.md walks through this file. Run it
(``python docs/examples/letters_env.py``): it registers the environment in this process,
plays one demonstration through ``step``, then trains the tiny built-in model on it with
GRPO for two steps (a warm start on the demonstrations first).
"""

from __future__ import annotations

# --8<-- [start:env]
import random
from typing import Any

from rlcore.sdk import ToolEnvironment, ToolError, render_call, tool_schema

WORDS = ["banana", "strawberry", "committee", "bookkeeper", "mississippi", "assessment",
         "parallel", "letter", "coffee", "balloon", "success", "address"]


class Letters(ToolEnvironment):
    """How many times does a letter occur in a word? The tool counts; reward 1 when right."""

    tools = [tool_schema("count_letter", "How many times letter occurs in word",
                         {"word": {"type": "string"}, "letter": {"type": "string"}})]
    # keys a run gets unless it sets them (the preset's defaults are tuned for one short answer)
    defaults = {"gen.max_new_tokens": 80, "env.max_turns": 2, "env.max_tokens": 140}

    def call(self, name: str, arguments: dict[str, Any]) -> str:
        word, letter = arguments.get("word"), arguments.get("letter")
        if not isinstance(word, str) or not isinstance(letter, str) or len(letter) != 1:
            raise ToolError("count_letter takes a word and a single letter")
        return str(word.count(letter))

    def finish(self, text: str) -> float:
        return float(text.strip() == self.sample["answer"])

    @classmethod
    def tasks(cls, split: str, size: int, seed: int) -> list[dict[str, Any]]:
        """Words of even index train, of odd index are held out."""
        rng, words = random.Random(seed), WORDS[split == "eval"::2]
        rows = []
        for _ in range(size):
            word = rng.choice(words)
            letter = rng.choice(sorted(set(word)))
            rows.append({"prompt": f"{letter} in {word}?", "answer": str(word.count(letter)),
                         "word": word, "letter": letter})
        return rows

    def demonstration(self, sample: dict[str, Any]) -> list[dict[str, Any]]:
        call = render_call("count_letter", {"word": sample["word"], "letter": sample["letter"]})
        return [{"role": "user", "content": sample["prompt"]},
                {"role": "assistant", "content": call},
                {"role": "tool", "content": sample["answer"]},
                {"role": "assistant", "content": sample["answer"]}]
# --8<-- [end:env]


# --8<-- [start:register]
import rlcore  # noqa: E402
from rlcore.plugins.records import EnvironmentRecord  # noqa: E402


@rlcore.hookimpl
def rlcore_environments() -> list[EnvironmentRecord]:
    return [EnvironmentRecord("letters", impl="letters_env:Letters",
                              doc="count letters in words with a count_letter tool")]
# --8<-- [end:register]


def main() -> None:
    """Register the plugin here, replay a demonstration, then train two GRPO steps."""
    import sys
    import tempfile

    from rlcore.cli.train_cmd import resolve_experiment
    from rlcore.plugins.manager import get_manager
    from rlcore.runtime.loop import run
    from rlcore.sdk import parse_tool_calls

    get_manager().register(sys.modules[__name__], name="letters_env")
    sample = Letters.tasks("train", 1, seed=0)[0]
    env = Letters()
    env.reset(sample)
    demo = env.demonstration(sample)
    result = env.step(parse_tool_calls(demo[1]["content"]).message(demo[1]["content"]))
    print("tool answered:", result.observations)
    assert result.observations[0]["content"] == demo[2]["content"] and not result.done
    final = env.step({"role": "assistant", "content": demo[3]["content"]})
    assert final.done and final.reward == 1.0

    _, config = resolve_experiment("grpo", None, [
        "env.name=letters", "warm_start.sft_steps=20", "run.max_steps=2", "run.batch_size=4",
        "gen.n_samples=4", "run.eval_every=2", "eval.size=8", "run.progress=false"])
    with tempfile.TemporaryDirectory() as tmp:
        summary = run("grpo", config, tmp, resume=False)
    print({k: round(v, 3) for k, v in summary["last"].items() if k.startswith(("env/", "eval/"))})
    assert "env/turns_mean" in summary["last"] and "eval/accuracy" in summary["last"]


if __name__ == "__main__":
    main()
