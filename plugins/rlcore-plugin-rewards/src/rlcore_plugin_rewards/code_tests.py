"""``code_tests``: run the code of a completion against the sample's tests in the sandbox
(:mod:`rlcore.agents.sandbox`) and score the share that pass."""

from __future__ import annotations

import re
import secrets
from concurrent.futures import ThreadPoolExecutor

from rlcore.sdk import DataError
from rlcore_plugin_rewards.rules import _check_lengths, _checks_on_no_completions, _param_error

_FENCE = re.compile(r"```(?:python|py|python3)[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL | re.IGNORECASE)

# The program the sandbox runs: the code (as module ``solution``, so a ``__main__`` block does
# not run), then each test on its own in the code's namespace, each printing a line tagged with
# a per-run nonce as it ends, so a hang or a crash still credits the tests done before it.
_HARNESS = """
_rl_code, _rl_tests, _rl_nonce = {code!r}, {tests!r}, {nonce!r}
_rl_ns = {{"__name__": "solution"}}
try:
    exec(compile(_rl_code, "solution.py", "exec"), _rl_ns)
except BaseException as _rl_err:
    print(_rl_nonce, "code", type(_rl_err).__name__, flush=True)
else:
    for _rl_i, _rl_test in enumerate(_rl_tests):
        try:
            exec(compile(_rl_test, f"test_{{_rl_i}}.py", "exec"), _rl_ns)
            print(_rl_nonce, "pass", _rl_i, flush=True)
        except BaseException as _rl_err:
            print(_rl_nonce, "fail", _rl_i, type(_rl_err).__name__, flush=True)
"""


def extract_code(completion: str) -> str:
    """The last ```python fenced block of ``completion`` (an unclosed one runs to the end),
    else the whole text."""
    blocks = _FENCE.findall(completion)
    return blocks[-1] if blocks else completion


def sample_tests(sample: dict, index: int) -> list[str]:
    """The sample's ``tests``: a string (one test) or a list of strings (one test each)."""
    tests = sample.get("tests")
    if isinstance(tests, str) and tests.strip():
        return [tests]
    if isinstance(tests, list) and tests and all(isinstance(t, str) for t in tests):
        return tests
    held = ", ".join(sorted(k for k, v in sample.items() if v is not None)) or "none"
    got = "no 'tests' field" if tests is None else f"'tests' = {tests!r:.80}"
    raise DataError(f"sample {sample.get('id', index)!r} has {got}; code_tests needs 'tests': a "
                    f"string of assert statements or a list of them (its fields: {held})")


def _score(code: str, tests: list[str], timeout_s: float, memory_mb: int) -> float:
    from rlcore.sdk import run_code

    nonce = secrets.token_hex(16)
    source = _HARNESS.format(code=code, tests=tests, nonce=nonce)
    result = run_code(source, timeout_s=timeout_s, memory_mb=memory_mb)
    passed = {line.split()[2] for line in result.stdout.splitlines()
              if line.startswith(nonce + " pass ")}
    return len(passed) / len(tests)


@_checks_on_no_completions
def code_tests(completions: list[str], samples: list[dict], *, timeout_s: float = 10.0,
               memory_mb: int = 512, parallel: int = 4) -> list[float]:
    """The share of the sample's ``tests`` that the completion's code passes, in the sandbox.

    The code is the completion's last ```python block, else its whole text. ``tests`` is a
    list of strings (each run on its own: the score is the share that pass, so 2 of 4 is
    0.5) or one string (one test: 1.0 when all of it runs without an error, else 0.0). The
    code and the tests run in one sandboxed process under the limits; a test that raises,
    and every test left when the process ends (a crash, sys.exit, a limit), fails.

    Parameters:
      timeout_s: wall-clock limit of each completion's run, tests included (default 10).
      memory_mb: address-space limit of each run (default 512).
      parallel: runs at once (default 4).
    """
    if not timeout_s > 0 or memory_mb < 16 or parallel < 1:
        raise _param_error("code_tests", f"need timeout_s > 0, memory_mb >= 16 and parallel "
                                         f">= 1; got {timeout_s}, {memory_mb} and {parallel}")
    _check_lengths(completions, samples)
    jobs = [(extract_code(c), sample_tests(s, i))
            for i, (c, s) in enumerate(zip(completions, samples, strict=True))]
    if not jobs:
        return []
    with ThreadPoolExecutor(min(parallel, len(jobs))) as pool:
        return list(pool.map(lambda job: _score(*job, timeout_s, memory_mb), jobs))


code_tests.required_fields = ("tests",)  # type: ignore[attr-defined]
