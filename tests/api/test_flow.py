"""A flow written as a Python function becomes the same dataflow graph as an experiment's."""

from __future__ import annotations

import pytest

from rlcore.api import Engine, FlowError, Module
from rlcore.dfg import (
    CycleError,
    DataflowError,
    DuplicateProducerError,
    InterfaceType,
    MissingInputError,
    build_graph,
)

# Several flows here leave an output unread on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::rlcore.dfg.UnusedOutputWarning")


class Gen(Module):
    input_keys = ("prompts",)
    output_keys = ("input_ids", "gen_logprobs")
    forward_type = "generate"

    def forward_step(self, data):  # never run: these tests only trace
        raise AssertionError("tracing must not run forward_step")

    def train_step(self, data):
        raise AssertionError("tracing must not run train_step")


class Scorer(Module):
    input_keys = ("input_ids",)
    output_keys = ("logprobs",)

    def forward_step(self, data):
        raise AssertionError("tracing must not run forward_step")


class Trainer(Module):
    train_keys = ("input_ids", "gen_logprobs", "ref_logprobs", "rewards")

    def train_step(self, data):
        raise AssertionError("tracing must not run train_step")


def ppo_like():
    policy, ref, reward = Gen("policy"), Scorer("ref"), Scorer("reward", output_keys=["score"])
    trainer = Trainer("trainer")

    def flow(batch):
        out = policy.generate(batch)
        r = ref.inference(out, output_remap={"logprobs": "ref_logprobs"})
        s = reward.inference(out, output_remap={"score": "rewards"})
        trainer.train_step(r, s)

    return (policy, ref, reward, trainer), flow


def test_flow_traces_to_the_expected_graph():
    modules, flow = ppo_like()
    g = Engine(*modules, flow=flow).graph()
    assert [m.name for m in g.order] == [
        "policy.generate", "ref.inference", "reward.inference", "trainer.train_step"]
    gen, ref, rew, train = (g.mfc(n) for n in ("policy.generate", "ref.inference",
                                               "reward.inference", "trainer.train_step"))
    assert gen.interface_type is InterfaceType.GENERATE and gen.role == "policy"
    assert gen.input_keys == ("prompts",) and gen.output_keys == ("input_ids", "gen_logprobs")
    assert ref.output_keys == ("ref_logprobs",) and ref.output_remap == {"logprobs": "ref_logprobs"}
    assert rew.output_keys == ("rewards",)
    assert train.is_train and train.input_keys == modules[3].train_keys
    assert g.dataset_keys == {"prompts"}
    edges = {(e.src, e.dst): set(e.keys) for e in g.edges if e.kind == "data"}
    assert edges == {
        ("policy.generate", "ref.inference"): {"input_ids"},
        ("policy.generate", "reward.inference"): {"input_ids"},
        ("policy.generate", "trainer.train_step"): {"input_ids", "gen_logprobs"},
        ("ref.inference", "trainer.train_step"): {"ref_logprobs"},
        ("reward.inference", "trainer.train_step"): {"rewards"},
    }
    assert train.interface_args == {"module": "trainer", "method": "train_step"}
    # The same graph as writing the MFCs by hand, and it renders like any experiment's.
    assert build_graph(g.mfcs).edges == g.edges
    mermaid = Engine(*modules, flow=flow).render("mermaid")
    assert "n_policy_generate" in mermaid and '-->|"rewards"|' in mermaid


def test_default_flow_orders_by_keys_and_names_roles():
    teacher = Scorer("teacher", input_keys=["x"], output_keys=["target"])
    student = Trainer("student", train_keys=["x", "target"])
    g = Engine(student, teacher).graph()  # listed out of order: keys decide
    assert [m.name for m in g.order] == ["teacher.inference", "student.train_step"]
    assert g.trainable_roles == ["student"]


def test_input_remap_and_repeated_calls():
    scorer = Scorer("scorer")
    trainer = Trainer("trainer", train_keys=["logprobs", "logprobs_2"])

    def flow(batch):
        a = scorer.inference(batch)
        b = scorer.inference(a, input_remap={"other_ids": "input_ids"},
                             output_remap={"logprobs": "logprobs_2"})
        trainer.train_step(b)

    g = Engine(scorer, trainer, flow=flow).graph()
    second = g.mfc("scorer.inference_2")
    assert second.input_keys == ("other_ids",) and second.input_remap == {"other_ids": "input_ids"}
    assert g.dataset_keys == {"input_ids", "other_ids"}


def test_a_key_produced_twice_is_the_dfg_error():
    a, b = Scorer("a"), Scorer("b")
    trainer = Trainer("trainer", train_keys=["logprobs"])

    def flow(batch):
        trainer.train_step(a.inference(batch), b.inference(batch))

    with pytest.raises(DuplicateProducerError, match="'logprobs' is produced by two MFCs"):
        Engine(a, b, trainer, flow=flow).graph()


def test_a_key_nothing_provides_is_the_dfg_error_once_the_dataset_is_known():
    scorer = Scorer("scorer")
    trainer = Trainer("trainer", train_keys=["logprobs", "advantages"])

    def flow(batch):
        trainer.train_step(scorer.inference(batch))

    engine = Engine(scorer, trainer, flow=flow)
    engine.graph()  # without a dataset, unproduced keys are assumed to come from it
    engine.set_dataset([{"input_ids": [1, 2, 3]}])
    with pytest.raises(MissingInputError, match="'advantages', read by 'trainer.train_step'"):
        engine.graph()


def test_a_call_reading_its_own_output_is_a_cycle():
    loop = Scorer("loop", input_keys=["h"], output_keys=["h"])
    with pytest.raises(CycleError):
        Engine(loop, flow=lambda b: loop.inference(b)).graph()


def test_reading_a_key_not_handed_over_is_a_flow_error():
    policy, ref = Gen("policy"), Scorer("ref", output_keys=["ref_logprobs"])
    trainer = Trainer("trainer", train_keys=["input_ids", "ref_logprobs"])

    def flow(batch):
        out = policy.generate(batch)
        ref.inference(out)
        trainer.train_step(out)  # forgot to pass ref's output

    with pytest.raises(FlowError, match="'ref_logprobs'.*'ref.inference' produces") as info:
        Engine(policy, ref, trainer, flow=flow).graph()
    assert isinstance(info.value, DataflowError)


def test_reading_a_role_after_training_it_is_a_flow_error():
    policy = Gen("policy", train_keys=["prompts"])

    def flow(batch):
        policy.train_step(batch)
        policy.generate(batch)

    with pytest.raises(FlowError, match="after 'policy.train_step' trains it"):
        Engine(policy, flow=flow).graph()


def test_flows_cannot_touch_data_or_call_foreign_modules():
    scorer, other = Scorer("scorer"), Scorer("other", output_keys=["y"])

    def peeks(batch):
        out = scorer.inference(batch)
        return out.data["logprobs"]

    with pytest.raises(FlowError, match="only passes batches between model calls"):
        Engine(scorer, flow=peeks).graph()
    with pytest.raises(FlowError, match="made no model call"):
        Engine(scorer, flow=lambda b: None).graph()
    with pytest.raises(DataflowError, match=r"modules \['other'\] that are not in the engine"):
        Engine(scorer, flow=lambda b: other.inference(scorer.inference(b))).graph()
    twin = Scorer("scorer")  # same name, another object: not the engine's module
    with pytest.raises(FlowError, match="not in the engine"):
        Engine(scorer, flow=lambda b: twin.inference(b)).graph()
    with pytest.raises(FlowError, match="output_remap renames"):
        Engine(scorer, flow=lambda b: scorer.inference(b, output_remap={"nope": "x"})).graph()


def test_importing_the_api_does_not_import_torch():
    import subprocess
    import sys

    code = ("import sys, rlcore, rlcore.api\n"
            "from rlcore.api import Engine, Evaluator, Module, FlowError, init\n"
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
