"""Logging setup: every line carries the current job id (a ContextVar)."""

from __future__ import annotations

import contextvars
import logging

from ceso.security.redact import RedactingFormatter

__all__ = ["configure_logging", "job_id_var"]

job_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("ceso_job_id", default="-")


class _JobIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.job_id = job_id_var.get()
        return True


def configure_logging(level: int = logging.INFO) -> None:
    """Log to stderr with the job id on each line; idempotent."""
    root = logging.getLogger()
    if any(getattr(h, "_ceso", False) for h in root.handlers):
        root.setLevel(level)
        return
    handler = logging.StreamHandler()
    handler._ceso = True  # type: ignore[attr-defined]
    handler.addFilter(_JobIdFilter())
    handler.setFormatter(
        # Every line (arguments and tracebacks included) passes the one redaction function.
        RedactingFormatter("%(asctime)s %(levelname)s [job %(job_id)s] %(name)s: %(message)s")
    )
    root.addHandler(handler)
    root.setLevel(level)
