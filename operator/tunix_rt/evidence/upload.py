"""Publishing an evidence folder to the store, in an order a reader can trust.

Evidence files first, then ``SHA256SUMS``, then the zip: a reader that sees the zip
(or the checksums) sees everything they cover. Keys under the prefix that the new
evidence does not have are removed, except under ``keep`` subfolders (failure logs of
earlier attempts, a sweep's trial records), so the prefix always matches its SHA256SUMS.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from tunix_rt.evidence.checksums import SUMS_NAME
from tunix_rt.evidence.package import SUBMISSION_DIR
from tunix_rt.storage import Store


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
    say: Callable[[str], None] = lambda _line: None,
) -> Published:
    """Upload every file of ``folder`` to ``<prefix>/…`` and drop stale keys there.

    With a file:// store whose folder *is* ``folder`` nothing is copied (the evidence
    was written in place); stale keys are still removed.
    """
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    in_zip_dir = f"{SUBMISSION_DIR}/"
    order = [n for n in files if n != SUMS_NAME and not n.startswith(in_zip_dir)]
    order += [n for n in files if n == SUMS_NAME]
    order += [n for n in files if n.startswith(in_zip_dir)]
    target = store.local_path(prefix)
    same_place = target is not None and target.resolve() == folder.resolve()
    uris = []
    for name in order:
        key = f"{prefix}/{name}"
        uris.append(store.uri_for(key) if same_place else store.upload_file(folder / name, key))
    wanted = {f"{prefix}/{name}" for name in order}
    kept = tuple(f"{prefix}/{sub.strip('/')}/" for sub in keep)
    for stale in sorted(set(store.list(prefix)) - wanted):
        if stale.startswith(kept):
            continue
        store.delete(stale)
        say(f"removed stale {store.uri_for(stale)}")
    bundles = [n for n in order if n.startswith(in_zip_dir)]
    bundle_uri = store.uri_for(f"{prefix}/{bundles[-1]}") if bundles else None
    say(f"uploaded {len(order)} files to {store.uri_for(prefix)}")
    return Published(sorted(uris), bundle_uri)


def latest_bundle(store: Store, prefix: str) -> str | None:
    """URI of the newest zip under ``<prefix>/submission/``, None when there is none."""
    zips = sorted(k for k in store.list(prefix) if k.startswith(f"{prefix}/{SUBMISSION_DIR}/"))
    zips = [k for k in zips if k.endswith(".zip")]
    return store.uri_for(zips[-1]) if zips else None
