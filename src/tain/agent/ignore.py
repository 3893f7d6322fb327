"""Which paths the agent leaves alone: gitignore rules (via pathspec).

Rules come from, in order (a later rule wins, ``!pattern`` re-includes): the temporary
files of common editors (unless turned off), the source's ``ignore`` setting, and the
file ``.tainignore`` at the top of the directory. A directory that is ignored is not
entered. Paths are repository paths (``a/b.txt``); a directory is tested as ``a/b/``.

Every event of a burst is tested, several times a file, so matching is on the hot
path: with ``google-re2`` installed (a dependency) pathspec tests all rules in one
RE2 pass instead of one Python regex per rule (0.8 µs instead of 2.8 µs a path with
the default rules).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import pathspec

from tain.errors import UsageError

IGNORE_FILE = ".tainignore"

EDITOR_TEMPORARY = (
    "*~",                   # Emacs, Vim, gedit backups
    ".*.sw[a-p]",           # Vim swap files (.name.swp, .swo, ...)
    ".*.sw[a-p]x",
    "4913",                 # Vim's probe for a writable directory
    ".#*",                  # Emacs lock links
    "\\#*#",                # Emacs auto-save
    ".~lock.*#",            # LibreOffice locks
    "~$*",                  # Microsoft Office owner files
    "*.kate-swp",           # Kate
    ".goutputstream-*",     # GNOME (gedit) atomic saves
    "*___jb_tmp___",        # JetBrains safe writes
    "*___jb_old___",
)


class IgnoreRules:
    def __init__(self, patterns: Sequence[str]) -> None:
        self.patterns = tuple(patterns)
        try:
            self._spec = pathspec.GitIgnoreSpec.from_lines(self.patterns)
        except (ValueError, TypeError) as exc:
            raise UsageError(f"bad ignore pattern: {exc}") from exc
        self.fingerprint = hashlib.sha256("\n".join(self.patterns).encode()).hexdigest()

    @classmethod
    def load(cls, root: Path, extra: Sequence[str] = (), *, defaults: bool = True) -> IgnoreRules:
        """The rules of a source directory (re-read whenever .tainignore changes)."""
        patterns = [*(EDITOR_TEMPORARY if defaults else ()), *extra]
        try:
            patterns += (root / IGNORE_FILE).read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            pass
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read {root / IGNORE_FILE}: {exc}") from exc
        return cls(patterns)

    def ignored(self, path: str, *, is_dir: bool = False) -> bool:
        return bool(self._spec.match_file(f"{path}/" if is_dir else path))
