"""Packaging an evidence folder into a reproducible submission zip, and verifying one.

``build_zip(RUN_DIR)`` → ``submission/tunix_rt_<run>_<date>_<sha>.zip``:

* every regular file of the folder (the ``submission/`` subfolder and in-flight temp
  files aside) plus ``SHA256SUMS``; the folder's own SHA256SUMS must list exactly those
  files with matching digests (a changed or unlisted file is refused), or, when the
  folder has none, one is computed into the zip;
* byte-identical when run twice on the same folder: entries sorted, fixed timestamps
  (1980-01-01, or ``$SOURCE_DATE_EPOCH``), fixed permissions (0644), DEFLATE level 9;
  ``<date>`` and ``<sha>`` come from run_manifest.json (end date, short commit sha);
* symlinks anywhere in the folder and paths escaping it are refused.

``verify_zip(ZIP)`` checks entry names, SHA256SUMS against every entry (and every entry
against SHA256SUMS), the zip CRCs, and the JSON evidence files against their schemas.
"""

from __future__ import annotations

import fnmatch
import io
import os
import re
import stat
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tunix_rt.api.errors import validation_errors
from tunix_rt.api.trial import SweepResult, TrialResult
from tunix_rt.contract.file_names import (
    EVAL_ROWS_JSONL,
    EVAL_SUMMARY_JSON,
    KAGGLE_OUTPUT_LOG_TXT,
    RUN_MANIFEST_JSON,
    SHA256SUMS,
    SUBMISSION_DIR,
    SWEEP_LOG_TXT,
    SWEEP_SUMMARY_JSON,
    TRIALS_DIR,
    TUNIX_RT_IGNORE,
)
from tunix_rt.evidence.checksums import (
    ChecksumError,
    check_name,
    format_sums,
    parse_sums,
    sha256_bytes,
    sha256_file,
)
from tunix_rt.evidence.validation import schema_errors
from tunix_rt.reading import RECORD, ReadError, load_json, read_file
from tunix_rt.reading.limits import size_text
from tunix_rt.reading.zips import BUNDLE, ZipLimitError, entry_problems, read_entry
from tunix_rt.scoring import PRIMARY_SCORE, compute_primary_score
from tunix_rt.storage.local import TMP_PREFIX, atomic_local_file

REHEARSAL_REQUIRED = (RUN_MANIFEST_JSON, EVAL_SUMMARY_JSON, KAGGLE_OUTPUT_LOG_TXT, SHA256SUMS)

SWEEP_REQUIRED = (RUN_MANIFEST_JSON, SWEEP_SUMMARY_JSON, SWEEP_LOG_TXT, SHA256SUMS)

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644
COMPRESS_LEVEL = 9


class PackageError(ValueError):
    """The folder cannot be packaged as it is (the message says which path and why)."""


# --------------------------------------------------------------------------- collecting


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def safe_member(run_dir: Path, name: str) -> Path:
    """The path of ``name`` inside run_dir; refuses traversal, absolute names and symlinks."""
    try:
        check_name(name)
    except ChecksumError as exc:
        raise PackageError(f"refusing {name!r}: path escapes the run folder ({exc})") from None
    root = run_dir.resolve()
    candidate = run_dir / name
    current = run_dir
    for part in name.split("/"):
        current = current / part
        if current.is_symlink():
            raise PackageError(f"refusing symlink {current} in the run folder")
    resolved = candidate.resolve()
    if not _inside(resolved, root):
        raise PackageError(f"refusing {name!r}: resolves to {resolved}, outside {root}")
    return candidate


def ignore_patterns(run_dir: Path) -> list[str]:
    """The folder's ignore patterns (``#`` comments and blank lines skipped)."""
    path = run_dir / TUNIX_RT_IGNORE
    if not path.is_file() or path.is_symlink():
        return []
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _ignored(rel: str, patterns: list[str]) -> bool:
    for pattern in patterns:
        folder = pattern.rstrip("/")
        if fnmatch.fnmatchcase(rel, folder) or rel.startswith(f"{folder}/"):
            return True
    return False


def _rel(folder: str, name: str) -> str:
    return name if folder == "." else f"{folder}/{name}"


def collect_files(run_dir: Path) -> list[str]:
    """Relative '/'-names of every evidence file, sorted; symlinks and specials refused;
    what the folder's ``.tunix-rt-ignore`` names is not evidence and is left out."""
    if run_dir.is_symlink():
        raise PackageError(f"refusing symlink {run_dir}: the run folder itself is a link")
    if not run_dir.is_dir():
        raise PackageError(f"{run_dir} is not a folder")
    root = run_dir.resolve()
    ignored = ignore_patterns(root)
    names: list[str] = []
    for current, dirs, files in os.walk(root, followlinks=False):
        here = Path(current)
        rel_dir = here.relative_to(root).as_posix()
        dirs[:] = [d for d in dirs if not _ignored(_rel(rel_dir, d), ignored)]
        for name in sorted(dirs):
            path = here / name
            if path.is_symlink():
                raise PackageError(f"refusing symlink {run_dir / path.relative_to(root)}")
        if rel_dir == ".":
            dirs[:] = sorted(d for d in dirs if d != SUBMISSION_DIR)
        else:
            dirs.sort()
        for name in files:
            path = here / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                raise PackageError(f"refusing symlink {run_dir / rel} in the run folder")
            mode = path.lstat().st_mode
            if not stat.S_ISREG(mode):
                raise PackageError(f"refusing {run_dir / rel}: not a regular file")
            if name.startswith(TMP_PREFIX) or rel == TUNIX_RT_IGNORE or _ignored(rel, ignored):
                continue
            check_name(rel)
            names.append(rel)
    return sorted(names, key=lambda n: n.encode())


# --------------------------------------------------------------------------- naming


def _slug(text: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")
    return slug or "run"


def bundle_name(manifest: dict[str, Any]) -> str:
    """``tunix_rt_<run>_<YYYYMMDD>_<sha7>[-dirty].zip`` from a run manifest."""
    run = _slug(str(manifest.get("run_name") or "run"))
    end = str(manifest.get("end_time") or "")
    try:
        date = datetime.fromisoformat(end.replace("Z", "+00:00")).strftime("%Y%m%d")
    except ValueError:
        raise PackageError(f"{RUN_MANIFEST_JSON} has no valid end_time: {end!r}") from None
    sha = str(manifest.get("commit_sha") or "unknown")
    short = "unknown" if sha == "unknown" else sha[:7]
    if manifest.get("commit_dirty") and short != "unknown":
        short += "-dirty"
    return f"tunix_rt_{run}_{date}_{_slug(short)}.zip"


def zip_date_time() -> tuple[int, int, int, int, int, int]:
    """1980-01-01 00:00:00, or $SOURCE_DATE_EPOCH (UTC) clamped to the zip range."""
    raw = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not raw:
        return ZIP_EPOCH
    try:
        moment = time.gmtime(int(raw))
    except (ValueError, OverflowError, OSError):
        raise PackageError(f"SOURCE_DATE_EPOCH={raw!r} is not a Unix timestamp") from None
    if moment.tm_year < 1980:
        return ZIP_EPOCH
    if moment.tm_year > 2107:
        return (2107, 12, 31, 23, 59, 58)
    return (
        moment.tm_year,
        moment.tm_mon,
        moment.tm_mday,
        moment.tm_hour,
        moment.tm_min,
        moment.tm_sec - moment.tm_sec % 2,
    )


# --------------------------------------------------------------------------- building


def _checked_sums(run_dir: Path, files: list[str]) -> bytes:
    """The SHA256SUMS bytes for the bundle: the folder's own (checked) or computed."""
    evidence = [n for n in files if n != SHA256SUMS]
    if SHA256SUMS not in files:
        return format_sums({n: sha256_file(safe_member(run_dir, n)) for n in evidence}).encode()
    raw = safe_member(run_dir, SHA256SUMS).read_bytes()
    try:
        listed = parse_sums(raw.decode())
    except (ChecksumError, UnicodeDecodeError) as exc:
        raise PackageError(f"{run_dir / SHA256SUMS}: {exc}") from None
    for name in listed:
        safe_member(run_dir, name)  # a listed ../ or symlink is refused, not followed
    unlisted = sorted(set(evidence) - set(listed))
    missing = sorted(set(listed) - set(evidence))
    if unlisted:
        raise PackageError(f"files not listed in {SHA256SUMS}: {', '.join(unlisted)}")
    if missing:
        raise PackageError(f"files listed in {SHA256SUMS} but missing: {', '.join(missing)}")
    changed = sorted(n for n in evidence if sha256_file(run_dir / n) != listed[n])
    if changed:
        raise PackageError(f"files changed since {SHA256SUMS} was written: {', '.join(changed)}")
    return raw


def zip_bytes(run_dir: Path) -> bytes:
    """The deterministic zip of a run folder, in memory."""
    files = collect_files(run_dir)
    if not [n for n in files if n != SHA256SUMS]:
        raise PackageError(f"{run_dir} holds no evidence files")
    sums = _checked_sums(run_dir, files)
    entries = {n: safe_member(run_dir, n).read_bytes() for n in files if n != SHA256SUMS}
    entries[SHA256SUMS] = sums
    stamp = zip_date_time()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(entries, key=lambda n: n.encode()):
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.create_system = 3
            info.external_attr = FILE_MODE << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(
                info,
                entries[name],
                compress_type=zipfile.ZIP_DEFLATED,
                compresslevel=COMPRESS_LEVEL,
            )
    return buffer.getvalue()


def read_manifest(run_dir: Path) -> dict[str, Any]:
    path = safe_member(run_dir, RUN_MANIFEST_JSON)
    if not path.is_file():
        raise PackageError(f"{run_dir} has no {RUN_MANIFEST_JSON}: not an evidence folder")
    try:
        data = load_json(read_file(path, RECORD), str(path), RECORD)
    except ReadError as exc:
        raise PackageError(f"{path} is not JSON: {exc.problem}") from None
    if not isinstance(data, dict):
        raise PackageError(f"{path} is not a JSON object")
    return data


def build_zip(run_dir: Path, out_dir: Path | None = None, *, name: str | None = None) -> Path:
    """Package ``run_dir`` into ``out_dir/<bundle_name>`` (default ``./submission``)."""
    run_dir = Path(run_dir)
    data = zip_bytes(run_dir)
    zip_name = name or bundle_name(read_manifest(run_dir))
    check_name(zip_name)
    target_dir = Path(out_dir) if out_dir is not None else Path.cwd() / SUBMISSION_DIR
    target = target_dir / zip_name
    with atomic_local_file(target) as handle:
        handle.write(data)
    return target


# --------------------------------------------------------------------------- verifying


@dataclass
class VerifyReport:
    """What ``verify_zip`` found; ``ok`` when ``errors`` is empty."""

    path: str
    files: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    primary_score: float | None = None
    run_name: str | None = None

    @property
    def ok(self) -> bool:
        return not self.errors


def verify_zip(path: Path) -> VerifyReport:
    """Check a bundle: safe names, SHA256SUMS ⇔ entries, CRCs, schemas, required files."""
    report = VerifyReport(path=str(path))
    try:
        size = os.stat(path).st_size
        if size > BUNDLE.max_archive_bytes:
            report.errors.append(
                f"the zip is {size_text(size)}, over the {size_text(BUNDLE.max_archive_bytes)} "
                "a bundle may be; refused unread"
            )
            return report
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        report.errors.append(f"not a readable zip: {exc}")
        return report
    with archive:
        infos = archive.infolist()
        oversized = entry_problems(infos)
        if oversized:  # before anything is inflated
            report.errors.extend(oversized)
            return report
        names = [info.filename for info in infos]
        report.files = sorted(names, key=lambda n: n.encode())
        if len(set(names)) != len(names):
            report.errors.append("duplicate entries in the zip")
        safe: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            try:
                check_name(info.filename)
            except ChecksumError as exc:
                report.errors.append(f"unsafe entry {info.filename!r}: {exc}")
                continue
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                report.errors.append(f"entry {info.filename!r} is a symlink")
                continue
            if info.is_dir():
                report.errors.append(f"entry {info.filename!r} is a folder entry")
                continue
            safe[info.filename] = info
        failing = _failing_entry(archive) if safe and len(safe) == len(infos) else None
        if failing is not None:
            report.errors.append(failing)
            return report
        if SHA256SUMS not in safe:
            report.errors.append(f"{SHA256SUMS} is missing")
            return report
        try:
            listed = parse_sums(read_entry(archive, safe[SHA256SUMS]).decode())
        except (ChecksumError, UnicodeDecodeError) as exc:
            report.errors.append(f"{SHA256SUMS}: {exc}")
            return report
        entries = set(safe) - {SHA256SUMS}
        for name in sorted(set(listed) - entries):
            report.errors.append(f"{name} is listed in {SHA256SUMS} but not in the zip")
        for name in sorted(entries - set(listed)):
            report.errors.append(f"{name} is in the zip but not listed in {SHA256SUMS}")
        contents: dict[str, bytes] = {}
        for name in sorted(entries & set(listed)):
            data = read_entry(archive, safe[name])
            contents[name] = data
            if sha256_bytes(data) != listed[name]:
                report.errors.append(f"{name}: sha256 does not match {SHA256SUMS}")
        _check_documents(contents, report)
    return report


def _failing_entry(archive: zipfile.ZipFile) -> str | None:
    """Why the first entry whose data does not decompress, inflates past its declared
    size, or fails its CRC cannot be read (a corrupt deflate stream raises instead of
    failing the CRC: both mean the same here)."""
    for info in archive.infolist():
        try:
            read_entry(archive, info)
        except ZipLimitError as exc:
            return f"{exc}: refused (corrupt or a zip bomb)"
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError):
            return f"entry {info.filename!r} fails its CRC check (corrupt data)"
    return None


def _check_documents(contents: dict[str, bytes], report: VerifyReport) -> None:
    manifest = _checked_document(contents, RUN_MANIFEST_JSON, "run_manifest", report)
    if manifest is not None:
        report.run_name = manifest.get("run_name")
    kind = manifest.get("kind") if manifest is not None else None
    required_files = {"rehearsal": REHEARSAL_REQUIRED, "sweep": SWEEP_REQUIRED}.get(str(kind), ())
    for required in required_files:
        if required not in contents and required != SHA256SUMS:
            report.errors.append(f"{required} is missing (required in a {kind} bundle)")
    if kind == "sweep" and SWEEP_SUMMARY_JSON in contents:
        _check_sweep(contents, report)
    summary = _checked_document(contents, EVAL_SUMMARY_JSON, "eval_summary", report)
    if summary is not None:
        score = summary.get(PRIMARY_SCORE)
        report.primary_score = score if isinstance(score, int | float) else None
    if EVAL_ROWS_JSONL in contents:
        rows: list[Any] = []
        for number, line in enumerate(contents[EVAL_ROWS_JSONL].decode().splitlines(), start=1):
            row = _json_or_error(f"{EVAL_ROWS_JSONL} line {number}", line.encode(), report)
            errors = schema_errors("eval_row", row) if row is not None else ["not JSON"]
            if errors:
                report.errors.append(f"{EVAL_ROWS_JSONL} line {number} {errors[0]}")
                return
            rows.append(row)
        if EVAL_SUMMARY_JSON in contents and report.primary_score is not None:
            recomputed = compute_primary_score(rows)
            if recomputed != report.primary_score:
                report.errors.append(
                    f"{EVAL_SUMMARY_JSON} primary_score {report.primary_score} != "
                    f"compute_primary_score over {EVAL_ROWS_JSONL} ({recomputed})"
                )


def _check_sweep(contents: dict[str, bytes], report: VerifyReport) -> None:
    """The summary reads as the operator reads it, and names exactly the bundled trials."""
    try:
        summary = SweepResult.model_validate_json(contents[SWEEP_SUMMARY_JSON])
    except ValidationError as exc:
        report.errors.append(f"{SWEEP_SUMMARY_JSON} is not a sweep summary: {_fields(exc)}")
        return
    report.primary_score = summary.primary_score
    bundled: dict[str, TrialResult] = {}
    for name, data in contents.items():
        if name.startswith(f"{TRIALS_DIR}/") and name.endswith(".json"):
            try:
                trial = TrialResult.model_validate_json(data)
            except ValidationError as exc:
                report.errors.append(f"{name} is not a trial record: {_fields(exc)}")
                continue
            bundled[trial.trial_id] = trial
    listed = {t.trial_id for t in summary.trials}
    for trial_id in sorted(listed - set(bundled)):
        report.errors.append(f"trial {trial_id} is in {SWEEP_SUMMARY_JSON}, not in {TRIALS_DIR}/")
    for trial_id in sorted(set(bundled) - listed):
        report.errors.append(f"{TRIALS_DIR}/{trial_id}.json is not in {SWEEP_SUMMARY_JSON}")
    best = next((t for t in summary.trials if t.trial_id == summary.best_trial_id), None)
    if summary.best_trial_id is not None and best is None:
        report.errors.append(f"best trial {summary.best_trial_id} is not among the trials")
    elif best is not None and best.primary_score != summary.primary_score:
        report.errors.append(
            f"{SWEEP_SUMMARY_JSON} primary_score {summary.primary_score} != its best trial's "
            f"({best.primary_score})"
        )


def _checked_document(
    contents: dict[str, bytes], name: str, schema: str, report: VerifyReport
) -> dict[str, Any] | None:
    """A bundled JSON document, its schema errors reported; the document when an object."""
    if name not in contents:
        return None
    document = _json_or_error(name, contents[name], report)
    if document is None:
        return None
    report.errors.extend(f"{name} {e}" for e in schema_errors(schema, document))
    return document if isinstance(document, dict) else None


def _fields(exc: ValidationError) -> str:
    """A model's errors as ``field: message`` (three at most), not pydantic's dump."""
    pairs = validation_errors(exc)
    text = "; ".join(f"{p}: {m}" if p else m for p, m in pairs[:3])
    return text + (f" (and {len(pairs) - 3} more)" if len(pairs) > 3 else "")


def _json_or_error(label: str, data: bytes, report: VerifyReport) -> Any:
    try:
        return load_json(data, label, RECORD)
    except ReadError as exc:
        report.errors.append(f"{label} is not JSON: {exc.problem}")
        return None
