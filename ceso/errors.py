"""ceso's error tree and the exit codes the entry points map it to.

Every error that leaves ceso's core is a :class:`CesoError`. Adapters translate
foreign exceptions (vSphere faults, paramiko, Redis, SQLAlchemy) into this tree
and chain the original with ``raise ... from exc``; only entry points (the CLI,
cesod) turn an error into a message and an exit code.

::

    CesoError                      exit 1  operation failed
    ├── InvalidInputError          exit 2  bad input or usage (nothing was changed)
    │   └── ConfigError            exit 2  invalid configuration file or variable
    ├── NotPermittedError          exit 3  the actor may not do this
    ├── NotFoundError              exit 4  unknown host, VM, job, template, ...
    ├── ConflictError              exit 5  duplicate name, job in flight
    │   └── LockedError            exit 5  a lock is held by another job
    ├── HostUnreachableError       exit 6  network, TLS or login failure
    │   ├── AuthenticationError    exit 6  wrong user or password
    │   └── ThumbprintMismatchError exit 6 TLS certificate is not the pinned one
    ├── OperationError             exit 1  the host refused or failed the operation
    │   └── TransientError         exit 1  may succeed if retried (connection loss, 503)
    ├── JobFailedError             exit 1  a waited-for job ended failed
    ├── JobCancelledError          exit 1  a job was cancelled
    ├── TimeoutExpiredError        exit 1  waited too long
    └── WaitInterruptedError       exit 130 Ctrl-C while following a job (the job goes on)
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthenticationError",
    "CesoError",
    "ConfigError",
    "ConflictError",
    "HostUnreachableError",
    "InvalidInputError",
    "JobCancelledError",
    "JobFailedError",
    "LockedError",
    "NotFoundError",
    "NotPermittedError",
    "OperationError",
    "ThumbprintMismatchError",
    "TimeoutExpiredError",
    "TransientError",
    "WaitInterruptedError",
]


class CesoError(Exception):
    """Base of every error ceso raises on purpose.

    ``code`` is a stable machine-readable identifier (shown in JSON errors and
    stored on failed jobs); ``exit_code`` is what the CLI exits with.
    """

    code = "operation_failed"
    exit_code = 1

    def __init__(self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        """The JSON form used by ``--json`` output, job rows and cesod."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class InvalidInputError(CesoError):
    code = "invalid_input"
    exit_code = 2


class ConfigError(InvalidInputError):
    code = "invalid_config"


class NotPermittedError(CesoError):
    code = "not_permitted"
    exit_code = 3


class NotFoundError(CesoError):
    code = "not_found"
    exit_code = 4


class ConflictError(CesoError):
    code = "conflict"
    exit_code = 5


class LockedError(ConflictError):
    code = "locked"


class HostUnreachableError(CesoError):
    code = "host_unreachable"
    exit_code = 6


class AuthenticationError(HostUnreachableError):
    code = "authentication_failed"


class ThumbprintMismatchError(HostUnreachableError):
    code = "thumbprint_mismatch"


class OperationError(CesoError):
    code = "operation_failed"


class TransientError(OperationError):
    code = "transient"


class JobFailedError(CesoError):
    code = "job_failed"


class JobCancelledError(CesoError):
    code = "job_cancelled"


class TimeoutExpiredError(CesoError):
    code = "timeout"


_EXIT_BY_CODE: dict[str, int] = {}
for _cls in (
    InvalidInputError,
    ConfigError,
    NotPermittedError,
    NotFoundError,
    ConflictError,
    LockedError,
    HostUnreachableError,
    AuthenticationError,
    ThumbprintMismatchError,
):
    _EXIT_BY_CODE[_cls.code] = _cls.exit_code
_EXIT_BY_CODE.update(
    {
        "host_refused_input": 2,
        "template_invalid": 2,
        "thumbprint_unconfirmed": 2,
        "ssh_host_key_unconfirmed": 2,
        "ssh_host_key_mismatch": 6,
        "ssh_not_configured": 3,
        "api_read_only": 3,
        "needs_api_route": 3,
        "lock_lost": 1,
    }
)


def exit_code_for(code: str | None) -> int:
    """The exit code of an error known only by its code (e.g. a failed job's ``error.code``)."""
    return _EXIT_BY_CODE.get(code or "", 1)


class WaitInterruptedError(CesoError):
    """Ctrl-C while the CLI followed a job: the job goes on; the CLI exits 130 (as for SIGINT)."""

    code = "interrupted"
    exit_code = 130
