"""A warm-started Sweep in the cluster, its handlers run by kopf against the kmock Kubernetes
emulator: ``warmStartFrom.sweep`` waits for that Sweep to finish, then resolves to its
results URI (the RayJob's ``--warm-start-uri``), and the status reports what the driver's
``warm_start.json`` says; a reused trial can be the best trial. The pure parts
(:func:`~tunix_rt.controller.warm_source.source_of`, ``trial_fields``) are tested apart."""

from __future__ import annotations

import shlex
from typing import Any

from support import operator as op
from support.operator_config import operator_config
from support.rayjob_schema import validate_rayjob
from tunix_rt.api.sweep import SweepSpec
from tunix_rt.api.trial import TrialResult, TrialState, WarmStartRecord
from tunix_rt.api.warm_start import ReusedFrom, SkippedTrial, SkipReason
from tunix_rt.contract.layout import SweepLayout
from tunix_rt.controller.runtime import Runtime
from tunix_rt.controller.sweep_status import trial_fields
from tunix_rt.controller.warm_source import Found, Waiting, source_of
from tunix_rt.storage import Store

EARLIER_URI = "s3://results/ml/earlier"


def entrypoint_args(rayjob: dict[str, Any]) -> dict[str, str]:
    argv = shlex.split(rayjob["spec"]["entrypoint"])
    return dict(zip(argv[3::2], argv[4::2], strict=False))


def reused_trial(score: float) -> TrialResult:
    origin = ReusedFrom(sweep="earlier", trial_id="e_00001", uri=EARLIER_URI)
    return TrialResult(
        trial_id="e_00001",
        sweep="earlier",
        namespace=op.NS,
        params={"learningRate": 0.003},
        state=TrialState.SUCCEEDED,
        primary_score=score,
        steps=300,
        reused_from=origin,
    )


def record(score: float) -> WarmStartRecord:
    skipped = SkippedTrial(trial="e_00002", reason=SkipReason.FAILED, message="it failed (OOM)")
    return WarmStartRecord(
        source="Sweep earlier",
        uri=EARLIER_URI,
        use="1 trial(s) added to the Optuna study as completed trials",
        reused=["e_00001"],
        skipped=[skipped],
        trials=[reused_trial(score)],
    )


async def test_a_warm_started_sweep_waits_for_its_source_then_passes_its_results(
    api: op.Api, store: Store, start_operator: op.StartOperator
) -> None:
    await start_operator()
    await api.create(
        op.SWEEPS, op.sweep_body("warm", algorithm="tpe", warmStartFrom={"sweep": "earlier"})
    )

    status = await op.wait_for(
        lambda: op.phase_is(api, op.SWEEPS, "warm", "Pending"), what="Pending"
    )
    waiting = op.condition(await api.get(op.SWEEPS, op.NS, "warm"), "Progressing")
    assert waiting["reason"] == "WaitingForSweep"
    assert "Sweep earlier not found in namespace ml" in waiting["message"]
    assert "rayJobName" not in status and await api.get(op.RAYJOBS, op.NS, "sweep-warm") is None

    # It finished (as the operator leaves a finished Sweep; a running one: pure test below).
    earlier = op.sweep_body("earlier")
    earlier["status"] = {"phase": "Succeeded", "resultsUri": EARLIER_URI, "trialsProgress": "4/4"}
    await api.create(op.SWEEPS, earlier)
    rayjob = await op.wait_for(lambda: api.get(op.RAYJOBS, op.NS, "sweep-warm"), what="the RayJob")
    validate_rayjob(rayjob)
    assert entrypoint_args(rayjob)["--warm-start-uri"] == EARLIER_URI

    async def started() -> dict[str, Any] | None:
        s = await op.status_of(api, op.SWEEPS, "warm")
        return s if s.get("rayJobName") else None

    status = await op.wait_for(started, what="the start in status")
    assert status["warmStart"]["source"] == "Sweep earlier"
    assert status["warmStart"]["uri"] == EARLIER_URI

    # The driver records its verdicts; the reused trial beats this sweep's own.
    files_prefix = SweepLayout.of(op.NS, "warm")
    store.write_json(files_prefix.warm_start_key, record(0.9))
    op.write_trial(store, op.NS, "warm", "w_00000", TrialState.SUCCEEDED, 0.6, learningRate=0.001)
    await api.job_running(op.NS, "sweep-warm")

    async def reported() -> dict[str, Any] | None:
        s = await op.status_of(api, op.SWEEPS, "warm")
        return s if (s.get("warmStart") or {}).get("reused") == 1 else None

    status = await op.wait_for(reported, what="warmStart from warm_start.json")
    assert status["warmStart"]["skipped"] == 1
    assert status["warmStart"]["skippedTrials"][0]["reason"] == "Failed"
    assert status["bestTrial"] == {
        "id": "e_00001",
        "params": {"learningRate": 0.003},
        "primaryScore": 0.9,
        "reusedFrom": "earlier",
    }
    assert [t["id"] for t in status["trials"]] == ["w_00000"]
    assert status["trialsCompleted"] == 1
    final = await api.get(op.SWEEPS, op.NS, "warm")
    assert final is not None
    op.assert_status_fits_crd(final)


async def test_a_source_given_by_uri_starts_at_once(
    api: op.Api, start_operator: op.StartOperator
) -> None:
    await start_operator()
    await api.create(op.SWEEPS, op.sweep_body("warm", warmStartFrom={"uri": EARLIER_URI}))
    rayjob = await op.wait_for(lambda: api.get(op.RAYJOBS, op.NS, "sweep-warm"), what="the RayJob")
    assert "--warm-start-uri" not in entrypoint_args(rayjob)  # the spec carries the URI


# ----------------------------------------------------------------------------- pure parts


def test_the_source_sweep_is_waited_for_until_it_has_finished(store: Store) -> None:
    runtime = Runtime(operator_config(store.uri))
    for phase in ("Pending", "Running"):
        got = source_of(runtime, op.NS, "earlier", {"status": {"phase": phase}})
        assert isinstance(got, Waiting) and f"Sweep earlier is {phase}" in got.message
    assert source_of(runtime, op.NS, "earlier", {}) == Waiting(
        "spec.warmStartFrom: Sweep earlier is Pending; this Sweep starts when it has finished"
    )
    failed = {"status": {"phase": "Failed", "resultsUri": EARLIER_URI}}
    assert source_of(runtime, op.NS, "earlier", failed) == Found(EARLIER_URI)
    no_uri = {"status": {"phase": "Succeeded"}, "spec": {"storage": "gs://bucket/runs"}}
    assert source_of(runtime, op.NS, "earlier", no_uri) == Found("gs://bucket/runs/ml/earlier")
    default = source_of(runtime, op.NS, "earlier", {"status": {"phase": "Succeeded"}})
    assert default == Found(f"{store.uri}/ml/earlier")


def test_status_counts_its_own_trials_and_may_pick_a_reused_best() -> None:
    spec = SweepSpec.model_validate(
        {"searchSpace": {"learningRate": {"type": "grid", "values": [0.001, 0.003]}},
         "algorithm": "grid", "maxTrials": 2, "warmStartFrom": {"uri": EARLIER_URI}}
    )  # fmt: skip
    own = TrialResult(
        trial_id="w_00000", sweep="warm", params={"learningRate": 0.001},
        state=TrialState.SUCCEEDED, primary_score=0.95, steps=300,
    )  # fmt: skip
    fields = trial_fields([own], spec, None, record(0.9))
    assert fields["trialsTotal"] == 1  # the measured grid point is not run again
    assert fields["trialsProgress"] == "1/1" and fields["bestTrial"]["id"] == "w_00000"
    assert "reusedFrom" not in fields["bestTrial"]
    assert fields["warmStart"]["reused"] == 1 and fields["warmStart"]["uri"] == EARLIER_URI
    beaten = trial_fields([own.model_copy(update={"primary_score": 0.5})], spec, None, record(0.9))
    assert beaten["bestTrial"]["reusedFrom"] == "earlier"
    assert beaten["primaryScore"] == 0.9
    assert [t["id"] for t in beaten["trials"]] == ["w_00000"]
    assert trial_fields([own], spec, None, None).get("warmStart") is None
