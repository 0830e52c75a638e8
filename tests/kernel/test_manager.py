"""The plugin manager: every loader path, from real (fake) distributions on disk."""

import pytest

from rlcore.errors import PluginConflictError, PluginLoadError, UnknownItemError
from rlcore.plugins import registry

GOOD = '''
import rlcore
from rlcore.plugins.records import RewardFunctionRecord

@rlcore.hookimpl
def rlcore_reward_functions():
    return [RewardFunctionRecord("{item}", impl="builtins:len", doc="a test reward"{extra})]
'''


def good(item, extra=""):
    return GOOD.format(item=item, extra=extra)


def test_good_plugin_is_active_and_provides(fake_distribution, rlcore_plugins):
    fake_distribution("alpha", good("alpha_reward"))
    rlcore_plugins.reload()
    info = rlcore_plugins.status()["alpha"]
    assert (info.status, info.dist, info.version) == ("active", "rlcore-plugin-alpha", "0.1.0")
    assert info.provides == {"rewards": ["alpha_reward"]}
    assert registry.load("rewards", "alpha_reward") is len


def test_import_error_is_recorded_and_others_still_load(fake_distribution, rlcore_plugins):
    fake_distribution("broken", "import does_not_exist_anywhere\n")
    fake_distribution("fine", good("fine_reward"))
    rlcore_plugins.reload()
    status = rlcore_plugins.status()
    assert status["broken"].status == "error"
    assert "ModuleNotFoundError" in status["broken"].reason
    assert "does_not_exist_anywhere" in status["broken"].traceback
    assert status["fine"].status == "active"


def test_incompatible_core_is_not_imported(fake_distribution, rlcore_plugins):
    fake_distribution("future", "raise RuntimeError('must not be imported')\n", requires=("rlcore>=9.0",))
    rlcore_plugins.reload()
    info = rlcore_plugins.status()["future"]
    assert info.status == "incompatible"
    assert "needs rlcore>=9.0" in info.reason and "0.1.0" in info.reason


def test_duplicate_name_names_both_distributions(fake_distribution, rlcore_plugins):
    fake_distribution("one", good("shared"), version="1.2.0")
    fake_distribution("two", good("shared"), version="3.4.0")
    rlcore_plugins.reload()
    with pytest.raises(PluginConflictError) as err:
        registry.get("rewards", "shared")
    message = str(err.value)
    assert "rlcore-plugin-one 1.2.0" in message and "rlcore-plugin-two 3.4.0" in message
    assert "override=True" in message


def test_explicit_override_replaces(fake_distribution, rlcore_plugins):
    fake_distribution("one", good("shared"))
    fake_distribution("two", good("shared", extra=", override=True").replace("builtins:len", "builtins:max"))
    rlcore_plugins.reload()
    assert registry.load("rewards", "shared") is max
    assert registry.provider("rewards", "shared").startswith("rlcore-plugin-two")


def test_block_and_allow_lists(fake_distribution, rlcore_plugins):
    fake_distribution("alpha", good("a_reward"))
    fake_distribution("beta", good("b_reward"))
    rlcore_plugins.reload(env={"RLCORE_PLUGINS_BLOCK": "rlcore-plugin-alpha"})
    status = rlcore_plugins.status()
    assert status["alpha"].status == "disabled" and "RLCORE_PLUGINS_BLOCK" in status["alpha"].reason
    assert status["beta"].status == "active"
    rlcore_plugins.reload(env={"RLCORE_PLUGINS_ALLOW": "alpha"})
    status = rlcore_plugins.status()
    assert status["alpha"].status == "active"
    assert status["beta"].status == "disabled" and "RLCORE_PLUGINS_ALLOW" in status["beta"].reason


def test_strict_mode_raises(fake_distribution, rlcore_plugins):
    fake_distribution("broken", "import does_not_exist_anywhere\n")
    with pytest.raises(PluginLoadError, match="broken.*import failed"):
        rlcore_plugins.reload(env={"RLCORE_PLUGINS_STRICT": "1"})


def test_hook_returning_wrong_type_is_an_error(fake_distribution, rlcore_plugins):
    fake_distribution(
        "wrong",
        "import rlcore\n\n@rlcore.hookimpl\ndef rlcore_datasets():\n    return ['not a record']\n",
    )
    rlcore_plugins.reload()
    info = rlcore_plugins.status()["wrong"]
    assert info.status == "error" and "expected DatasetRecord" in info.reason


def test_unknown_name_suggests_close_matches(rlcore_plugins):
    class Plugin:
        import rlcore as _rlcore

        @_rlcore.hookimpl
        def rlcore_reward_functions(self):
            from rlcore.plugins.records import RewardFunctionRecord

            return [RewardFunctionRecord("length_bonus", impl="builtins:len")]

    rlcore_plugins.register(Plugin(), name="inproc")
    with pytest.raises(UnknownItemError, match="Did you mean 'length_bonus'"):
        registry.get("rewards", "length_bonuss")
    assert registry.load("rewards", "length_bonus") is len


def test_override_wins_whatever_the_load_order(fake_distribution, rlcore_plugins):
    # "aaa" loads before "zzz": the override arrives first and must still win.
    fake_distribution("aaa", good("shared", extra=", override=True").replace("builtins:len", "builtins:max"))
    fake_distribution("zzz", good("shared"))
    rlcore_plugins.reload()
    assert registry.load("rewards", "shared") is max
    assert registry.provider("rewards", "shared").startswith("rlcore-plugin-aaa")
    status = rlcore_plugins.status()
    assert status["aaa"].reason == "" and status["zzz"].reason == ""


def test_conflict_is_listed_and_fails_only_when_used(fake_distribution, rlcore_plugins):
    fake_distribution("one", good("shared"))
    fake_distribution("two", good("shared"))
    fake_distribution("other", good("other_reward"))
    rlcore_plugins.reload()
    rows = [(name, origin, note) for name, _, origin, note in registry.listing("rewards") if name == "shared"]
    assert rows == [("shared", "rlcore-plugin-one 0.1.0", "conflict"),
                    ("shared", "rlcore-plugin-two 0.1.0", "conflict")]
    assert "shared" not in registry.items("rewards")
    assert registry.load("rewards", "other_reward") is len
    with pytest.raises(PluginConflictError, match="reward 'shared' is registered by both"):
        registry.get("rewards", "shared")


@pytest.mark.parametrize("body, shown", [
    ("import sys\nsys.exit(3)\n", "sys.exit(3)"),
    ("raise SystemExit('bye')\n", "sys.exit('bye')"),
    ("raise KeyboardInterrupt\n", "KeyboardInterrupt"),
])
def test_import_that_exits_is_an_error_not_an_exit(fake_distribution, rlcore_plugins, body, shown):
    fake_distribution("quitter", body)
    fake_distribution("fine", good("fine_reward"))
    rlcore_plugins.reload()
    status = rlcore_plugins.status()
    assert status["quitter"].status == "error" and shown in status["quitter"].reason
    assert status["fine"].status == "active"


def test_hanging_import_is_stopped_after_the_time_limit(fake_distribution, rlcore_plugins, caplog):
    fake_distribution("sleeper", "import time\ntime.sleep(600)\n")
    fake_distribution("fine", good("fine_reward"))
    rlcore_plugins.reload(env={"RLCORE_PLUGIN_IMPORT_TIMEOUT": "0.5"})
    status = rlcore_plugins.status()
    assert status["sleeper"].status == "error"
    assert "did not finish within 0.5 s" in status["sleeper"].reason
    assert "RLCORE_PLUGIN_IMPORT_TIMEOUT" in caplog.text and "sleeper" in caplog.text
    assert status["fine"].status == "active"


def test_registration_hook_that_exits_is_an_error(fake_distribution, rlcore_plugins):
    fake_distribution("exiter", "import sys, rlcore\n\n@rlcore.hookimpl\ndef rlcore_datasets():\n    sys.exit(1)\n")
    fake_distribution("fine", good("fine_reward"))
    rlcore_plugins.reload()
    status = rlcore_plugins.status()
    assert status["exiter"].status == "error" and "rlcore_datasets() raised sys.exit(1)" in status["exiter"].reason
    assert registry.load("rewards", "fine_reward") is len


WRAPPER = '''
import rlcore
from rlcore.plugins.records import RewardFunctionRecord

@rlcore.hookimpl(wrapper=True)
def rlcore_reward_functions():
    results = yield
    kept = [[r for r in result if r.name != "dropped"] for result in results]
    return kept + [[RewardFunctionRecord("added_by_wrapper", impl="builtins:min")]]
'''


def test_registration_hooks_go_through_the_relay_wrappers_work(fake_distribution, rlcore_plugins):
    fake_distribution("filtered", good("dropped"))
    fake_distribution("wrapping", WRAPPER)
    rlcore_plugins.reload()
    assert "dropped" not in registry.items("rewards")
    assert registry.load("rewards", "added_by_wrapper") is min
    assert registry.provider("rewards", "added_by_wrapper").startswith("rlcore-plugin-wrapping")
    assert rlcore_plugins.status()["wrapping"].status == "active"


def test_registration_hooks_honour_tryfirst_and_trylast(rlcore_plugins):
    import rlcore

    calls = []

    class Late:
        @rlcore.hookimpl(trylast=True)
        def rlcore_backends(self):
            calls.append("late")
            return []

    class Early:
        @rlcore.hookimpl(tryfirst=True)
        def rlcore_backends(self):
            calls.append("early")
            return []

    rlcore_plugins.register(Early(), name="early")
    calls.clear()
    rlcore_plugins.register(Late(), name="late")  # registered last: pluggy alone would call it first
    assert calls == ["early", "late"]


def test_core_requirement_with_a_marker_is_still_checked(fake_distribution, rlcore_plugins):
    fake_distribution("future", "raise RuntimeError('must not be imported')\n",
                      requires=('rlcore>=1,<2; python_version >= "3"',))
    rlcore_plugins.reload()
    info = rlcore_plugins.status()["future"]
    assert info.status == "incompatible" and "needs rlcore<2,>=1" in info.reason


def test_two_overrides_of_one_name_are_a_conflict(fake_distribution, rlcore_plugins):
    fake_distribution("one", good("shared", extra=", override=True"))
    fake_distribution("two", good("shared", extra=", override=True"))
    rlcore_plugins.reload()
    with pytest.raises(PluginConflictError, match="registered with override=True by both rlcore-plugin-one"):
        registry.get("rewards", "shared")
