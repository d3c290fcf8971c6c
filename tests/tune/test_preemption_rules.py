"""Preemption rules without a cluster: a lost worker (record still Running) is a
preemption and is resumed; a trainer error (record Failed) is never retried; the
records, the summary and status count preemptions; SIGTERM asks for a checkpoint."""

from __future__ import annotations

import signal
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tunix_rt.api.sweep import SweepSpec
from tunix_rt.api.trial import TrialResult, TrialState
from tunix_rt.contract.layout import SweepTarget
from tunix_rt.controller.sweep_status import trial_fields
from tunix_rt.notice import Notice
from tunix_rt.tune.hooks import SweepMonitor
from tunix_rt.tune.preemption import (
    MAX_PREEMPTIONS,
    TrainerFailed,
    checkpoint_seen,
    lost_worker,
    newest_step,
    preempted_record,
    refuse_retry,
    trainer_failed,
)
from tunix_rt.tune.records import utcnow
from tunix_rt.tune.trainable import Reporter, resumed_record


def _record(**over: Any) -> TrialResult:
    base = TrialResult(trial_id="t1", sweep="s", state=TrialState.RUNNING, started_at=utcnow())
    return base.model_copy(update=over)


def test_lost_worker_counts_a_preemption_and_what_it_lost() -> None:
    now = utcnow()
    record = _record(
        steps=27,
        checkpoint_step=20,
        checkpointed_at=now - timedelta(seconds=360),
        accelerator_hours=0.5,
    )
    out = preempted_record(record, now, accelerators=4.0, last_result={"step": 29}, hours_now=0.6)
    assert out.state is TrialState.RUNNING  # resumed, not failed
    assert out.preemptions == 1
    assert out.lost_steps == 9  # Tune's last report (29) was newer than the record (27)
    assert out.lost_accelerator_hours == pytest.approx(4.0 * 360 / 3600)
    assert out.accelerator_hours == 0.6
    again = preempted_record(out.model_copy(update={"checkpoint_step": 29}), now, 4.0)
    assert again.preemptions == 2 and again.lost_steps == 9  # nothing more lost


def test_trainer_error_is_not_retried() -> None:
    assert not trainer_failed(None) and not trainer_failed(_record())
    failed = _record(state=TrialState.FAILED, error="Traceback\nFloatingPointError: diverged")
    assert trainer_failed(failed)
    error = refuse_retry(failed)
    assert isinstance(error, TrainerFailed)
    assert "FloatingPointError: diverged" in str(error) and "only a lost worker" in str(error)


def _monitor(tmp_path: Path) -> SweepMonitor:
    return SweepMonitor(SweepTarget(f"file://{tmp_path}", "ns", "s"), max_failed_trials=0)


def test_monitor_resumes_a_lost_worker_and_fails_a_trainer_error(tmp_path: Path) -> None:
    monitor = _monitor(tmp_path)
    files = monitor.files
    files.write_trial(_record(steps=12, checkpoint_step=10, checkpointed_at=utcnow()))
    trial = SimpleNamespace(
        trial_id="t1", config={}, last_result={"step": 13}, max_failures=MAX_PREEMPTIONS
    )
    monitor.on_trial_recover(0, [], trial)
    stored = files.trial("t1")
    assert stored is not None and stored.preemptions == 1 and stored.lost_steps == 3
    assert trial.max_failures == MAX_PREEMPTIONS and not monitor.failed

    files.write_trial(stored.model_copy(update={"state": TrialState.FAILED, "error": "boom"}))
    monitor.on_trial_recover(0, [], trial)
    assert trial.max_failures == 0  # its retry raises TrainerFailed: then an error
    again = files.trial("t1")
    assert again is not None and again.preemptions == 1  # not counted as a preemption


def test_records_carry_preemptions_and_status_sums_them(tmp_path: Path) -> None:
    earlier = _record(preemptions=2, lost_steps=7, lost_accelerator_hours=0.25, curve=[{"step": 1}])
    resumed = resumed_record(_record(), earlier)
    assert (resumed.preemptions, resumed.lost_steps, resumed.lost_accelerator_hours) == (2, 7, 0.25)
    spec = SweepSpec.model_validate(
        {"maxTrials": 2, "searchSpace": {"learningRate": {"type": "grid", "values": [1e-3, 3e-3]}}}
    )
    other = _record(trial_id="t2", state=TrialState.SUCCEEDED)
    fields = trial_fields([resumed, other], spec, None)
    assert fields["preemptions"] == 2 and fields["trialsFailed"] == 0
    assert [t.get("preemptions") for t in fields["trials"]] == [2, None]


def test_reporter_records_each_new_checkpoint(tmp_path: Path) -> None:
    folder = tmp_path / "ckpt"
    written: list[TrialResult] = []
    reporter = Reporter(
        _record(), written.append, lambda m: None, 3600.0, checkpoint_dir=str(folder)
    )
    reporter({"step": 1, "loss": 1.0})
    assert not written and newest_step(str(folder)) is None
    (folder / "2").mkdir(parents=True)
    (folder / "3.orbax-checkpoint-tmp-1").mkdir()  # a save in progress is not a checkpoint
    reporter({"step": 2, "loss": 0.9})
    assert [(r.checkpoint_step, r.steps) for r in written] == [(2, 2)]
    reporter({"step": 3, "loss": 0.8})
    assert len(written) == 1  # no new checkpoint, not due: no write
    assert checkpoint_seen(written[0], str(folder), utcnow()) is written[0]


def test_sigterm_notice_only_while_armed() -> None:
    calls: list[int] = []
    notice = Notice()
    notice.previous = lambda signum, frame: calls.append(signum)
    notice.handle(signal.SIGTERM, None)
    assert calls == [signal.SIGTERM] and not notice.received  # nothing to save: as before
    with notice.arm() as stop_now:
        assert not stop_now()
        notice.handle(signal.SIGTERM, None)
        assert stop_now() and calls == [signal.SIGTERM]
        notice.handle(signal.SIGTERM, None)  # a second one: no more waiting
        assert calls == [signal.SIGTERM, signal.SIGTERM]


def test_multihost_lost_workers_are_told_from_trainer_errors() -> None:
    from ray.exceptions import ActorDiedError
    from ray.train.v2.api.exceptions import WorkerGroupError

    assert lost_worker(ActorDiedError())
    assert lost_worker(WorkerGroupError("rank 1 died", {1: ActorDiedError()}))
    mixed = {0: ActorDiedError(), 1: FloatingPointError("loss diverged")}
    assert not lost_worker(WorkerGroupError("two errors", mixed))
    assert not lost_worker(WorkerGroupError("diverged", {0: FloatingPointError("x")}))
    assert not lost_worker(ValueError("bad config"))


def test_a_retried_trial_keeps_its_hours_in_the_budget() -> None:
    from tunix_rt.tune.budget import SweepLimits

    spec = SweepSpec.model_validate(
        {"maxTrials": 2, "searchSpace": {"learningRate": {"type": "grid", "values": [1e-3, 3e-3]}}}
    )
    limits = SweepLimits.seeded(spec, 0.0, [], None)
    limits.trial_started("t1", 0.0)
    limits.trial_reported("t1", {"accelerator_hours": 0.5}, 10.0)
    limits.trial_ended("t1", 10.0, full=False)  # its worker was lost
    limits.trial_started("t1", 12.0)  # retried
    assert limits.trial_hours("t1", 12.0) == pytest.approx(0.5)
