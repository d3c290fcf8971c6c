"""The charts report.html and the web view share: scales and ticks, scatter and parallel
coordinates over numbers and categories, which per-trial curves are drawn, escaping."""

from __future__ import annotations

import re

import pytest

from tunix_rt.evidence.charts import BEST_COLOR, LEGEND_MAX, Scale, line_chart, tick_label
from tunix_rt.evidence.marks import Axis, Mark, parallel_coordinates, scatter_chart
from tunix_rt.evidence.trial_charts import (
    TrialPlot,
    curve_metrics,
    log_params,
    param_scatters,
    trial_curve_charts,
)


def test_a_log_scale_ticks_at_decades_and_says_them_short() -> None:
    scale = Scale.fit([1e-4, 3e-3, 3e-2], log=True)
    assert scale.log and scale.ticks() == pytest.approx([1e-4, 1e-3, 1e-2])
    assert [tick_label(t, log=True) for t in scale.ticks()] == ["1e-4", "1e-3", "0.01"]
    assert scale.unit(1e-4) == 0 and scale.unit(3e-2) == pytest.approx(1)
    assert scale.unit(1e-3) == pytest.approx(1 / (2 + 0.4771), rel=1e-3)


def test_a_log_scale_within_a_decade_ticks_at_2_and_5() -> None:
    assert Scale.fit([1.5e-3, 8e-3], log=True).ticks() == pytest.approx([2e-3, 5e-3])


def test_log_needs_positive_values_and_one_value_is_widened() -> None:
    assert not Scale.fit([0.0, 1.0], log=True).log
    single = Scale.fit([0.5])
    assert single.low < 0.5 < single.high
    padded = Scale.fit([0.0, 1.0], pad=0.1)
    assert padded.low == pytest.approx(-0.1) and padded.high == pytest.approx(1.1)


def test_text_values_make_a_categorical_axis_in_natural_order() -> None:
    axis = Axis.fit("opt", ["sgd", "adam", "adam"])
    assert axis.scale is None and axis.categories == ("adam", "sgd")
    assert axis.unit("adam") == 0.25 and axis.unit("sgd") == 0.75
    numbers = Axis.fit("batch", ["64", "8", "32"])
    assert numbers.categories == ("8", "32", "64")


def marks() -> list[Mark]:
    return [
        Mark("t1", {"lr": 1e-4, "opt": "adam", "score": 0.2}, href="/t/t1"),
        Mark("t2", {"lr": 1e-2, "opt": "<sgd>", "score": 0.7}, highlighted=True, href="/t/t2"),
        Mark("t3", {"lr": 3e-3, "opt": "adam", "score": None}),  # not scored: not plotted
    ]


def test_a_scatter_draws_a_linked_point_per_scored_mark_best_last() -> None:
    chart = scatter_chart(marks(), x="lr", y="score", title="score vs lr", log_x=True)
    assert chart.count('<circle class="pt"') == 2
    assert chart.index(">t1: ") < chart.index(">t2: ")  # the highlighted one is drawn last
    assert f'fill="{BEST_COLOR}"' in chart
    assert '<a href="/t/t1" aria-label="t1: lr 1.000e-04, score 0.2">' in chart
    assert "lr (log)" in chart and "<title>score vs lr</title>" in chart
    assert 'role="img" aria-label="score vs lr"' in chart


def test_a_scatter_over_categories_escapes_them() -> None:
    chart = scatter_chart(marks(), x="opt", y="score", title="score vs <opt>")
    assert "&lt;sgd&gt;" in chart and "<sgd>" not in chart
    assert "score vs &lt;opt&gt;" in chart
    assert chart.count('<circle class="pt"') == 2


def test_without_hrefs_there_are_no_links() -> None:
    plain = [Mark(m.label, m.values, m.highlighted) for m in marks()]
    assert "<a " not in scatter_chart(plain, x="lr", y="score", title="s")
    assert "href" not in parallel_coordinates(plain, [("lr", True), ("score", False)], title="p")


def test_nothing_to_plot_says_so() -> None:
    assert "no scored trials" in scatter_chart(marks()[2:], x="lr", y="score", title="s")
    assert "nothing to draw" in parallel_coordinates(marks(), [("score", False)], title="p")


def test_parallel_coordinates_draw_a_line_per_complete_mark() -> None:
    chart = parallel_coordinates(
        marks(), [("lr", True), ("opt", False), ("score", False)], title="pc"
    )
    assert chart.count('<polyline class="line"') == 2
    assert "1 trial(s) without every value left out" in chart
    assert "lr (log)" in chart
    points = re.findall(r'points="([^"]+)"', chart)
    assert all(len(p.split()) == 3 for p in points)  # a vertex per axis


def test_a_line_chart_draws_the_highlighted_series_last_and_drops_a_crowded_legend() -> None:
    series = {f"t{i}": [(0.0, float(i)), (1.0, float(i) / 2)] for i in range(LEGEND_MAX + 1)}
    chart = line_chart(series, title="loss", highlight="t0")
    lines = re.findall(r"<polyline[^>]*><title>([^<]+)</title>", chart)
    assert lines[-1] == "t0" and len(lines) == LEGEND_MAX + 1
    assert f'stroke="{BEST_COLOR}" stroke-width="3"' in chart
    assert "<rect" not in chart  # no legend: each line's title says whose it is
    few = line_chart({"a": [(0.0, 1.0), (1.0, 2.0)], "b": [(0.0, 2.0), (1.0, 1.0)]}, title="x")
    assert few.count("<rect") == 2


def plot(trial_id: str, curve: list[dict[str, float]], **params: float) -> TrialPlot:
    return TrialPlot(trial_id, params, 0.5, curve)


def test_curves_drawn_are_losses_eval_scores_with_two_points_and_rewards() -> None:
    trials = [
        plot(
            "a",
            [
                {
                    "step": 10,
                    "loss": 2,
                    "reward_fmt": 0.1,
                    "reward_mean": 0.2,
                    "primary_score": 0.3,
                },
                {
                    "step": 20,
                    "loss": 1,
                    "reward_fmt": 0.2,
                    "reward_mean": 0.4,
                    "steps_per_second": 9,
                },
            ],
        ),
        plot("b", [{"step": 10, "eval_loss": 3}, {"step": 20, "eval_loss": 2}]),
    ]
    assert curve_metrics(trials) == ["loss", "eval_loss", "reward_mean", "reward_fmt"]
    charts = trial_curve_charts(trials)
    assert len(charts) == 4 and 'aria-label="Learning curves: loss"' in charts[0]


def test_log_params_from_the_space_else_from_the_spread() -> None:
    trials = [plot("a", [], lr=1e-4, wd=0.01), plot("b", [], lr=1e-2, wd=0.05)]
    assert log_params({"lr": {"type": "loguniform"}, "wd": {"type": "uniform"}}, trials) == {"lr"}
    assert log_params(None, trials) == {"lr"}  # 100x apart; wd only 5x
    scatters = param_scatters(trials, log={"lr"})
    assert len(scatters) == 2 and "lr (log)" in scatters[0] and "(log)" not in scatters[1]


def test_the_sweep_report_takes_log_axes_from_the_spec() -> None:
    from support.evidence import sample_manifest
    from tunix_rt.evidence.report import render_sweep_report

    spec = {"searchSpace": {"learningRate": {"type": "loguniform", "low": 1e-4, "high": 1e-2}}}
    manifest = sample_manifest(kind="sweep", config=spec)
    trials = [
        {"trialId": f"t{i}", "state": "Succeeded", "primaryScore": 0.1 * i,
         "params": {"learningRate": 1e-3 * i}, "curve": [{"step": 1, "loss": 2.0 / i},
                                                         {"step": 2, "loss": 1.0 / i}]}
        for i in (1, 2, 3)
    ]  # fmt: skip
    html = render_sweep_report(
        manifest=manifest, summary={"sweep": "s", "phase": "Succeeded", "trials": trials}
    )
    scatter = html.split('aria-label="primary_score vs learningRate"', 1)[1].split("</svg>")[0]
    assert "learningRate (log)" in scatter  # 3x apart: log only because the spec says so
    assert scatter.count('<circle class="pt"') == 3
    assert html.count('<polyline class="series"') == 3
    assert "<a " not in html  # the report links nowhere
