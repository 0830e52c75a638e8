"""A plugin that declares the plugin API it is written for (RLCORE_API) is listed incompatible
on a core with another API, and never registered; one that supports this API loads."""

import pytest

import rlcore
from rlcore.plugins import registry

REWARD = '''
import rlcore
from rlcore.plugins.records import RewardFunctionRecord

RLCORE_API = {api}

@rlcore.hookimpl
def rlcore_reward_functions():
    return [RewardFunctionRecord("api_probe", impl="builtins:len")]
'''


@pytest.mark.parametrize("api, status", [
    (rlcore.API_VERSION, "active"),
    ((rlcore.API_VERSION - 1, rlcore.API_VERSION), "active"),
    (None, "active"),  # says nothing: loaded as before
    (rlcore.API_VERSION - 1, "incompatible"),
    (rlcore.API_VERSION + 1, "incompatible"),
    ("'two'", "error"),
])
def test_the_declared_api_decides_whether_it_loads(fake_distribution, rlcore_plugins, api, status):
    fake_distribution("probe", REWARD.format(api=api))
    rlcore_plugins.reload()
    info = rlcore_plugins.status()["probe"]
    assert info.status == status, info.reason
    assert ("api_probe" in registry.items("rewards")) is (status == "active")


def test_the_reason_names_both_api_versions(fake_distribution, rlcore_plugins):
    fake_distribution("probe", REWARD.format(api=1))
    rlcore_plugins.reload()
    assert rlcore_plugins.status()["probe"].reason == (
        f"written for plugin API 1, but rlcore {rlcore.__version__} has plugin API "
        f"{rlcore.API_VERSION}; update the plugin (CHANGELOG.md says what changed) or install "
        "an rlcore with plugin API 1")
