"""The worker's Celery consumer, which survives a broker lost while it holds unacknowledged messages.

When Redis goes away, Celery's consumer collects the lost connection, which drops its transport's
reference to the connection's settings, and closes it. Every later use of a channel of that
connection — restoring the unacknowledged messages at the close, acknowledging the message of a
job that ends after the loss — then fails with ``AttributeError: 'NoneType' object has no
attribute 'hostname'``, which Celery does not expect there: it calls it unrecoverable and stops
the worker. Here the transport gets its settings back once the connection is collected, so those
uses reach Redis again (or fail with a connection error, which Celery logs and gets past). A
message that was really lost is published again by the outbox relay (:mod:`ceso.jobs.relay`).
"""

from __future__ import annotations

import logging
from typing import Any

from celery.worker.consumer import Consumer as CeleryConsumer

__all__ = ["Consumer"]

log = logging.getLogger(__name__)


class Consumer(CeleryConsumer):  # type: ignore[misc]
    def on_connection_error_after_connected(self, exc: Any) -> None:
        connection: Any = getattr(self, "connection", None)  # Celery sets it untyped
        # The private attribute: the public ``transport`` would make a new transport if none is set.
        transport = getattr(connection, "_transport", None)
        try:
            super().on_connection_error_after_connected(exc)
        except AttributeError as close_error:
            log.warning("closing the lost broker connection failed (%r); reconnecting", close_error)
            self.connection = None  # dead either way: the restart makes a new one
        finally:
            if transport is not None and transport.client is None:
                transport.client = connection  # its channels' later acknowledgements can connect again
