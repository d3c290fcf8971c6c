"""s3:// only, against moto's S3 server over real HTTP on loopback (what s3:// shares with
gs:// is in test_store_remote.py)."""

from __future__ import annotations

import os

import pytest

from support.net import CuttingProxy
from support.stores import StoreBackend, policy
from tunix_rt.storage import Store, StoreError


@pytest.mark.parametrize("backend", ["s3"], indirect=True)
def test_multipart_upload_cut_mid_part_leaves_no_object(
    backend: StoreBackend, proxy: CuttingProxy
) -> None:
    """A multipart write (5 MiB parts) dies during a part: S3 never shows the object."""
    store = Store(f"{backend.root}/mp", retry=policy(attempts=2), part_size=5 * 2**20)
    payload = os.urandom(12 * 2**20)
    proxy.cut_after = 2 * 2**20  # bytes through one connection: inside a part's body
    proxy.cuts = 10**6  # every connection is cut: the server is effectively gone
    proxy.go_away = False
    with pytest.raises(StoreError, match=rf"{backend.root}/mp/model.bin failed after 2 attempts"):
        store.write_bytes("model.bin", payload)
    assert backend.objects() == {}
    proxy.cut_after = None  # healthy again: the same write goes through whole
    store.write_bytes("model.bin", payload)
    assert backend.objects() == {"mp/model.bin": len(payload)}
