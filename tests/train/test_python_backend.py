"""backend python: the user's entrypoint is imported, called with a Trial, and its eval
rows are scored by tunix-rt (the built-in parser and guardrail, tunix_rt.scoring)."""

from __future__ import annotations

import itertools
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tunix_rt.api.trainer import TrainerConfig
from tunix_rt.scoring import compute_primary_score
from tunix_rt.train import TrainingTimeout, run_trial
from tunix_rt.train.backends import BACKENDS, backend_for
from tunix_rt.train.backends.python import train as python_train
from tunix_rt.train.backends.python_code import EntrypointError
from tunix_rt.train.backends.python_rows import TrialReportError
from tunix_rt.train.data import load_dataset

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "python-trainer"
_names = itertools.count()

DATASET = {"trainSize": 64, "evalSize": 8}


UserModule = Callable[[str], str]


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> UserModule:
    """Writes a module of the user's, importable under a name of its own; gives its name."""

    def write(body: str) -> str:
        name = f"user_trainer_{next(_names)}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(body))
        monkeypatch.syspath_prepend(str(tmp_path))
        return name

    return write


def config(entrypoint: str, **extra: Any) -> TrainerConfig:
    return TrainerConfig.model_validate(
        {
            "backend": "python",
            "entrypoint": entrypoint,
            "maxSteps": 10,
            "dataset": DATASET,
            "eval": {"maxTraceTokens": 16},
            **extra,
        }
    )


ORACLE = """
    def train(trial):
        for step in (5, 10):
            trial.report(step=step, loss=1.0 / step)
        rows = []
        for i, ex in enumerate(trial.dataset.eval):
            answer = ex.answer if i % 2 == 0 else "wrong"
            rows.append({"prompt": ex.prompt, "expected_answer": ex.answer,
                         "output": f"<reasoning>r</reasoning><answer>{answer}</answer>"})
        trial.eval_rows(rows)
"""


def test_the_entrypoint_trains_and_tunix_rt_scores_its_rows(user_module: UserModule) -> None:
    name = user_module(ORACLE)
    reports: list[dict[str, float]] = []
    result = run_trial(config(f"{name}:train"), report=reports.append, log=lambda _: None)
    assert result.backend == "python"
    assert result.steps == 10
    assert len(result.eval_rows) == 8
    assert result.primary_score == 0.5
    assert result.primary_score == compute_primary_score(r.model_dump() for r in result.eval_rows)
    assert [r.answer_correctness for r in result.eval_rows] == [1, 0] * 4
    assert all(r.format_valid for r in result.eval_rows)
    # Reports reach the trial's callback with their step; the last carries the final eval.
    assert reports[0] == {"step": 5.0, "loss": 0.2}
    assert reports[-1]["primary_score"] == 0.5 and reports[-1]["loss"] == 0.1
    assert result.history[-1] == reports[-1]
    assert [p["step"] for p in result.history] == [5.0, 10.0, 10.0]
    assert result.metrics["eval_rows"] == 8.0
    # No model described: the manifest says so, and names the code that ran.
    source = result.model_source
    assert source is not None and source.random_init and source.checkpoint is None
    assert source.config["described"] is False
    assert source.config["code"]["entrypoint"] == f"{name}:train"
    assert len(source.config["code"]["file_sha256"]) == 64


def test_backend_python_is_in_the_backend_table() -> None:
    assert BACKENDS["python"] == "tunix_rt.train.backends.python:train"
    assert backend_for("python") is python_train


def test_the_trial_gets_the_declared_params_and_the_dataset(user_module: UserModule) -> None:
    name = user_module(
        """
        SEEN = {}

        def train(trial):
            SEEN.update(params=dict(trial.params), steps=trial.max_steps, seed=trial.seed,
                        train=len(trial.dataset.train), info=trial.dataset.info,
                        lr=trial.config.learning_rate, cap=trial.max_trace_tokens)
            trial.describe_model("mine", config={"w": 1}, checkpoint="gs://b/w",
                                 checkpoint_sha256="ab" * 32)
            ex = trial.dataset.eval[0]
            trial.eval_rows([{"prompt": ex.prompt, "expected_answer": ex.answer,
                              "output": f"<reasoning>x</reasoning><answer>{ex.answer}</answer>"}])
        """,
    )
    base = config(
        f"{name}:train", parameters={"alpha": "float", "mode": "str"}, userParams={"mode": "a"}
    )
    result = run_trial(base.with_params({"alpha": 2, "learningRate": 0.01}), log=lambda _: None)
    seen = __import__(name).SEEN
    assert seen["params"] == {"mode": "a", "alpha": 2.0}
    assert (seen["steps"], seen["seed"], seen["lr"], seen["cap"]) == (10, 0, 0.01, 16)
    expected = load_dataset(base.dataset)
    assert seen["train"] == 64 and seen["info"] == expected.info == result.dataset
    assert result.primary_score == 1.0  # one row of eight: the note in the log says so
    source = result.model_source
    assert source is not None and source.name == "mine" and not source.random_init
    assert source.checkpoint == "gs://b/w" and source.config["w"] == 1
    assert result.model_id == "python/mine"


def test_the_guardrail_is_the_built_in_trainers(user_module: UserModule) -> None:
    name = user_module(
        """
        def train(trial):
            a, b, c, d = trial.dataset.eval[:4]
            def row(ex, output, **extra):
                return {"prompt": ex.prompt, "expected_answer": ex.answer, "output": output,
                        **extra}
            trial.eval_rows([
                # past the first </answer>: dropped, as the built-in decoder stops there
                row(a, f"<reasoning>r</reasoning><answer>{a.answer}</answer> and more"),
                # longer than maxTraceTokens (16): capped, scores 0 although correct
                row(b, f"<reasoning>{'x' * 40}</reasoning><answer>{b.answer}</answer>"),
                # the user's own token count over the cap
                row(c, f"<reasoning>r</reasoning><answer>{c.answer}</answer>", trace_tokens=99),
                # no format: the answer tag alone still counts, format_valid does not
                row(d, f"{d.answer} <answer>{d.answer}</answer>", index=3),
            ])
        """,
    )
    result = run_trial(config(f"{name}:train"), log=lambda _: None)
    first, capped, counted, loose = result.eval_rows
    assert first.output.endswith("</answer>") and first.answer_correctness == 1
    assert first.format_valid and not first.hit_cap
    assert capped.hit_cap and capped.answer_correctness == 0 and capped.trace_tokens == 16
    assert len(capped.output) < 40
    assert counted.hit_cap and counted.answer_correctness == 0
    assert loose.answer_correctness == 1 and not loose.format_valid
    assert result.primary_score == 0.5
    assert result.metrics["cap_hit_rate"] == 0.5


ROW = (
    "ex = trial.dataset.eval[0]\n    good = "
    '{"prompt": ex.prompt, "expected_answer": ex.answer, "output": "<answer>1</answer>"}'
)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            'trial.eval_rows([{"prompt": ex.prompt, "output": "x"}])',
            "row 0: 'expected_answer' must be a string, got nothing",
        ),
        ('trial.eval_rows([{**good, "output": 3}])', "row 0: 'output' must be a string, got int"),
        (
            'trial.eval_rows([{**good, "answer_correctness": 1}])',
            "'answer_correctness' is computed by tunix-rt",
        ),
        ('trial.eval_rows([{**good, "score": 1}])', "unknown field 'score'"),
        (
            'trial.eval_rows([{**good, "expected_answer": "12345"}])',
            "expected_answer '12345' differs from eval row 0's answer",
        ),
        (
            'trial.eval_rows([{**good, "prompt": "99*99="}])',
            "prompt '99*99=' is not in the eval split",
        ),
        ("trial.eval_rows([good, good])", "row 1 repeats eval row 0"),
        ('trial.eval_rows([{**good, "index": 5}])', "is not eval row 5's"),
        ('trial.eval_rows(["text"])', "row 0: expected a mapping, got str"),
        ("trial.eval_rows([])", "no rows"),
        ("trial.report(step=1, primary_score=1.0)", "primary_score is computed by tunix-rt"),
        ('trial.report(step=1, loss="low")', "trial.report(loss=…): expected a number"),
        ("trial.report(step=11, loss=1.0)", "step 11 is outside [0, 10]"),
        (
            "trial.report(step=5, loss=1.0); trial.report(step=4, loss=1.0)",
            "step 4 is outside [5, 10]",
        ),
        ("trial.report(step=2.5, loss=1.0)", "step must be an integer"),
    ],
)
def test_a_malformed_report_fails_the_trial_naming_what_is_wrong(
    user_module: UserModule, call: str, message: str
) -> None:
    name = user_module(f"def train(trial):\n    {ROW}\n    {call}\n")
    with pytest.raises(TrialReportError) as info:
        run_trial(config(f"{name}:train"), log=lambda _: None)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("body", "entry", "message"),
    [
        ("", "no_such_user_pkg.mod:train", "no module named 'no_such_user_pkg' on this worker"),
        (
            "def fit(trial):\n    pass\n",
            "{name}:train",
            "has no function 'train'; its functions: ['fit']",
        ),
        ("train = 3\n", "{name}:train", "has a non-callable 'train'"),
        (
            "def train(trial, data):\n    pass\n",
            "{name}:train",
            "must take one argument, the trial",
        ),
        ("def train():\n    pass\n", "{name}:train", "must take one argument, the trial"),
        ("import no_such_dependency_xyz\n", "{name}:train", "importing user_trainer_"),
        ("raise RuntimeError('boom')\n", "{name}:train", "RuntimeError: boom"),
        (
            "def train(trial):\n    return [1]\n",
            "{name}:train",
            "returned without calling trial.eval_rows(rows) (it returned a value",
        ),
    ],
)
def test_a_bad_entrypoint_is_named_with_what_to_do(
    user_module: UserModule, body: str, entry: str, message: str
) -> None:
    name = user_module(body)
    with pytest.raises(EntrypointError) as info:
        run_trial(config(entry.format(name=name)), log=lambda _: None)
    assert "trainer.entrypoint" in str(info.value)
    assert message in str(info.value)


def test_the_deadline_stops_the_entrypoint_at_its_next_report(user_module: UserModule) -> None:
    name = user_module(
        """
        import time

        def train(trial):
            trial.report(step=1, loss=1.0)
            time.sleep(0.3)
            trial.report(step=2, loss=0.5)
            raise AssertionError("not reached")
        """,
    )
    with pytest.raises(TrainingTimeout) as info:
        run_trial(config(f"{name}:train"), log=lambda _: None, deadline=time.monotonic() + 0.2)
    assert info.value.step == 1 and info.value.max_steps == 10


def test_the_example_package_learns_and_its_score_follows_its_params(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """examples/python-trainer: a larger step size learns the sum within the budget, a
    tiny one does not, and unsigned features cannot represent subtraction."""
    monkeypatch.syspath_prepend(str(EXAMPLE))
    base = TrainerConfig.model_validate(
        {
            "backend": "python",
            "entrypoint": "linear_arith.train:train",
            "parameters": {"step_size": "float", "feature_set": "str", "normalise": "bool"},
            "maxSteps": 150,
            "batchSize": 32,
            "logEvery": 50,
            "dataset": {"trainSize": 1000, "evalSize": 128},
        }
    )

    def score(**params: Any) -> float:
        result = run_trial(base.with_params(params), log=lambda _: None)
        assert result.primary_score is not None and result.model_source is not None
        assert result.model_source.name == "linear-arith"
        return result.primary_score

    good = score(step_size=0.3, feature_set="signed")
    assert good > 0.7
    assert score(step_size=0.003, feature_set="signed") < 0.1
    assert score(step_size=0.3, feature_set="unsigned") < 0.1
