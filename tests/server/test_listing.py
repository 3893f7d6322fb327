from __future__ import annotations

import hashlib
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tain.core.manifest import Entry, Kind
from tain.errors import TainError
from tain.server.listing import (
    format_mtime,
    human_size,
    render_index_html,
    render_index_json,
    render_sha256sums,
)

MTIME_NS = 1_795_987_920_000_000_000  # 2026-11-29 21:32 UTC
SHA = "ab" * 32


def file_entry(path: str, data: bytes = b"x", mtime_ns: int = MTIME_NS) -> Entry:
    sha = hashlib.sha256(data).hexdigest()
    return Entry(path, Kind.FILE, 0o644, mtime_ns, sha, len(data))


class Links(HTMLParser):
    """Collects (href, text) of every link, and the title, as a browser would read them."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self.title = ""
        self._href: str | None = None
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href = dict(attrs).get("href") or ""
            self.links.append((self._href, ""))
        self._in_title = tag == "title"

    def handle_endtag(self, tag: str) -> None:
        self._href = None
        self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            href, text = self.links[-1]
            self.links[-1] = (href, text + data)
        if self._in_title:
            self.title += data


def links_of(page: str) -> Links:
    parser = Links()
    parser.feed(page)
    parser.close()
    return parser


def test_html_escapes_names() -> None:
    evil = Entry("<b>/<script>alert('x')", Kind.FILE, 0o644, MTIME_NS, SHA, 5)  # no "/" in names
    quote_amp = Entry('<b>/a"b&c', Kind.DIR)
    page = render_index_html("repo", "<b>", 7, [evil, quote_amp])
    assert "<script>" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)" in page
    parsed = links_of(page)
    assert parsed.title == "Index of /repo/<b>/"
    assert ("%3Cscript%3Ealert%28%27x%27%29", "<script>alert('x')") in parsed.links
    assert ("a%22b%26c/", 'a"b&c/') in parsed.links


def test_hrefs_are_url_quoted() -> None:
    entries = [
        file_entry("docs/read me.txt"),
        file_entry("docs/ünïcödé.iso"),
        file_entry("docs/a:b#c?d%e"),
        Entry("docs/sub dir", Kind.DIR),
    ]
    page = render_index_html("repo", "docs", 1, entries)
    hrefs = dict((text, href) for href, text in links_of(page).links)
    assert hrefs["read me.txt"] == "read%20me.txt"
    assert hrefs["ünïcödé.iso"] == "%C3%BCn%C3%AFc%C3%B6d%C3%A9.iso"
    assert hrefs["a:b#c?d%e"] == "a%3Ab%23c%3Fd%25e"  # never read as scheme, fragment...
    assert hrefs["sub dir/"] == "sub%20dir/"


def test_title_parent_link_and_footer() -> None:
    page = render_index_html("repo", "pub/isos", 12, [file_entry("pub/isos/a.iso")])
    parsed = links_of(page)
    assert parsed.title == "Index of /repo/pub/isos/"
    assert parsed.links[0] == ("../", "../")
    assert "tain · revision 12" in page


def test_root_has_no_parent_link() -> None:
    page = render_index_html("repo", "", 3, [file_entry("a.iso")])
    parsed = links_of(page)
    assert parsed.title == "Index of /repo/"
    assert parsed.links == [("a.iso", "a.iso")]


def test_query_suffix_on_every_link() -> None:
    entries = [file_entry("d/f.txt"), Entry("d/sub", Kind.DIR)]
    page = render_index_html("repo", "d", 3, entries, query_suffix="?rev=3&x=1")
    hrefs = [href for href, _ in links_of(page).links]
    assert hrefs == ["../?rev=3&x=1", "sub/?rev=3&x=1", "f.txt?rev=3&x=1"]
    assert "&amp;x=1" in page  # escaped in the attribute


def test_rows_show_size_mtime_and_short_sha() -> None:
    entry = Entry("big.iso", Kind.FILE, 0o644, MTIME_NS, SHA, 3 * 1024**3 + 5)
    page = render_index_html("repo", "", 1, [entry])
    assert 'title="3221225477 bytes">3.0 GiB<' in page
    assert "2026-11-29 21:32" in page
    assert f'<code title="{SHA}">{SHA[:12]}</code>' in page


def test_dirs_first_then_by_name_and_symlinks() -> None:
    entries = [
        file_entry("b.txt"),
        Entry("z", Kind.DIR),
        Entry("link", Kind.SYMLINK, target="b.txt"),
        file_entry("a.txt"),
        Entry("m", Kind.DIR),
    ]
    page = render_index_html("repo", "", 1, entries)
    texts = [text for _, text in links_of(page).links]
    assert texts == ["m/", "z/", "a.txt", "b.txt", "link → b.txt"]


def test_index_json_shape() -> None:
    entries = [file_entry("pub/a.txt", b"hello"), Entry("pub/sub", Kind.DIR, 0o755, 5)]
    out = render_index_json("repo", "pub", 4, entries)
    assert out == {
        "repo": "repo",
        "path": "pub",
        "revision": 4,
        "entries": [
            {"path": "pub/sub", "kind": "dir", "mode": 0o755, "mtime_ns": 5, "name": "sub"},
            {
                "path": "pub/a.txt", "kind": "file", "mode": 0o644, "mtime_ns": MTIME_NS,
                "sha256": hashlib.sha256(b"hello").hexdigest(), "size": 5, "name": "a.txt",
            },
        ],
    }


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1536, "1.5 KiB"),
     (10 * 1024**2, "10.0 MiB"), (2**70, "1024.0 EiB")],
)
def test_human_size(size: int, text: str) -> None:
    assert human_size(size) == text


def test_format_mtime() -> None:
    assert format_mtime(MTIME_NS) == "2026-11-29 21:32"
    assert format_mtime(0) == "1970-01-01 00:00"
    assert format_mtime(10**40) == "-"


def test_sha256sums_format() -> None:
    entries = [
        file_entry("pub/b.txt", b"b"),
        Entry("pub/sub", Kind.DIR),
        Entry("pub/link", Kind.SYMLINK, target="b.txt"),
        file_entry("pub/sub/a.txt", b"a"),
    ]
    text = render_sha256sums(entries, "pub")
    assert text == (
        f"{hashlib.sha256(b'b').hexdigest()}  b.txt\n"
        f"{hashlib.sha256(b'a').hexdigest()}  sub/a.txt\n"
    )
    assert render_sha256sums(entries, "").count("  pub/") == 2
    assert render_sha256sums([], "pub") == ""


def test_sha256sums_refuses_entries_outside_base() -> None:
    with pytest.raises(TainError):
        render_sha256sums([file_entry("pubx/a")], "pub")


def test_sha256sums_escapes_like_gnu() -> None:
    text = render_sha256sums([file_entry("a\nb"), file_entry("c\\d"), file_entry("e\rf")], "")
    lines = text.split("\n")
    assert re.fullmatch(r"\\[0-9a-f]{64}  a\\nb", lines[0])
    assert re.fullmatch(r"\\[0-9a-f]{64}  c\\\\d", lines[1])
    assert re.fullmatch(r"\\[0-9a-f]{64}  e\\rf", lines[2])


def test_sha256sums_passes_sha256sum_check(tmp_path: Path) -> None:
    files = {
        "plain.txt": b"plain\n",
        "with space.iso": b"space" * 1000,
        "new\nline": b"newline",
        "back\\slash": b"backslash",
        "sub/ünï cödé.bin": bytes(range(256)),
        "sub/deeper/empty": b"",
    }
    base = tmp_path / "mirror" / "pub"
    for name, data in files.items():
        (base / name).parent.mkdir(parents=True, exist_ok=True)
        (base / name).write_bytes(data)
    entries = [file_entry(f"pub/{name}", data) for name, data in files.items()]
    entries += [Entry("pub/sub", Kind.DIR), Entry("pub/sub/deeper", Kind.DIR)]
    (base / "SHA256SUMS").write_text(render_sha256sums(entries, "pub"), encoding="utf-8")

    result = subprocess.run(
        ["sha256sum", "--check", "--strict", "SHA256SUMS"],
        cwd=base, capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(": OK") == len(files)

    (base / "with space.iso").write_bytes(b"tampered")
    result = subprocess.run(
        ["sha256sum", "--check", "--quiet", "SHA256SUMS"],
        cwd=base, capture_output=True, text=True, check=False,
    )
    assert result.returncode == 1
    assert "with space.iso: FAILED" in result.stdout
