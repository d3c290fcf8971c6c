"""Secrets never in a spec (issue 23, item 1): one detector (``tunix_rt.api.secrets``)
refuses credentials in every string field of both specs, naming the field and the fix,
never echoing the value; the project's own paths pass; every URI shown is redacted (the
CLI, logs, messages), the secret that holds a ``/`` included."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError
from typer.testing import CliRunner

import tunix_rt.cli as cli
from tunix_rt.api.common import check_storage
from tunix_rt.api.errors import describe
from tunix_rt.api.manifests import check_document
from tunix_rt.api.rehearsal import RehearsalSpec
from tunix_rt.api.secrets import credentials, redact, spec_credentials, userinfo_span
from tunix_rt.api.sweep import SweepSpec
from tunix_rt.cli.common import esc
from tunix_rt.storage import Store, StoreError, redact_uri
from tunix_rt.storage.redact import ScrubFilter
from tunix_rt.train.config import load_trainer_config

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"

AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
"""AWS's documented example secret: 40 characters, two of them '/'."""
SLASH_URI = f"s3://AKIAIOSFODNN7EXAMPLE:{AWS_SECRET}@bucket/runs"

# (shape, value, the secret part that must never be shown, what the detector says)
SHAPES = [
    ("userinfo, / in the secret", SLASH_URI, "bPxRfiCY", "user:secret@"),
    ("userinfo, + and = in the secret", "gs://svc:ab+cd=ef/gh1@bkt/x", "ab+cd=ef", "user:secret@"),
    ("https userinfo", "https://alice:hunter2pw@data.example.com/t.jsonl", "hunter2pw", "@"),
    ("userinfo, no password", "gs://tok3nvalue@bkt/x", "tok3nvalue", "user:secret@"),
    (
        "S3 presigned URL",
        "https://b.s3.amazonaws.com/t.jsonl?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20260101%2Fus-east-1%2Fs3%2Faws4_request"
        "&X-Amz-Security-Token=FwoGZXIvY&X-Amz-Signature=9f0e1d2c3b4a5f6e",
        "9f0e1d2c3b4a5f6e",
        "X-Amz-Signature",
    ),
    (
        "GCS signed URL",
        "https://storage.googleapis.com/b/t.jsonl?X-Goog-Algorithm=GOOG4-RSA-SHA256"
        "&X-Goog-Credential=svc%40p.iam.gserviceaccount.com&X-Goog-Signature=a1b2c3d4e5f6",
        "a1b2c3d4e5f6",
        "X-Goog-Signature",
    ),
    (
        "Azure SAS",
        "https://acct.blob.core.windows.net/c/t.jsonl?sv=2022-11-02&se=2026-01-01&sp=r"
        "&sig=Q2FuYXJ5U2lnbmF0dXJl",
        "Q2FuYXJ5U2lnbmF0dXJl",
        "sig",
    ),
    ("access_token", "https://h/x.jsonl?access_token=opaque0value", "opaque0value", "access_token"),
    ("AWS access key id", "s3://bucket/AKIAIOSFODNN7EXAMPLE/x", "AKIAIOSFODNN7EXAMPLE", "key id"),
    ("AWS secret after =", f"aws_secret_access_key={AWS_SECRET}", "bPxRfiCY", "secret access"),
    (
        "private key block",
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----",
        "MIIEvQIBADANBgkq",
        "private key",
    ),
    (
        "GCP key JSON",
        '{"type": "service_account", "private_key": "MIIEvQIBADANBgkqhkiG"}',
        "MIIEvQIBADANBgkqhkiG",
        "private key",
    ),
    ("GitHub token", "ghp_" + "Zx9" * 12, "Zx9Zx9Zx9", "GitHub"),
    ("Hugging Face token", "hf_" + "aB3" * 11, "aB3aB3aB3", "Hugging Face"),
    ("Google API key", "AIza" + "Sy0-" * 8 + "abc", "Sy0-Sy0-", "Google API"),
]

BENIGN = [
    "file://./runs",
    "s3://ml-bucket/tunix-rt",
    "gs://ml-bucket/ckpt/gemma3-1b/step_1000",
    "gs://b/ckpt/0123456789abcdef0123456789abcdef01234567",  # a git sha is not a secret
    "hf://datasets/org/name@main/train.jsonl",  # a revision, not userinfo
    "https://host:8080/a@b",  # a port, then a path
    "file:///tmp/Runs/Sweep1/Checkpoints/Step10",
    "examples/checkpoints/tiny",
    "/data/train.jsonl",
    "ghcr.io/tunix-rt/trainer:0.1.0-cpu",
    "tunix_rt_examples.trainer:train",
    "tokenizer_path",
]


@pytest.mark.parametrize(("shape", "value", "secret", "said"), SHAPES, ids=[s[0] for s in SHAPES])
def test_each_credential_shape_is_found_and_redacted(
    shape: str, value: str, secret: str, said: str
) -> None:
    found = credentials(value)
    assert found and said in " ".join(found), (shape, found)
    assert secret not in " ".join(found)
    assert secret not in redact(value)
    assert secret not in redact(f"error: cannot read {value} (line 3)")


@pytest.mark.parametrize("value", BENIGN)
def test_the_projects_own_paths_are_not_credentials(value: str) -> None:
    assert credentials(value) == []
    assert redact(value) == value


def _example_files() -> list[Path]:
    return sorted(EXAMPLES.rglob("*.yaml"))


@pytest.mark.parametrize("path", _example_files(), ids=lambda p: p.relative_to(EXAMPLES).as_posix())
def test_every_example_still_validates_and_holds_no_credential(path: Path) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert all(spec_credentials(doc) == [] for doc in docs)
    for index, doc in enumerate(docs):
        if str(doc.get("apiVersion", "")).startswith("tunixrt.io/"):
            checked = check_document(doc, index)
            assert checked.errors == [], checked.errors
        elif path.name.startswith("trainer-"):
            load_trainer_config(path)


def _sweep() -> dict[str, Any]:
    doc = yaml.safe_load((EXAMPLES / "sweep-python.yaml").read_text())
    spec: dict[str, Any] = doc["spec"]
    return spec


def _rehearsal() -> dict[str, Any]:
    spec = {"trainer": yaml.safe_load((EXAMPLES / "trainer-tunix-sft-tiny.yaml").read_text())}
    spec["overrides"] = {"maxSteps": 10}
    return spec


def _set(spec: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    node = spec
    *parents, leaf = path.split(".")
    for part in parents:
        if part.isdigit():
            node = node[int(part)]
            continue
        node = node.setdefault(part, [{}] if part == "pools" else {})
    node[leaf] = value
    return spec


# One class of field each: (kind, where to plant, the value's wrapper, the field named).
FIELD_CLASSES = [
    ("Sweep", "storage", None, "spec.storage"),
    ("Rehearsal", "storage", None, "spec.storage"),
    ("Rehearsal", "trainer.model.checkpoint", None, "spec.trainer.model.checkpoint"),
    ("Rehearsal", "trainer.model.tokenizer", None, "spec.trainer.model.tokenizer"),
    ("Sweep", "trainer.dataset.trainPath", None, "spec.trainer.dataset.trainPath"),
    ("Sweep", "trainer.dataset.evalPath", None, "spec.trainer.dataset.evalPath"),
    ("Sweep", "trainer.userParams.optimizer", None, "spec.trainer.userParams.optimizer"),
    ("Rehearsal", "overrides.model", "checkpoint", "spec.overrides.model.checkpoint"),
    ("Sweep", "searchSpace.optimizer", "values", "spec.searchSpace.optimizer.values[0]"),
    ("Sweep", "cluster.env.DATA_URL", None, "spec.cluster.env.DATA_URL"),
    ("Sweep", "cluster.image", None, "spec.cluster.image"),
    ("Rehearsal", "cluster.pools.0.image", None, "spec.cluster.pools[0].image"),
    ("Sweep", "cluster.pools.0.nodeSelector.pool", None, "spec.cluster.pools[0].nodeSelector"),
    ("Sweep", "trainer.entrypoint", None, "spec.trainer.entrypoint"),
]


@pytest.mark.reliability(
    "security",
    "credentials in each class of spec field (every shape)",
    result="refused, the field and storage.credentialsSecret named, the secret never echoed",
)
@pytest.mark.parametrize(("shape", "value", "secret", "said"), SHAPES, ids=[s[0] for s in SHAPES])
@pytest.mark.parametrize(
    ("kind", "path", "wrap", "named"), FIELD_CLASSES, ids=[f"{c[0]}:{c[1]}" for c in FIELD_CLASSES]
)
def test_credentials_in_any_spec_field_are_refused_without_echo(
    kind: str,
    path: str,
    wrap: str | None,
    named: str,
    shape: str,
    value: str,
    secret: str,
    said: str,
) -> None:
    spec = _sweep() if kind == "Sweep" else _rehearsal()
    planted: Any = value
    if wrap == "values":
        planted = {"type": "choice", "values": [value, "sgd"]}
    elif wrap is not None:
        planted = {wrap: value}
    _set(spec, path, planted)
    model = SweepSpec if kind == "Sweep" else RehearsalSpec
    with pytest.raises(ValidationError) as info:
        model.model_validate(spec)
    text = describe(info.value)
    assert named in text, text
    assert "storage.credentialsSecret" in text and "must not carry credentials" in text
    assert secret not in text and secret not in str(info.value)


def test_a_credential_in_a_trainer_file_is_refused_without_echo(tmp_path: Path) -> None:
    config = tmp_path / "trainer.yaml"
    config.write_text(f"dataset: {{trainPath: '{SLASH_URI}', evalPath: /data/e.jsonl}}\n")
    with pytest.raises(Exception) as info:
        load_trainer_config(config)
    assert "dataset.trainPath" in str(info.value) and "bPxRfiCY" not in str(info.value)
    with pytest.raises(Exception) as info:
        load_trainer_config(None, [f"model.checkpoint={SLASH_URI}"])
    assert "model.checkpoint" in str(info.value) and "bPxRfiCY" not in str(info.value)


def test_secret_environment_names_are_refused_and_paths_are_not() -> None:
    spec = _set(_sweep(), "cluster.env", {"HF_TOKEN": "plainvalue0", "WANDB_API_KEY": "x1"})
    with pytest.raises(ValidationError) as info:
        SweepSpec.model_validate(spec)
    text = describe(info.value)
    assert "spec.cluster.env.HF_TOKEN" in text and "spec.cluster.env.WANDB_API_KEY" in text
    assert "plainvalue0" not in text
    fine = {
        "TOKENIZERS_PARALLELISM": "false",
        "GOOGLE_APPLICATION_CREDENTIALS": "/var/secrets/google/key.json",
        "HF_HOME": "/cache/hf",
    }
    SweepSpec.model_validate(_set(_sweep(), "cluster.env", fine))


def test_a_mapping_key_that_is_a_secret_is_masked_in_the_field_path() -> None:
    token = "hf_" + "aB3" * 11
    spec = _set(_sweep(), "cluster.env", {token: "1"})
    with pytest.raises(ValidationError) as info:
        SweepSpec.model_validate(spec)
    assert "spec.cluster.env.***" in describe(info.value) and token not in str(info.value)


def test_the_storage_check_catches_a_secret_holding_a_slash() -> None:
    """The old check looked for '@' before the first '/', which such a secret hides."""
    assert userinfo_span(SLASH_URI) is not None
    with pytest.raises(ValidationError) as info:
        check_storage("storage", SLASH_URI)
    assert "storage.credentialsSecret" in str(info.value) and AWS_SECRET not in str(info.value)
    with pytest.raises(StoreError) as store_info:
        Store(SLASH_URI)
    assert "s3://***@bucket/runs" in str(store_info.value)
    assert "bPxRfiCY" not in str(store_info.value) and "AKIAIOSFODNN7" not in str(store_info.value)
    assert redact_uri(SLASH_URI) == "s3://***@bucket/runs"


def test_log_records_and_cli_text_are_redacted() -> None:
    record = logging.LogRecord("kopf", logging.DEBUG, __file__, 1, "spec %s", (SLASH_URI,), None)
    assert ScrubFilter().filter(record)
    assert record.getMessage() == "spec s3://***@bucket/runs"
    assert esc(f"[x] {SLASH_URI}") == "\\[x] s3://***@bucket/runs"


# ----------------------------------------------------------------------------- CLI

ENV = {
    "COLUMNS": "200",
    "TUNIX_RT_S3_ENDPOINT_URL": "http://127.0.0.1:9",
    "TUNIX_RT_STORE_ATTEMPTS": "1",
}
VALID_SWEEP = ROOT / "tests" / "bad_inputs" / "valid" / "sweep.yaml"
PRESIGNED = (
    "https://b.s3.amazonaws.com/r?X-Amz-Credential=AKIAIOSFODNN7EXAMPLE&X-Amz-Signature=9f0e"
)


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli.app, list(args), env=ENV)
    return result.exit_code, " ".join(result.output.split())


@pytest.mark.reliability(
    "security",
    "a storage URI whose secret holds '/' through the CLI",
    result="sweep run/rehearsal show --storage exit 2, sweep show exit 1: s3://***@…, no secret",
)
@pytest.mark.parametrize(
    ("args", "code", "said"),
    [
        (("sweep", "run", str(VALID_SWEEP), "--storage", SLASH_URI, "--no-live"), 2, "--storage"),
        (("rehearsal", "show", "x", "--storage", SLASH_URI), 2, "--storage"),
        (("sweep", "show", SLASH_URI), 1, "s3://***@bucket/runs"),
        (("sweep", "show", PRESIGNED), 1, "X-Amz-Signature=***"),
        (("promote", SLASH_URI, "-o", "/tmp/never.yaml"), 1, "s3://***@bucket/runs"),
    ],
    ids=["sweep-run", "rehearsal-show", "sweep-show", "sweep-show-presigned", "promote"],
)
def test_the_cli_never_echoes_a_credential(args: tuple[str, ...], code: int, said: str) -> None:
    exit_code, output = invoke(*args)
    assert exit_code == code, output
    assert said in output, output
    for secret in ("bPxRfiCY", "AKIAIOSFODNN7EXAMPLE", "9f0e", "Traceback"):
        assert secret not in output, output


def test_validate_names_the_field_and_never_echoes_the_secret(tmp_path: Path) -> None:
    doc = yaml.safe_load(VALID_SWEEP.read_text())
    doc["spec"].setdefault("trainer", {})["dataset"] = {
        "trainPath": SLASH_URI + "/train.jsonl",
        "evalPath": PRESIGNED,
    }
    manifest = tmp_path / "sweep.yaml"
    manifest.write_text(yaml.safe_dump(doc))
    exit_code, output = invoke("validate", str(manifest))
    assert exit_code == 2
    assert "spec.trainer.dataset.trainPath" in output and "spec.trainer.dataset.evalPath" in output
    assert "storage.credentialsSecret" in output
    for secret in ("bPxRfiCY", "AKIAIOSFODNN7EXAMPLE", "9f0e"):
        assert secret not in output, output


@pytest.mark.reliability(
    "security",
    "a credential slipped into the run manifest's config, overrides, dataset, source",
    result="written masked (s3://***@…); the report shows the masked form",
)
def test_evidence_never_writes_a_credential() -> None:
    """Defence in depth: a valid spec holds none, but the run manifest (and the report
    rendered from it) masks any string that does."""
    from support.evidence import CONFIG, DATASET, sample_manifest, sample_rows, sample_summary
    from tunix_rt.evidence import render_report

    token = "hf_" + "aB3" * 11
    manifest = sample_manifest(
        config={**CONFIG, "dataset": {"trainPath": SLASH_URI, "evalPath": PRESIGNED}},
        overrides={"model": {"checkpoint": SLASH_URI}},
        dataset={**DATASET, "name": token},
        source={"sweep": "s", "trial": "t_0", "params": {"opt": token}},
    )
    rows = sample_rows()
    report = render_report(manifest=manifest, summary=sample_summary(rows), rows=rows)
    text = str(manifest) + report
    for secret in ("bPxRfiCY", "AKIAIOSFODNN7EXAMPLE", "9f0e", token):
        assert secret not in text
    assert "s3://***@bucket/runs" in text


def test_the_crd_pattern_and_the_storage_check_agree() -> None:
    """The API server refuses userinfo (also with a '/' in the secret) before the object
    is stored; pydantic refuses the same URIs (the CRD pattern is its twin)."""
    import re

    from tunix_rt.api.common import STORAGE_PATTERN

    for uri in (SLASH_URI, "s3://k:s@b/x", "gs://tok@b/x", "s3://b:9000/x", "s3://b/x?sig=1"):
        assert not re.match(STORAGE_PATTERN, uri), uri
        with pytest.raises(ValidationError):
            check_storage("storage", uri)
    for uri in ("s3://ml-bucket/tunix-rt", "gs://b/a/b@c", "file://./runs", "s3://b"):
        assert re.match(STORAGE_PATTERN, uri), uri
        check_storage("storage", uri)
