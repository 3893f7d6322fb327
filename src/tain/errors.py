"""The one error tree of tain.

Every error a user can see is a ``TainError``. Each class carries a stable process
exit code (used by the CLI) and an HTTP status (used by the server), so the edges
translate errors once and the code in between only raises::

    TainError                      exit 1   500
    ├── UsageError                 exit 2   400   bad arguments or config
    │   ├── InvalidPath            exit 2   400   a path that tain will never store
    │   └── InvalidRequest         exit 2   400   a malformed request body or header
    ├── AuthError                  exit 3   401   no or bad credentials
    │   └── TooManyAttempts        exit 3   429   too many failed sign-ins: wait
    ├── Forbidden                  exit 3   403   authenticated, but lacks the role
    ├── NotFound                   exit 4   404   repository, revision, path, user...
    ├── Conflict                   exit 5   409   already exists / stale base revision
    │   └── ReadOnlyMirror         exit 5   409   a mirror site refuses writes
    ├── RangeNotSatisfiable        exit 2   416
    ├── PayloadTooLarge            exit 2   413
    ├── IntegrityError             exit 6   500   stored bytes do not match their digest
    │   └── DigestMismatch         exit 6   422   sent bytes do not match the digest given
    ├── MissingData                exit 6   409   a commit names chunks/blobs the site lacks
    ├── StorageError               exit 7   507   disk full, unwritable directory
    └── RemoteError                exit 8   502   the site could not be reached or answered badly

Foreign exceptions (OSError, SQLAlchemy, httpx) are mapped to these at the module
that talks to the foreign library, with ``raise Mapped(msg) from exc``.
"""

from __future__ import annotations

from typing import Any, ClassVar


class TainError(Exception):
    """Root of every error tain reports to a user."""

    exit_code: ClassVar[int] = 1
    http_status: ClassVar[int] = 500
    code: ClassVar[str] = "internal"

    def __init__(self, message: str, *, hint: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = details

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.hint:
            body["hint"] = self.hint
        if self.details:
            body["details"] = self.details
        return body


class UsageError(TainError):
    exit_code = 2
    http_status = 400
    code = "usage"


class InvalidPath(UsageError):
    code = "invalid_path"


class InvalidRequest(UsageError):
    code = "invalid_request"


class AuthError(TainError):
    exit_code = 3
    http_status = 401
    code = "unauthorized"


class TooManyAttempts(AuthError):
    http_status = 429
    code = "too_many_attempts"


class Forbidden(TainError):
    exit_code = 3
    http_status = 403
    code = "forbidden"


class NotFound(TainError):
    exit_code = 4
    http_status = 404
    code = "not_found"


class Conflict(TainError):
    exit_code = 5
    http_status = 409
    code = "conflict"


class ReadOnlyMirror(Conflict):
    """This site is a mirror: writes go to the primary (an agent fails over)."""

    code = "read_only_mirror"


class RangeNotSatisfiable(TainError):
    exit_code = 2
    http_status = 416
    code = "range_not_satisfiable"


class PayloadTooLarge(TainError):
    exit_code = 2
    http_status = 413
    code = "payload_too_large"


class IntegrityError(TainError):
    exit_code = 6
    http_status = 500
    code = "integrity"


class DigestMismatch(IntegrityError):
    http_status = 422
    code = "digest_mismatch"


class MissingData(TainError):
    exit_code = 6
    http_status = 409
    code = "missing_data"


class StorageError(TainError):
    exit_code = 7
    http_status = 507
    code = "storage"


class RemoteError(TainError):
    exit_code = 8
    http_status = 502
    code = "remote"


ERRORS_BY_CODE: dict[str, type[TainError]] = {
    cls.code: cls
    for cls in (
        TainError, UsageError, InvalidPath, InvalidRequest, AuthError, TooManyAttempts,
        Forbidden, NotFound, Conflict, ReadOnlyMirror, RangeNotSatisfiable, PayloadTooLarge,
        IntegrityError,
        DigestMismatch, MissingData, StorageError, RemoteError,
    )
}
