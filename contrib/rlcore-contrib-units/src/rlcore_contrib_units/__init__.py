"""rlcore-contrib-units: ``units``, a unit-conversion environment with a ``convert`` tool.

Records are lazy; importing this never imports torch.
"""

import rlcore
from rlcore.plugins.records import EnvironmentRecord

__version__ = "0.1.0"

# The plugin API this package is written for.
RLCORE_API = 2


@rlcore.hookimpl
def rlcore_environments():
    """The units environment."""
    return [EnvironmentRecord(
        "units", impl="rlcore_contrib_units.env:UnitsEnvironment",
        doc="unit conversion (length, mass, time) with a convert tool; its own tasks and "
            "demonstrations; reward 1 for the right number")]
