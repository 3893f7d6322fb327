"""A site whose blobs live in S3 (a real endpoint on loopback: moto's server): push,
download, Range, presigned redirects, the published tree, and gc."""

from __future__ import annotations

import hashlib
import random
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner

from tain.cli.main import app as tain_cli
from tain.config import load
from tain.server.app import create_app
from tain.service.setup import create_site
from tain.service.site import open_site
from tain.store.s3 import S3Store
from tests.conftest import RunningSite, free_port, wait_healthy
from tests.e2e.protocol import push_files
from tests.s3 import MotoServer, use_s3


@contextmanager
def s3_site(
    tmp_path: Path, moto: MotoServer, bucket: str, *, presign: bool, publish: bool
) -> Iterator[RunningSite]:
    """A new site on S3 (and SQLite), served by uvicorn in a thread of this process."""
    port = free_port()
    site_dir = tmp_path / "site"
    token = create_site(site_dir, listen=f"127.0.0.1:{port}", admin="admin", env={})
    use_s3(site_dir, moto.config(bucket, prefix="site", presign_downloads=presign),
           publish=publish, gc_grace_seconds=0)
    site = open_site(load(site_dir, {}))
    server = uvicorn.Server(
        uvicorn.Config(create_app(site), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url)
        yield RunningSite(url, token, site_dir, site)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        site.close()


def bucket_keys(moto: MotoServer, bucket: str, prefix: str) -> set[str]:
    pages = moto.admin.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {obj["Key"].rpartition("/")[2] for page in pages for obj in page.get("Contents", [])}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_tree(root: Path) -> dict[str, bytes]:
    rng = random.Random(11)
    files = {
        "README": b"hello from s3\n",
        "empty": b"",
        "pool/main/big.iso": rng.randbytes(3 * 1024 * 1024 + 5),
        **{f"pool/d{i % 3}/f{i}.bin": rng.randbytes(rng.randint(1, 70_000)) for i in range(30)},
    }
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    return files


def test_push_download_range_publish_and_gc_on_s3(
    tmp_path: Path, moto: MotoServer, s3_bucket: str
) -> None:
    tree = tmp_path / "tree"
    files = make_tree(tree)
    with s3_site(tmp_path, moto, s3_bucket, presign=False, publish=True) as running:
        assert isinstance(running.site and running.site.store, S3Store)
        with running.client() as c:
            c.post("/api/v1/repos", json={"name": "deb"}).raise_for_status()
        env = {"TAIN_SITE": running.url, "TAIN_TOKEN": running.token,
               "XDG_CACHE_HOME": str(tmp_path / "cache")}
        pushed = CliRunner().invoke(tain_cli, ["push", str(tree), "-r", "deb", "-m", "one"],
                                    env=env)
        assert pushed.exit_code == 0, pushed.output
        assert bucket_keys(moto, s3_bucket, "site/blobs/") == {sha(d) for d in files.values()}
        assert bucket_keys(moto, s3_bucket, "site/chunks/")  # staged there, not on disk
        local = running.site_dir / "blobs"  # made by 'tain init', before the switch to S3
        assert not [p for p in local.rglob("*") if p.is_file()]

        with running.client() as c:
            for path, data in files.items():
                r = c.get(f"/deb/{path}")
                assert r.status_code == 200, path
                assert r.content == data, path
                assert r.headers["etag"] == f'"{sha(data)}"'
            big = files["pool/main/big.iso"]
            part = c.get("/deb/pool/main/big.iso", headers={"Range": "bytes=1000000-1000099"})
            assert part.status_code == 206
            assert part.content == big[1_000_000:1_000_100]
            head = c.head("/deb/pool/main/big.iso")
            assert head.headers["content-length"] == str(len(big))
            assert head.headers["etag"] == f'"{sha(big)}"'
            readme = sha(files["README"])
            cached = c.get("/deb/README", headers={"If-None-Match": f'"{readme}"'})
            assert cached.status_code == 304

            # A one-chunk edit: the rest is rebuilt from the stored blob in S3.
            edited = bytearray(big)
            edited[2_000_000] ^= 0xFF
            result, sent = push_files(c, "deb", {"pool/main/big.iso": bytes(edited)},
                                      deletes=("pool/d0",), message="two")
            assert result["revision"]["number"] == 2
            assert sent < len(big) // 2
            assert c.get("/deb/pool/main/big.iso").content == bytes(edited)
            assert c.get("/deb/pool/main/big.iso", params={"rev": 1}).content == big

            # A whole-file upload (curl -T) goes to S3 too.
            up = c.put("/deb/images/up.bin", content=b"uploaded" * 1000,
                       headers={"X-Tain-SHA256": sha(b"uploaded" * 1000)})
            assert up.status_code == 201, up.text
            assert c.get("/deb/images/up.bin").content == b"uploaded" * 1000

        published = running.site_dir / "published" / "deb"
        assert (published / "pool/main/big.iso").read_bytes() == bytes(edited)
        assert (published / "README").read_bytes() == files["README"]
        assert not (published / "pool/d0").exists()

        with running.client() as c:
            c.patch("/api/v1/repos/deb", json={"keep_last": 1}).raise_for_status()
            report = c.post("/api/v1/gc", json={}).json()
        gone = {sha(big)} | {sha(d) for p, d in files.items() if p.startswith("pool/d0/")}
        assert report["blobs_deleted"] == len(gone)
        assert report["chunks_pruned"] > 0
        left = bucket_keys(moto, s3_bucket, "site/blobs/")
        assert not left & gone
        assert sha(bytes(edited)) in left and sha(files["README"]) in left
        assert bucket_keys(moto, s3_bucket, "site/chunks/") == set()
        with running.client() as c:
            assert c.get("/deb/pool/main/big.iso").content == bytes(edited)


def test_presigned_redirects_for_whole_gets_only(
    tmp_path: Path, moto: MotoServer, s3_bucket: str
) -> None:
    files = {"docs/guide.txt": b"read me " * 500, "pool/a.bin": random.Random(3).randbytes(300_000)}
    with s3_site(tmp_path, moto, s3_bucket, presign=True, publish=False) as running:
        with running.client() as c:
            c.post("/api/v1/repos", json={"name": "pub", "public": True}).raise_for_status()
            push_files(c, "pub", files)
        with running.anonymous() as c:
            for path, data in files.items():
                r = c.get(f"/pub/{path}")
                assert r.status_code == 302, path
                assert r.headers["location"].startswith(f"{moto.endpoint}/{s3_bucket}/site/blobs/")
                assert r.headers["x-tain-sha256"] == sha(data)
                assert r.headers["cache-control"] == "no-store"
                followed = c.get(f"/pub/{path}", follow_redirects=True)
                assert followed.status_code == 200
                assert followed.content == data
                name = path.rpartition("/")[2]
                assert f'filename="{name}"' in followed.headers["content-disposition"]
            assert followed.headers["content-type"] == "application/octet-stream"

            # HEAD, Range and conditional requests are answered by the site itself.
            data = files["pool/a.bin"]
            head = c.head("/pub/pool/a.bin")
            assert head.status_code == 200
            assert head.headers["etag"] == f'"{sha(data)}"'
            assert head.headers["content-length"] == str(len(data))
            part = c.get("/pub/pool/a.bin", headers={"Range": "bytes=-100"})
            assert part.status_code == 206 and part.content == data[-100:]
            same = c.get("/pub/pool/a.bin", headers={"If-None-Match": f'"{sha(data)}"'})
            assert same.status_code == 304

        curl = shutil.which("curl")
        if curl is not None:
            out = tmp_path / "guide.txt"
            subprocess.run([curl, "-sSfL", "-o", str(out), f"{running.url}/pub/docs/guide.txt"],
                           check=True, timeout=60)
            assert out.read_bytes() == files["docs/guide.txt"]

        # tain get follows the redirect and checks the bytes against X-Tain-SHA256
        got = tmp_path / "a.bin"
        result = CliRunner().invoke(
            tain_cli, ["get", "pool/a.bin", "-r", "pub", "-o", str(got)],
            env={"TAIN_SITE": running.url, "TAIN_TOKEN": running.token},
        )
        assert result.exit_code == 0, result.output
        assert got.read_bytes() == files["pool/a.bin"]

    # publish = false: no published tree at all.
    assert not (running.site_dir / "published" / "pub").exists()


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_publish_false_publishes_nothing(
    tmp_path: Path, moto: MotoServer, s3_bucket: str, kind: str
) -> None:
    port = free_port()
    site_dir = tmp_path / "site"
    token = create_site(site_dir, listen=f"127.0.0.1:{port}", admin="admin", env={})
    if kind == "s3":
        use_s3(site_dir, moto.config(s3_bucket), publish=False)
    else:
        config = site_dir / "tain.toml"
        config.write_text(config.read_text().replace("[server]\n", "[server]\npublish = false\n"))
    site = open_site(load(site_dir, {}))
    try:
        assert site.config.publish is False
        server = uvicorn.Server(
            uvicorn.Config(create_app(site), host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        try:
            url = f"http://127.0.0.1:{port}"
            wait_healthy(url)
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as c:
                c.post("/api/v1/repos", json={"name": "r"}).raise_for_status()
                push_files(c, "r", {"a": b"a"})
                assert c.get("/r/a").content == b"a"
                assert c.get("/api/v1/repos/r").json()["published_revision"] is None
        finally:
            server.should_exit = True
            thread.join(timeout=15)
    finally:
        site.close()
    assert not (site_dir / "published" / "r").exists()
