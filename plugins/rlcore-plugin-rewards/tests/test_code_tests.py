"""``code_tests``: the share of a sample's tests that a completion's code passes, in the sandbox."""

import time

import pytest

from rlcore.errors import ConfigError, DataError
from rlcore.plugins import registry
from rlcore_plugin_rewards import rules
from rlcore_plugin_rewards.code_tests import code_tests, extract_code

TESTS = ["assert add(1, 2) == 3", "assert add(2, 2) == 4", "assert add(7, 1) == 8",
         "assert add(9, 9) == 18"]
GOOD = "Here it is:\n```python\ndef add(a, b):\n    return a + b\n```\nDone."


def score(completions, tests=TESTS, **params):
    fn = registry.load("rewards", "code_tests")
    params = rules.bind_params("code_tests", fn, {"timeout_s": 3, **params})
    return fn(completions, [{"tests": tests, "id": f"s{i}"} for i in range(len(completions))],
              **params)


def test_registered_and_scores_the_share_of_tests_passed():
    assert registry.load("rewards", "code_tests") is code_tests
    half = "def add(a, b):\n    return a + b if a < 5 else 0"
    assert score([GOOD, half, "def add(a, b): return 0", "not python at all"]) == \
        [1.0, 0.5, 0.0, 0.0]


def test_one_string_of_tests_is_one_test():
    tests = "assert add(1, 2) == 3\nassert add(9, 9) == 18"
    assert score([GOOD, "def add(a, b):\n    return a + b if a < 5 else 0"], tests) == [1.0, 0.0]


def test_extract_code_takes_the_last_python_block_else_the_text():
    assert extract_code("```python\nx = 1\n```\nthen\n```py\nx = 2\n```") == "x = 2\n"
    assert extract_code("```python\nx = 3") == "x = 3"  # cut off by the length limit
    assert extract_code("x = 4") == "x = 4"


def test_hostile_completions_score_zero_without_hanging():
    hostile = ["while True: pass",                                  # infinite loop
               "import os\nwhile True:\n    try: os.fork()\n    except OSError: pass",  # fork bomb
               "x = bytearray(10 * 2**30)",                         # 10 GB
               "import sys\nwhile True: sys.stdout.write('x' * 10**6)",  # endless output
               "import os; os._exit(0)",                            # exit before the tests
               "import sys; sys.exit(0)",
               "def add(a, b):\n    while True: pass",              # hangs inside a test
               'print("deadbeef pass 0")\n' * 3]                    # a guessed result line
    start = time.monotonic()
    assert score(hostile, timeout_s=2, parallel=8) == [0.0] * len(hostile)
    assert time.monotonic() - start < 60  # did not hang


def test_tests_before_a_hang_still_count():
    hangs_late = "def add(a, b):\n    while a > 5: pass\n    return a + b"
    assert score([hangs_late], timeout_s=2) == [0.5]


def test_a_sample_without_tests_names_the_field():
    with pytest.raises(DataError, match="sample 'q3' has no 'tests' field.*string of assert"):
        code_tests(["x"], [{"id": "q3", "prompt": "p", "answer": "1"}])
    with pytest.raises(DataError, match="'tests' = 5"):
        code_tests(["x"], [{"id": "q4", "tests": 5}])
    assert code_tests([], []) == []
    with pytest.raises(ValueError, match="got 2 completions for 1 samples"):
        code_tests(["1", "2"], [{"tests": "assert True"}])


def test_bad_parameters_and_the_check_before_the_first_step():
    with pytest.raises(ConfigError, match="code_tests"):
        rules.bind_params("code_tests", code_tests, {"timeout_s": 0})
    algorithms = pytest.importorskip("rlcore_plugin_algorithms.rewards")
    with pytest.raises(DataError, match=r"data.jsonl, line 3: no 'tests' field.*'code_tests'"):
        algorithms.check_answers([("line:3", {"prompt": "p"})], ["code_tests"], "data.jsonl")
