"""What every section of ``make bench`` shares: the figures of the issues (key, what, goal),
:class:`Figure` (one figure's runs) and :class:`Settings` (the sizes of a run). Split out
of ``bench.py`` so that the sections can live in modules of their own."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FAKE_ENTRYPOINT = "support.tune_workloads:train"
SEARCHERS = ("cmaes", "qmc", "gp")

# Every figure of issues 15 and 26: key -> (what, goal). The table lists them all, measured
# or not.
GOALS: dict[str, tuple[str, str]] = {
    "trainer_vs_bare_ratio": ("trainer steps/s ÷ bare jitted step", ">= 0.95"),
    "trainer_mfu_cpu": ("trainer FLOP/s ÷ measured matmul peak", "report, raise"),
    "compile_cache_ratio": ("compile s of trials 2..N ÷ trial 1", "<= 0.1"),
    "tune_overhead_fraction": ("(sweep wall - Σ trial compute) ÷ wall, 20 trials", "<= 0.10"),
    "asha_step_fraction": ("trial-steps ASHA ÷ FIFO, 20 trials", "<= 0.5"),
    "asha_score_gap": ("best primary_score ASHA - FIFO", ">= -0.02"),
    "operator_p95_create_s_200": ("p95 s Sweep created → RayJob, 200 Sweeps", "<= 0.5"),
    "operator_p95_create_s_200_apiserver": (
        "p95 s Sweep created → RayJob, 200 Sweeps, real kube-apiserver",
        "report",
    ),
    "operator_rss_mib_200": ("operator peak RSS MiB, 200 Sweeps", "<= 100"),
    "operator_cpu_s_per_sweep_hour": ("operator CPU s / followed Sweep / h", "<= 0.05"),
    "tunix_vs_bare_ratio": ("Tunix trial steps/s ÷ bare Tunix loop", ">= 0.95"),
    "ui_list_p95_ms_200x20": ("web view list page p95 ms, 200 sweeps x 20 trials", "<= 300"),
    "ui_sweep_p95_ms_20": ("web view sweep page p95 ms, 20 trials", "<= 300"),
    "demo_parallel_efficiency": ("demo wall 1-at-a-time ÷ (2 x wall 2-at-a-time)", "report, raise"),
    **{
        f"search_{alg}_vs_random": (f"best primary_score {alg} - random, 20 trials", "> 0")
        for alg in SEARCHERS
    },
    "warm_start_trials_ratio": (
        "trials to 95 % of a cold TPE sweep's best, warm ÷ cold (issue 26)",
        "<= 0.6",
    ),
}


@dataclass
class Figure:
    """One figure: its value in every repeat; the median is what is recorded."""

    key: str
    runs: list[float]
    definition: str

    def record(self) -> dict[str, Any]:
        return {
            "median": statistics.median(self.runs),
            "min": min(self.runs),
            "max": max(self.runs),
            "runs": self.runs,
            "goal": GOALS.get(self.key, ("", ""))[1],
            "definition": self.definition,
        }


@dataclass
class Settings:
    """Sizes of one bench run (full or quick)."""

    quick: bool
    repeats: int
    out: Path
    readme: Path
    sweep_env: dict[str, str] = field(default_factory=dict)
    trials: int | None = None
    """Trials of the 20-trial sweeps (None: 20, quick 2): a smaller real-trainer run."""

    def sweep_trials(self) -> int:
        return self.trials or (2 if self.quick else 20)

    @property
    def fake(self) -> bool:
        return self.quick
