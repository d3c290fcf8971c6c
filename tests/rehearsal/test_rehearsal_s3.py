"""A rehearsal uploads its evidence and zip to an s3:// store (moto's S3 server on loopback)."""

from __future__ import annotations

import io
import socket
import zipfile
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from support.rehearsal import EVIDENCE_FILES, FakeTrainer, tiny_trainer
from tunix_rt.api.rehearsal import RehearsalSpec
from tunix_rt.evidence import verify_zip
from tunix_rt.rehearsal import plan_from_spec, result_from_store, run_rehearsal

SECRET = "moto-secret-VALUE-do-not-leak-123"


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("TUNIX_RT_S3_ENDPOINT_URL", endpoint)
    yield endpoint
    server.stop()


def test_rehearsal_uploads_evidence_and_zip_to_s3(s3_endpoint: str, tmp_path: Path) -> None:
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket="evidence")
    spec = RehearsalSpec.model_validate(
        {"trainer": tiny_trainer(), "storage": "s3://evidence/tunix-rt"}
    )
    plan = plan_from_spec(spec, name="s3-demo", namespace="ml")
    result = run_rehearsal(plan, trainer=FakeTrainer(), echo=None)
    prefix = "tunix-rt/ml/rehearsals/s3-demo/"
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket="evidence")["Contents"])
    names = [k.removeprefix(prefix) for k in keys]
    assert names[:6] == sorted(EVIDENCE_FILES)
    assert len(names) == 7 and names[6].startswith("submission/tunix_rt_s3-demo_")
    assert result.evidence_uri == "s3://evidence/tunix-rt/ml/rehearsals/s3-demo"
    assert result.bundle_uri == f"s3://evidence/{keys[6]}"
    assert result.local_dir is None
    assert result.evidence_files == [f"s3://evidence/{k}" for k in keys]
    body = client.get_object(Bucket="evidence", Key=keys[6])["Body"].read()
    local_zip = tmp_path / "bundle.zip"
    local_zip.write_bytes(body)
    assert verify_zip(local_zip).ok
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert all(SECRET.encode() not in archive.read(n) for n in archive.namelist())
    status = result_from_store("s3://evidence/tunix-rt", "ml", "s3-demo")
    assert status is not None
    assert status.primary_score == result.primary_score == 0.5
    assert status.bundle_uri == result.bundle_uri
