"""Dataflow graph: building by keys, validation errors, ordering and rendering."""

from __future__ import annotations

import subprocess
import sys
import warnings

import pytest

from rlcore.dfg import (
    MFC,
    CycleError,
    DataflowError,
    DuplicateMFCError,
    DuplicateProducerError,
    MFCDefinitionError,
    MissingInputError,
    UnusedOutputWarning,
    build_graph,
)
from rlcore.errors import RlcoreError


def ppo_mfcs() -> list[MFC]:
    # Declared out of order on purpose: the graph orders them.
    return [
        MFC("actor_train", "actor", "train_step", "ppo_actor",
            ["packed_input_ids", "packed_logprobs", "ref_logprobs", "rewards", "values"]),
        MFC("critic_train", "critic", "train_step", "ppo_critic",
            ["packed_input_ids", "rewards", "values"]),
        MFC("rew_inf", "reward", "inference", "paired_rw", ["packed_input_ids"], ["rewards"],
            output_remap={"scores": "rewards"}),
        MFC("ref_inf", "ref", "inference", "ppo_actor", ["packed_input_ids"], ["ref_logprobs"],
            output_remap={"logprobs": "ref_logprobs"}),
        MFC("critic_inf", "critic", "inference", "ppo_critic", ["packed_input_ids"], ["values"]),
        MFC("actor_gen", "actor", "generate", "ppo_actor", ["packed_prompts"],
            ["packed_input_ids", "packed_logprobs"]),
    ]


def test_ppo_graph_orders_by_dependencies():
    g = build_graph(ppo_mfcs(), dataset_keys=["packed_prompts"])
    order = [m.name for m in g.order]
    pos = {n: i for i, n in enumerate(order)}
    assert order[0] == "actor_gen"
    for e in g.edges:
        assert pos[e.src] < pos[e.dst], e
    assert pos["critic_inf"] < pos["critic_train"]  # weights read before the update
    assert g.predecessors("actor_train") == ["actor_gen", "critic_inf", "ref_inf", "rew_inf"]
    assert g.trainable_roles == ["actor", "critic"]
    assert g.dataset_keys == {"packed_prompts"}
    assert g.warnings == ()
    data = {(e.src, e.dst): e.keys for e in g.edges if e.kind == "data"}
    assert data[("actor_gen", "actor_train")] == ("packed_input_ids", "packed_logprobs")
    assert ("critic_inf", "critic_train") in {(e.src, e.dst) for e in g.edges if e.kind == "param"}


def test_independent_calls_keep_declaration_order():
    mfcs = [
        MFC("b", "m2", "inference", "x", ["x"], ["y2"]),
        MFC("a", "m1", "inference", "x", ["x"], ["y1"]),
        MFC("t", "m3", "train_step", "x", ["y1", "y2"]),
    ]
    assert [m.name for m in build_graph(mfcs, ["x"]).order] == ["b", "a", "t"]


def test_cycle_is_an_error_naming_mfcs_and_keys():
    mfcs = [
        MFC("a", "m", "inference", "x", ["k_b"], ["k_a"]),
        MFC("b", "m", "inference", "x", ["k_a"], ["k_b"]),
        MFC("t", "m", "train_step", "x", ["k_a"]),
    ]
    with pytest.raises(CycleError) as info:
        build_graph(mfcs, dataset_keys=[])
    msg = str(info.value)
    assert "'a' -[k_a]-> 'b'" in msg and "'b' -[k_b]-> 'a'" in msg
    assert isinstance(info.value, RlcoreError)


def test_self_loop_is_a_cycle():
    with pytest.raises(CycleError, match="'a' -\\[k\\]-> 'a'"):
        build_graph([MFC("a", "m", "generate", "x", ["k"], ["k"])], dataset_keys=[])


def test_missing_input_names_key_and_reader():
    mfcs = [MFC("train", "actor", "train_step", "sft", ["packed_input_ids", "loss_mask"])]
    with pytest.raises(MissingInputError) as info:
        build_graph(mfcs, dataset_keys=["packed_input_ids"])
    assert "'loss_mask', read by 'train'" in str(info.value)
    assert "packed_input_ids" in str(info.value)  # lists what is available


def test_dataset_keys_inferred_when_not_given():
    g = build_graph([MFC("train", "actor", "train_step", "sft", ["a", "b"])])
    assert g.dataset_keys == {"a", "b"}


def test_two_producers_is_an_error():
    mfcs = [
        MFC("p1", "m1", "inference", "x", ["x"], ["y"]),
        MFC("p2", "m2", "inference", "x", ["x"], ["y"]),
    ]
    with pytest.raises(DuplicateProducerError, match="'y' is produced by two MFCs, 'p1' and 'p2'"):
        build_graph(mfcs, dataset_keys=["x"])


def test_producing_a_dataset_key_is_an_error():
    mfcs = [MFC("p", "m", "inference", "x", ["x"], ["x2"])]
    with pytest.raises(DuplicateProducerError, match="'x2' is produced by MFC 'p' and also"):
        build_graph(mfcs, dataset_keys=["x", "x2"])


def test_unused_output_warns():
    mfcs = [
        MFC("p", "m", "inference", "x", ["x"], ["used", "unused"]),
        MFC("t", "m", "train_step", "x", ["used"]),
    ]
    with pytest.warns(UnusedOutputWarning, match="'p' produces 'unused', which no MFC reads"):
        g = build_graph(mfcs, dataset_keys=["x"])
    assert len(g.warnings) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_graph(mfcs, dataset_keys=["x"], warn=False)


def test_duplicate_names_and_bad_definitions():
    with pytest.raises(DuplicateMFCError, match="two MFCs are called 'a'"):
        build_graph([MFC("a", "m", "inference", "x", ["x"]),
                     MFC("a", "n", "inference", "x", ["x"])])
    with pytest.raises(MFCDefinitionError, match="interface_type 'train'"):
        MFC("a", "m", "train", "x")
    with pytest.raises(MFCDefinitionError, match="n_minibatches"):
        MFC("a", "m", "inference", "x", n_minibatches=0)
    with pytest.raises(MFCDefinitionError, match=r"input_remap renames \['nope'\]"):
        MFC("a", "m", "inference", "x", ["x"], input_remap={"nope": "y"})
    with pytest.raises(MFCDefinitionError, match=r"output_remap maps onto \['z'\]"):
        MFC("a", "m", "inference", "x", ["x"], ["y"], output_remap={"s": "z"})
    with pytest.raises(MFCDefinitionError, match="train_step returns metrics"):
        MFC("a", "m", "train_step", "x", ["x"], ["y"])
    with pytest.raises(MFCDefinitionError, match="more than once"):
        MFC("a", "m", "inference", "x", ["x", "x"])


def test_remaps_translate_between_graph_and_interface_names():
    m = MFC("ref", "ref", "inference", "logp", ["ref_input_ids"], ["ref_logprobs"],
            input_remap={"ref_input_ids": "packed_input_ids"},
            output_remap={"logprobs": "ref_logprobs"})
    assert m.interface_output_keys == {"logprobs": "ref_logprobs"}


def test_render_formats():
    g = build_graph(ppo_mfcs(), dataset_keys=["packed_prompts"])
    text = g.render("text")
    assert text.splitlines()[0] == "dataset provides: packed_prompts"
    assert "1. actor_gen: actor.generate (ppo_actor)" in text
    assert "out: rewards (as scores)" in text
    mermaid = g.render("mermaid")
    assert mermaid.startswith("flowchart TD")
    assert 'n_dataset -->|"packed_prompts"| n_actor_gen' in mermaid
    assert 'n_critic_inf -.->|"weights"| n_critic_train' in mermaid
    dot = g.render("dot")
    assert dot.startswith("digraph dataflow {") and dot.rstrip().endswith("}")
    assert '"ref_inf" -> "actor_train" [label="ref_logprobs"];' in dot
    assert '"actor_gen\\nactor.generate (ppo_actor)"' in dot
    with pytest.raises(DataflowError, match="unknown graph format 'svg'"):
        g.render("svg")


def test_rich_tree_renders():
    from rich.console import Console

    from rlcore.dfg import to_rich

    console = Console(record=True, width=120)
    console.print(to_rich(build_graph(ppo_mfcs(), dataset_keys=["packed_prompts"])))
    out = console.export_text()
    assert "actor_gen: actor.generate (ppo_actor)" in out
    console.print(build_graph(ppo_mfcs(), dataset_keys=["packed_prompts"]).render("text"))
    assert "1. actor_gen: actor.generate (ppo_actor)" in console.export_text()
    assert "after: actor_gen, critic_inf, ref_inf, rew_inf" in out


def test_dfg_does_not_import_torch():
    code = ("import sys, rlcore.dfg as d; "
            "d.build_graph([d.MFC('t','m','train_step','x',['a'])]).render('dot'); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
