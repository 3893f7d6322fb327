"""The tain command against a real site: push real directories, read them back, manage
access, and get clear one-line errors with the documented exit codes."""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tain.cli.main import app
from tests.conftest import RunningSite

runner = CliRunner()


def tain(site: RunningSite, *args: str, token: str | None = None) -> tuple[int, str]:
    env = {"TAIN_SITE": site.url, "TAIN_TOKEN": token if token is not None else site.token,
           "XDG_CACHE_HOME": str(site.site_dir.parent / "cache")}
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.output


def ok(site: RunningSite, *args: str) -> str:
    code, out = tain(site, *args)
    assert code == 0, out
    return out


def snapshot(root: Path) -> dict[str, object]:
    """Everything a mirror must reproduce: file bytes and modes, links, directories."""
    out: dict[str, object] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = p.relative_to(root).as_posix()
            if p.is_symlink():
                out[rel] = ("link", os.readlink(p))
            elif p.is_dir():
                out[rel] = "dir"
            else:
                out[rel] = (p.read_bytes(), p.stat().st_mode & 0o111)
    return out


def make_tree(root: Path, count: int) -> None:
    rng = random.Random(11)
    for i in range(count):
        d = root / f"d{i % 13}" / f"e{i % 5}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"file{i}.txt").write_bytes(rng.randbytes(rng.randint(0, 2000)))
    (root / "empty" / "dir").mkdir(parents=True)
    (root / "big.bin").write_bytes(rng.randbytes(8 * 1024 * 1024))
    (root / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (root / "run.sh").chmod(0o755)
    (root / "link").symlink_to("d0/e0/file0.txt")


def test_push_mirror_edit_rename_and_read_back(running_site: RunningSite, tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_tree(src, 3000)
    ok(running_site, "repo", "create", "m", "--public")
    first = json.loads(ok(running_site, "push", str(src), "-r", "m", "--json"))
    assert first["revision"] == 1
    sizes = sum(p.stat().st_size for p in src.rglob("*") if p.is_file() and not p.is_symlink())
    assert first["bytes_hashed"] == sizes  # each new file is read once: hashed and chunked
    published = running_site.site_dir / "published" / "m"
    assert snapshot(published) == snapshot(src)

    again = json.loads(ok(running_site, "push", str(src), "-r", "m", "--json"))
    assert again["revision"] is None and again["bytes_sent"] == 0
    assert again["bytes_hashed"] == 0  # unchanged files are not re-read

    with (src / "big.bin").open("r+b") as fh:
        fh.seek(4 * 1024 * 1024)
        fh.write(b"!")
    shutil.move(src / "d1", src / "renamed")
    (src / "d2" / "e2" / "file2.txt").unlink()
    edit = json.loads(ok(running_site, "push", str(src), "-r", "m", "--json"))
    assert edit["revision"] == 2
    assert 0 < edit["bytes_sent"] <= 1024 * 1024  # one chunk of the big file; moves are free
    assert snapshot(published) == snapshot(src)

    out = tmp_path / "big.v1"
    ok(running_site, "get", "big.bin", "-r", "m", "--rev", "1", "-o", str(out))
    assert out.read_bytes() != (src / "big.bin").read_bytes()
    log = json.loads(ok(running_site, "log", "-r", "m", "--json"))
    assert [r["number"] for r in (log["revisions"] if isinstance(log, dict) else log)] == [2, 1]
    ok(running_site, "rollback", "--to-rev", "1", "-r", "m")
    ok(running_site, "get", "big.bin", "-r", "m", "-o", str(tmp_path / "big.now"))
    assert (tmp_path / "big.now").read_bytes() == out.read_bytes()
    assert (published / "d1").is_dir() and not (published / "renamed").exists()
    assert ok(running_site, "audit", "verify").strip()


def test_access_management_from_the_cli(running_site: RunningSite, tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "a.txt").write_text("a")
    ok(running_site, "repo", "create", "team")
    ok(running_site, "user", "add", "carol")
    created = json.loads(ok(running_site, "token", "create", "carol", "--json"))
    carol = created["token"]
    code, out = tain(running_site, "push", str(tmp_path / "t"), "-r", "team", token=carol)
    assert code == 3 and "carol" in out and "Traceback" not in out
    ok(running_site, "grant", "carol", "team", "write")
    code, out = tain(running_site, "push", str(tmp_path / "t"), "-r", "team", token=carol)
    assert code == 0, out
    users = json.loads(ok(running_site, "user", "list", "--json"))
    names = [u["name"] for u in (users["users"] if isinstance(users, dict) else users)]
    assert names == ["admin", "carol"]
    ok(running_site, "token", "revoke", str(created["id"]))
    code, out = tain(running_site, "ls", "-r", "team", token=carol)
    assert code == 3 and "revoked" in out


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (("ls", "-r", "nosuch"), 4, "nosuch"),
        (("get", "missing.txt", "-r", "e"), 4, "missing.txt"),
        (("push", "/definitely/not/here", "-r", "e"), 2, "not/here"),
        (("log", "-r", "e", "--site", "http://127.0.0.1:9"), 8, "127.0.0.1:9"),
        (("repo", "create", "Bad Name"), 2, "Bad Name"),
    ],
)
def test_errors_are_one_line_with_exit_codes(
    running_site: RunningSite, args: tuple[str, ...], code: int, words: str
) -> None:
    ok(running_site, "repo", "create", "e")
    got, out = tain(running_site, *args)
    assert got == code, out
    assert words in out and "Traceback" not in out


def test_bad_token_is_refused(running_site: RunningSite) -> None:
    code, out = tain(running_site, "repo", "list", token="tain_wrong")
    assert code == 3 and "unknown token" in out
