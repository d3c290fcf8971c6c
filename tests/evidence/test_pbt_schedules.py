"""The sweep report's PBT section: a step chart per scheduled param and the table of
every trial's schedule; nothing for a sweep without schedules."""

from __future__ import annotations

from tunix_rt.evidence.schedules import schedule_charts, schedule_section

TRIALS = [
    {
        "trialId": "t_00001",
        "steps": 40,
        "schedule": [
            {"step": 0, "params": {"learningRate": 0.01}},
            {"step": 20, "params": {"learningRate": 0.012}, "exploitedFrom": "t_00000"},
        ],
    },
    {
        "trialId": "t_00000",
        "steps": 40,
        "schedule": [{"step": 0, "params": {"learningRate": 0.01}}],
    },
]


def test_the_section_shows_each_step_and_exploit() -> None:
    html = schedule_section(TRIALS, "t_00001")
    assert "<h2>PBT schedules</h2>" in html and "1 exploit(s)" in html
    assert "<td>t_00001 *</td><td>20</td><td>learningRate=0.012</td><td>t_00000</td>" in html
    assert html.count("<svg") == 1 and "PBT schedule: learningRate" in html


def test_one_step_chart_per_scheduled_param() -> None:
    both = [{"trialId": "a", "steps": 10, "schedule": [
        {"step": 0, "params": {"learningRate": 0.01, "weightDecay": 0.1}}]}]  # fmt: skip
    charts = schedule_charts(both, None)
    assert len(charts) == 2
    assert "PBT schedule: learningRate" in charts[0] and "PBT schedule: weightDecay" in charts[1]


def test_no_schedules_no_section() -> None:
    assert schedule_section([{"trialId": "a", "params": {}}], None) == ""
