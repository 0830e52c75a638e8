"""Phi-3 through rlcore's family conformance suite: parity with transformers' Phi3ForCausalLM."""

import phi3_family
import pytest
from phi3_family import PHI3

from rlcore.testing.families import FamilyConformance


# --8<-- [start:test]
@pytest.fixture(autouse=True)
def phi3_registered(rlcore_plugins):
    """What the package's entry point does once installed: make `phi3` a registered family."""
    rlcore_plugins.register(phi3_family, name="phi3")


class TestPhi3(FamilyConformance):
    family = PHI3
    variants = {
        "gqa": {},  # tiny_config: 4 query heads, 2 key/value heads
        "mha-tied-window": {"num_key_value_heads": 4, "tie_word_embeddings": True,
                            "sliding_window": 8},
    }
# --8<-- [end:test]
