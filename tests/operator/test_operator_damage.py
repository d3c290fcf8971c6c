"""Damage is reported, never hidden (issue 23): trial records that are in the store but
cannot be read (cut short, malformed, not a trial record) are counted and named in the
Sweep's status (``trialsUnreadable``, ``unreadableTrials``, the progress message) with a
``ResultsUnreadable`` Warning Event, while the readable ones are shown as usual."""

from __future__ import annotations

from typing import Any

import pytest

from support import operator as op
from tunix_rt.api.trial import TrialState
from tunix_rt.contract.layout import trial_key
from tunix_rt.storage import Store


@pytest.mark.reliability(
    "fault",
    "trial records cut short, malformed or invalid while a Sweep runs (operator)",
    result="status counts and names them; a ResultsUnreadable Warning; the rest shown",
)
async def test_unreadable_trial_records_are_counted_and_named_in_status(
    api: op.Api, store: Store, start_operator: op.StartOperator
) -> None:
    await start_operator()
    await op.sweep_running(api, op.sweep_body("dmg"))
    op.write_trial(store, op.NS, "dmg", "t_00000", TrialState.SUCCEEDED, 0.5)
    good = store.read_bytes(trial_key(op.NS, "dmg", "t_00000"))
    store.write_bytes(trial_key(op.NS, "dmg", "t_00001"), good[: len(good) // 2])  # cut short
    store.write_bytes(trial_key(op.NS, "dmg", "t_00002"), b'{"trialId": "t_00002"}')

    async def counted() -> dict[str, Any] | None:
        s = await op.status_of(api, op.SWEEPS, "dmg")
        return s if s.get("trialsUnreadable") == 2 and s.get("trialsCompleted") == 1 else None

    status = await op.wait_for(counted, what="two unreadable records in status")
    listed = status["unreadableTrials"]
    assert listed[0].startswith("trials/t_00001.json: not JSON: cut short"), listed
    assert listed[1].startswith("trials/t_00002.json: not a valid trial record:"), listed
    assert "2 trial records unreadable" in status["message"], status["message"]
    assert [t["id"] for t in status["trials"]] == ["t_00000"]
    sweep = await api.get(op.SWEEPS, op.NS, "dmg")
    assert sweep is not None
    op.assert_status_fits_crd(sweep)
    events = [e for e in await api.events(op.NS, "dmg") if e["reason"] == "ResultsUnreadable"]
    # one Event each time the count grows (the two files may be seen one poll apart)
    assert 1 <= len(events) <= 2 and all(e["type"] == "Warning" for e in events), events
    assert any("t_00001.json" in e["message"] and "t_00002.json" in e["message"] for e in events)
