"""The ``rlcore`` command line (typer + rich). Importing it must not import torch."""
