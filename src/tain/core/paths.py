"""The one place where repository paths and names are checked.

A repository path is relative, uses ``/`` as separator, is valid UTF-8 without NUL or
control characters, has no empty, ``.`` or ``..`` segment, and fits common filesystem
limits. Everything that enters tain (push manifests, URLs, CLI arguments) passes here.
"""

from __future__ import annotations

import re

from tain.errors import InvalidPath, UsageError

MAX_SEGMENT_BYTES = 255
MAX_PATH_BYTES = 4096
RESERVED_REPO_NAMES = frozenset({"api", "console", "metrics", "healthz", "static", "favicon.ico"})
_REPO_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
_USER_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._@-]{0,63}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def normalize_path(raw: str | bytes, *, allow_root: bool = False) -> str:
    """Return the canonical form of a repository path, or raise InvalidPath.

    The root of a repository is ``""`` and is accepted only with ``allow_root``.
    A single trailing slash is tolerated (directory URLs).
    """
    text = _decode(raw)
    if _CONTROL.search(text):
        if "\x00" in text:
            raise InvalidPath("path contains a NUL byte")
        raise InvalidPath(f"path {text!r} contains a control character")
    if text.startswith("/"):
        raise InvalidPath(f"path {text!r} is absolute; give it relative to the repository")
    if text.endswith("/"):
        text = text[:-1]
    if text == "":
        if allow_root:
            return ""
        raise InvalidPath("path is empty")
    size = len(text.encode())
    if size > MAX_PATH_BYTES:
        raise InvalidPath(f"path is longer than {MAX_PATH_BYTES} bytes")
    segments = text.split("/")
    if "" in segments or "." in segments or ".." in segments or size > MAX_SEGMENT_BYTES:
        for segment in segments:  # one of them is wrong, or may be too long
            _check_segment(segment, text)
    return text


def _decode(raw: str | bytes) -> str:
    if isinstance(raw, bytes):
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidPath("path is not valid UTF-8") from exc
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidPath("path is not valid UTF-8 (lone surrogate)") from exc
    return raw


def _check_segment(segment: str, path: str) -> None:
    if segment in ("", ".", ".."):
        raise InvalidPath(f"path {path!r} has an empty, '.' or '..' segment")
    if len(segment.encode()) > MAX_SEGMENT_BYTES:
        raise InvalidPath(f"a name in {path!r} is longer than {MAX_SEGMENT_BYTES} bytes")


def parent_of(path: str) -> str:
    """The parent directory of a normalized path (``""`` for top-level names)."""
    head, _, _ = path.rpartition("/")
    return head


def name_of(path: str) -> str:
    return path.rpartition("/")[2]


def ancestors(path: str) -> list[str]:
    """Every proper ancestor directory of ``path``, outermost first, root excluded."""
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def is_within(path: str, directory: str) -> bool:
    """True if ``path`` is ``directory`` itself or lies below it (root contains all)."""
    return directory == "" or path == directory or path.startswith(directory + "/")


def check_symlink_target(target: str, link_path: str) -> str:
    """A symlink may point only inside its repository: relative, never climbing out."""
    if "\x00" in target or target == "":
        raise InvalidPath(f"symlink {link_path!r} has an empty or NUL target")
    if target.startswith("/"):
        raise InvalidPath(f"symlink {link_path!r} points to an absolute path {target!r}")
    depth = len(link_path.split("/")) - 1
    for segment in target.split("/"):
        if segment == "..":
            depth -= 1
            if depth < 0:
                raise InvalidPath(f"symlink {link_path!r} points outside the repository")
        elif segment not in ("", "."):
            depth += 1
    return target


def check_repo_name(name: str) -> str:
    if not _REPO_NAME.match(name) or name in RESERVED_REPO_NAMES:
        raise UsageError(
            f"invalid repository name {name!r}",
            hint="use 1-63 lowercase letters, digits, '.', '_' or '-', not a reserved name",
        )
    return name


def check_user_name(name: str) -> str:
    if not _USER_NAME.match(name):
        raise UsageError(
            f"invalid user name {name!r}",
            hint="use 1-64 letters, digits, '.', '_', '@' or '-'",
        )
    return name
