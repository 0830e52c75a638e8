"""The in-rank runtime: backends, executor, checkpoints, metrics, experiments, the loop.

Importing this package is cheap; each submodule imports torch/DeepSpeed itself.
``options`` and ``schedule`` stay torch-free so configs can embed them.
"""
