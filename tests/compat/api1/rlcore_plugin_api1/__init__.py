"""A plugin written against rlcore's plugin API 1 (the 0.1.0 docs), frozen: do not update it.

It calls ``ModelHandle.engine``, which API 2 renamed ``model``. tests/compat/test_api1_plugin.py
checks that it keeps working, or is reported incompatible by ``rlcore list-plugins``.
"""

import rlcore
from rlcore.plugins.records import ExperimentRecord, InterfaceRecord


@rlcore.hookimpl
def rlcore_experiments():
    return [ExperimentRecord("api1_regression", impl="rlcore_plugin_api1.toy:ToyExperiment",
                             config="rlcore_plugin_api1.toy:ToyConfig",
                             doc="a student MLP regresses onto a frozen teacher")]


@rlcore.hookimpl
def rlcore_interfaces():
    return [InterfaceRecord("api1_label", impl="rlcore_plugin_api1.toy:LabelInterface"),
            InterfaceRecord("api1_regression", impl="rlcore_plugin_api1.toy:RegressionInterface")]
