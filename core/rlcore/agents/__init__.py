"""Agents: multi-turn episodes in which the actor calls tools that an environment answers.

An environment is a plugin kind (``rlcore_environments``); :mod:`rlcore.agents.environment`
is its API, :mod:`rlcore.agents.tool_calls` parses the calls a model writes,
:mod:`rlcore.agents.episodes` runs many episodes at once on a rollout engine,
:mod:`rlcore.agents.openai_server` serves a model to agents outside rlcore (``rlcore serve``)
and :mod:`rlcore.agents.sandbox` runs model-written code. Importing this package imports no torch.
"""
