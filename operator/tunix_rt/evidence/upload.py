"""Publishing an evidence folder to the store, in an order a reader can trust.

Evidence files first, then ``SHA256SUMS``, then the zip: a reader that sees the zip
(or the checksums) sees everything they cover. What an earlier run left at the prefix
is moved to ``<prefix>/archive/<its end time>/`` first (with ``archive=True``; else
removed once the new evidence is up), except under ``keep`` subfolders (failure logs of
earlier attempts), so the prefix always matches its SHA256SUMS and an earlier bundle is
never lost, even when the new upload fails half-way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tunix_rt.contract.file_names import ARCHIVE_DIR, RUN_MANIFEST_JSON, SHA256SUMS, SUBMISSION_DIR
from tunix_rt.contract.layout import bundle_key, latest_bundle
from tunix_rt.storage import Store, StoreError


@dataclass(frozen=True)
class Published:
    """Where the evidence went: every file's URI (sorted) and the zip's, if any."""

    uris: list[str]
    bundle_uri: str | None


def publish_folder(
    store: Store,
    folder: Path,
    prefix: str,
    *,
    keep: Iterable[str] = (),
    archive: bool = False,
    say: Callable[[str], None] = lambda _line: None,
) -> Published:
    """Upload every file of ``folder`` to ``<prefix>/…``; what was there before is
    archived (``archive``) or, once the upload is complete, removed.

    ``folder`` is a working copy, never the store's own folder (file://): archiving or
    pruning there would remove the evidence being published.
    """
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    in_zip_dir = f"{SUBMISSION_DIR}/"
    order = [n for n in files if n != SHA256SUMS and not n.startswith(in_zip_dir)]
    order += [n for n in files if n == SHA256SUMS]
    order += [n for n in files if n.startswith(in_zip_dir)]
    target = store.local_path(prefix)
    if target is not None and target.resolve() == folder.resolve():
        raise ValueError(f"{folder} is the store's folder for {prefix}: publish a copy")
    kept = tuple(f"{prefix}/{sub.strip('/')}/" for sub in (*keep, ARCHIVE_DIR))
    if archive:
        archive_earlier(store, prefix, kept, say)
    uris = [store.upload_file(folder / name, f"{prefix}/{name}") for name in order]
    wanted = {f"{prefix}/{name}" for name in order}
    for stale in sorted(set(store.list(prefix)) - wanted):
        if stale.startswith(kept):
            continue
        store.delete(stale)
        say(f"removed stale {store.uri_for(stale)}")
    bundles = [n for n in order if n.startswith(in_zip_dir)]
    bundle_uri = store.uri_for(f"{prefix}/{bundles[-1]}") if bundles else None
    say(f"uploaded {len(order)} files to {store.uri_for(prefix)}")
    return Published(sorted(uris), bundle_uri)


def archive_earlier(
    store: Store, prefix: str, kept: tuple[str, ...], say: Callable[[str], None]
) -> str | None:
    """Move an earlier run's evidence at ``prefix`` to ``archive/<its end time>/``.

    The folder is named after that run's ``run_manifest.json`` end time (else now), so
    it sorts in run order. Each file is copied before its original is deleted.
    """
    earlier = [k for k in store.list(prefix) if not k.startswith(kept)]
    if not earlier:
        return None
    moment = datetime.now(UTC)
    if f"{prefix}/{RUN_MANIFEST_JSON}" in earlier:
        try:
            end = str(store.read_json(f"{prefix}/{RUN_MANIFEST_JSON}").get("end_time") or "")
            moment = datetime.fromisoformat(end.replace("Z", "+00:00"))
        except (StoreError, ValueError, AttributeError):
            pass
    base = f"{prefix}/{ARCHIVE_DIR}/{moment.astimezone(UTC):%Y%m%dT%H%M%SZ}"
    dest, n = base, 0
    while store.list(dest):
        n += 1
        dest = f"{base}-{n}"
    for key in earlier:
        store.write_bytes(f"{dest}/{key[len(prefix) + 1 :]}", store.read_bytes(key))
        store.delete(key)
    say(f"moved {len(earlier)} file(s) of an earlier run to {store.uri_for(dest)}")
    return dest


__all__ = [
    "ARCHIVE_DIR",
    "Published",
    "archive_earlier",
    "bundle_key",
    "latest_bundle",
    "publish_folder",
]
