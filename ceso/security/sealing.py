"""Sealing: secret job params go to the secret store; SQL holds only a reference.

A job row is read by every worker and shown by ``job status``, so a value
under a secret-looking key (``password``, ``token``, ``private_key``, and the
free-form cloud-init ``userdata``/``vendordata`` documents, which routinely
carry password lines and keys) cannot stay in it. Redacting it would change
what the job does, so :func:`seal_params` moves it to the secret store (the
OS keyring or ceso's encrypted file, where host passwords already live and
workers already read) and leaves ``{"$sealed": REF, "bytes": N}``; the worker
calls :func:`unseal_params` in memory and :func:`discard_sealed` once the job
has ended.

A reference is random, except for a request with an idempotency key: then it
is an HMAC (keyed by a per-installation secret) of the key, the param's path
and its value, so resubmitting the same request compares equal and a
different one conflicts, as idempotency keys promise.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets as pysecrets
from typing import Any

from ceso.errors import CesoError, NotFoundError
from ceso.runtime import Runtime
from ceso.security.redact import is_secret_key, register_secret

__all__ = ["discard_sealed", "seal_params", "unseal_params"]

log = logging.getLogger(__name__)

SEAL_KEY = "ceso:seal-key"
PREFIX = "sealed:"


def _seal_key(runtime: Runtime) -> bytes:
    store = runtime.secrets
    try:
        return store.get(SEAL_KEY).encode()
    except NotFoundError:
        store.set(SEAL_KEY, pysecrets.token_hex(32))
        return store.get(SEAL_KEY).encode()  # re-read: a concurrent first use may have won


def _sealable(key: Any, value: Any) -> bool:
    if not (isinstance(key, str) and is_secret_key(key)):
        return False
    return value not in (None, "", True, False) and not (isinstance(value, dict) and "$sealed" in value)


def seal_params(runtime: Runtime, params: dict[str, Any], *, idempotency_key: str | None) -> dict[str, Any]:
    """A copy of ``params`` with every secret value stored away and replaced by a reference."""

    def walk(value: Any, path: str) -> Any:
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for key, item in value.items():
                here = f"{path}.{key}"
                out[key] = seal_one(item, here) if _sealable(key, item) else walk(item, here)
            return out
        if isinstance(value, list):
            return [walk(item, f"{path}[{i}]") for i, item in enumerate(value)]
        return value

    def seal_one(value: Any, path: str) -> dict[str, Any]:
        text = json.dumps(value, sort_keys=True)
        if idempotency_key is None:
            ref = pysecrets.token_hex(16)
        else:
            message = f"{idempotency_key}\0{path}\0{text}".encode()
            ref = hmac.new(_seal_key(runtime), message, hashlib.sha256).hexdigest()[:32]
        if isinstance(value, str):
            register_secret(value)
        runtime.secrets.set(PREFIX + ref, text)
        return {"$sealed": ref, "bytes": len(text.encode())}

    result = walk(params, "")
    assert isinstance(result, dict)
    return result


def _refs(value: Any) -> list[str]:
    if isinstance(value, dict):
        if "$sealed" in value:
            return [str(value["$sealed"])]
        return [r for item in value.values() for r in _refs(item)]
    if isinstance(value, list):
        return [r for item in value for r in _refs(item)]
    return []


def unseal_params(runtime: Runtime, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` with every reference replaced by its value; CesoError (``sealed_value_missing``) if one is gone."""
    if not _refs(params):
        return params

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            if "$sealed" in value:
                ref = str(value["$sealed"])
                try:
                    opened = json.loads(runtime.secrets.get(PREFIX + ref))
                except NotFoundError:
                    raise CesoError(
                        f"a sealed job parameter ({ref}) is not in this installation's secret store; "
                        "the worker must share the submitter's secret store",
                        code="sealed_value_missing",
                    ) from None
                if isinstance(opened, str):
                    register_secret(opened)
                return opened
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    result = walk(params)
    assert isinstance(result, dict)
    return result


def discard_sealed(runtime: Runtime, params: dict[str, Any]) -> None:
    """Delete the sealed values of a finished job (errors are logged: this is cleanup)."""
    for ref in _refs(params):
        try:
            runtime.secrets.delete(PREFIX + ref)
        except Exception:
            log.warning("sealed value %s not deleted", ref, exc_info=True)
