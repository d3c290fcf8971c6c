"""Evidence of a run: run_manifest.json, eval_summary.json, eval_rows.jsonl, the log,
report.html, SHA256SUMS, and the reproducible submission zip (see docs/evidence.md); for a
finished Sweep its summary, trial records, log and report (``evidence.sweep``).

Pure Python (no JAX): the operator and the CLI import it as well as the trial images.
"""

from tunix_rt.evidence.checksums import ChecksumError, parse_sums, write_sums
from tunix_rt.evidence.manifest import build_run_manifest, commit_info
from tunix_rt.evidence.package import (
    PackageError,
    VerifyReport,
    build_zip,
    bundle_name,
    collect_files,
    verify_zip,
)
from tunix_rt.evidence.report import render_report
from tunix_rt.evidence.summary import build_eval_summary
from tunix_rt.evidence.sweep import SweepRunFacts, write_sweep_evidence
from tunix_rt.evidence.upload import Published, publish_folder
from tunix_rt.evidence.validation import EvidenceError, schema_errors, validate

__all__ = [
    "ChecksumError",
    "EvidenceError",
    "PackageError",
    "Published",
    "SweepRunFacts",
    "VerifyReport",
    "build_eval_summary",
    "build_run_manifest",
    "build_zip",
    "bundle_name",
    "collect_files",
    "commit_info",
    "parse_sums",
    "publish_folder",
    "render_report",
    "schema_errors",
    "validate",
    "verify_zip",
    "write_sums",
    "write_sweep_evidence",
]
