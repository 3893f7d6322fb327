"""Console passwords: argon2id hashes (argon2-cffi's defaults, RFC 9106 low-memory).

``check_password`` takes the same time whether the user exists, has no password or
typed a wrong one: it always verifies against some hash (a fixed dummy one when
there is none), so response times do not reveal which user names exist.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from tain.errors import UsageError

MIN_LENGTH = 8
MAX_LENGTH = 1024

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("tain: a password nobody has")


def check_new_password(password: str) -> str:
    if len(password) < MIN_LENGTH:
        raise UsageError(f"the password must have at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise UsageError(f"the password must have at most {MAX_LENGTH} characters")
    return password


def hash_password(password: str) -> str:
    return _hasher.hash(check_new_password(password))


def check_password(stored_hash: str | None, password: str) -> bool:
    """True if ``password`` matches ``stored_hash`` (None never matches)."""
    try:
        _hasher.verify(stored_hash or _DUMMY_HASH, password[:MAX_LENGTH])
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return stored_hash is not None
