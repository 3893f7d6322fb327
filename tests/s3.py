"""A real S3 endpoint on loopback: moto's standalone server, run as a child process.

``MotoServer`` starts ``python -m moto.server`` on a free port and waits until it
answers; ``conftest.py`` keeps one for the whole session and gives each test its own
bucket. ``use_s3`` points a site directory's ``tain.toml`` at a bucket.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import httpx
from botocore.config import Config

from tain.config import CONFIG_NAME, S3Config

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

ACCESS_KEY = "tain-test-key"
SECRET_KEY = "tain-test-secret"
REGION = "us-east-1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MotoServer:
    """``python -m moto.server`` on 127.0.0.1; ``env`` adds to its environment (e.g.
    ``INITIAL_NO_AUTH_ACTION_COUNT=0`` makes it check credentials)."""

    def __init__(self, log_file: Path, env: dict[str, str] | None = None) -> None:
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log_file = log_file
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self._admin: S3Client | None = None

    def start(self, timeout: float = 30.0) -> None:
        with self.log_file.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log, stderr=subprocess.STDOUT, env=self.env,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                if httpx.get(f"{self.endpoint}/moto-api/", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"moto server did not start; its log: {self.log_file.read_text()[-2000:]}"
        )

    def stop(self) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc.wait()

    def client(self, key: str = ACCESS_KEY, secret: str = SECRET_KEY) -> S3Client:
        """A boto3 client for test set-up and inspection (close it after use)."""
        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint, region_name=REGION,
            aws_access_key_id=key, aws_secret_access_key=secret,
            config=Config(retries={"max_attempts": 1}),
        )

    @property
    def admin(self) -> S3Client:
        """One client kept for the server's life: set-up, inspection, corruption."""
        if self._admin is None:
            self._admin = self.client()
        return self._admin

    def new_bucket(self) -> str:
        name = f"tain-{uuid.uuid4().hex[:20]}"
        self.admin.create_bucket(Bucket=name)
        return name

    def config(self, bucket: str, **overrides: Any) -> S3Config:
        """An ``S3Config`` for ``bucket`` on this server, with the test credentials."""
        base = S3Config(
            bucket=bucket, endpoint_url=self.endpoint, region=REGION,
            access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY,
        )
        return replace(base, **overrides)


@contextmanager
def moto_server(log_file: Path, env: dict[str, str] | None = None) -> Iterator[MotoServer]:
    server = MotoServer(log_file, env)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def empty_bucket(client: S3Client, bucket: str) -> None:
    """Delete every object and the bucket (frees the server's memory)."""
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
    client.delete_bucket(Bucket=bucket)


def use_s3(
    site_dir: Path, config: S3Config, *, publish: bool = True, gc_grace_seconds: int = 3600
) -> None:
    """Rewrite a site's ``tain.toml`` (as ``tain init`` wrote it) to keep blobs in S3."""
    path = site_dir / CONFIG_NAME
    text = path.read_text()
    text = re.sub(r'(?m)^kind = "local"$', 'kind = "s3"', text)
    text = re.sub(r"(?m)^gc_grace_seconds = \d+$", f"gc_grace_seconds = {gc_grace_seconds}", text)
    text = text.replace("[server]\n", f"[server]\npublish = {str(publish).lower()}\n", 1)
    text += (
        "\n[store.s3]\n"
        f'bucket = "{config.bucket}"\n'
        f'prefix = "{config.prefix}"\n'
        f'endpoint_url = "{config.endpoint_url}"\n'
        f'region = "{config.region}"\n'
        f'access_key_id = "{config.access_key_id}"\n'
        f'secret_access_key = "{config.secret_access_key}"\n'
        f"presign_downloads = {str(config.presign_downloads).lower()}\n"
        f"presign_ttl_seconds = {config.presign_ttl_seconds}\n"
    )
    if 'kind = "s3"' not in text:
        raise AssertionError(f"{path} does not look like the config 'tain init' writes")
    path.write_text(text)
