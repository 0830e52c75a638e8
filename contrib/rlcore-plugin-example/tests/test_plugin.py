"""The plugin loads through its entry point and its reward works."""

from rlcore.plugins import registry
from rlcore.plugins.manager import get_manager


def test_plugin_is_active():
    status = {p.name: p.status for p in get_manager().plugins}
    assert status.get("example") == "active", status


def test_reward_is_registered_and_scores():
    reward = registry.load("rewards", "example_keyword")
    assert reward(["the cat sat", "a dog"], [{"keyword": "cat"}, {"keyword": "cat"}]) == [1.0, 0.0]
