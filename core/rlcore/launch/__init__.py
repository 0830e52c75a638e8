"""Starting a run's ranks: torchrun or DeepSpeed's launcher, the rendezvous, the run lock.

Launch sits above the in-rank runtime (:mod:`rlcore.runtime`): it may import it, never the
reverse. Each rank runs ``python -m rlcore.launch.worker``, which calls the runtime's loop.
"""
