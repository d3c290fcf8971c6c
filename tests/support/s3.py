"""Test helper: a real moto S3 server on loopback."""

from __future__ import annotations

import contextlib
import re
import socket
import time
from collections.abc import Iterable
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from support.net import free_port

SECRET = "tunixrtTESTsecretVALUE1234567890"

AWS_ELSEWHERE = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3")
"""Variables that could send an S3 client elsewhere than moto (or with other credentials)."""


class MotoS3:
    """A moto server in this process; its state survives stop/start (moto's backends are global)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.server: ThreadedMotoServer | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client_env(self, key_id: str, secret: str) -> dict[str, str]:
        """The variables that point a client (a subprocess, the Store) at this server
        with these credentials."""
        return {
            "AWS_ACCESS_KEY_ID": key_id,
            "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_DEFAULT_REGION": "us-east-1",
            "TUNIX_RT_S3_ENDPOINT_URL": self.endpoint,
        }

    def put_client_env(
        self,
        monkeypatch: pytest.MonkeyPatch,
        key_id: str,
        secret: str,
        unset: Iterable[str] = ("AWS_PROFILE", "AWS_ENDPOINT_URL"),
    ) -> dict[str, str]:
        """``client_env(key_id, secret)`` in this process's environment for the test, and
        the variables ``unset`` (that could point elsewhere) removed: the variables set."""
        variables = self.client_env(key_id, secret)
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
        for name in unset:
            monkeypatch.delenv(name, raising=False)
        return variables

    def start(self) -> None:
        # ThreadedMotoServer binds in its thread (a bind error would hang start()): wait
        # until the port can be bound again after a stop.
        for _ in range(100):
            with socket.socket() as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind(("127.0.0.1", self.port))
                    break
                except OSError:
                    time.sleep(0.05)
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()

    @property
    def running(self) -> bool:
        return self.server is not None

    def stop(self) -> None:
        """Stop serving and close the listening socket: connections are refused afterwards."""
        if self.server is not None:
            self.server.stop()
            inner = self.server._server
            if inner is not None:
                inner.server_close()
            self.server = None

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key=SECRET,
        )

    def fresh_bucket(self, prefix: str, test_name: str) -> str:
        """A bucket named after the test (moto keeps its state for the whole session)."""
        name = (prefix + re.sub(r"[^a-z0-9-]+", "-", test_name.lower()))[:50].strip("-")
        client = self.client()
        with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
            client.create_bucket(Bucket=name)
        return name

    def objects(self, bucket: str) -> dict[str, int]:
        """Name → size of every object of a bucket, read with boto3 straight from moto (not
        through the store or a proxy)."""
        listing = self.client().list_objects_v2(Bucket=bucket)
        return {item["Key"]: int(item["Size"]) for item in listing.get("Contents", [])}

    def content(self, bucket: str, name: str) -> bytes:
        data: bytes = self.client().get_object(Bucket=bucket, Key=name)["Body"].read()
        return data
