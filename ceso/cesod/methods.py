"""The method table of cesod and the checked call of one method.

Every method name is an operation name (:mod:`ceso.security.operations`), so the
sandbox check, the audit record and metrics labels use the same name as the
CLI. :func:`call_method` validates the params, checks the caller's mode *now*
(refusals audited), runs the method, and maps any ceso error to its JSON-RPC
error with the CLI's message.
"""

from __future__ import annotations

import logging
from typing import Any

from ceso.cesod.backup_methods import BACKUP_METHODS
from ceso.cesod.calls import Call, Method
from ceso.cesod.job_methods import JOB_METHODS
from ceso.cesod.protocol import INTERNAL_ERROR, INVALID_PARAMS, METHOD_NOT_FOUND, RpcError, from_ceso_error
from ceso.cesod.schema import validate_params
from ceso.cesod.template_methods import TEMPLATE_METHODS
from ceso.cesod.vm_methods import VM_METHODS
from ceso.errors import CesoError
from ceso.specs import InvalidParamsError

__all__ = ["METHODS", "call_method"]

log = logging.getLogger(__name__)


def system_describe(call: Call, p: dict[str, Any]) -> Any:
    """Who the caller is, its mode now, and the methods it may call with their param schemas."""
    from ceso.security.modes import allows
    from ceso.security.operations import get_operation

    settings = call.runtime.settings.cesod
    methods = []
    for method in METHODS.values():
        op = get_operation(method.name)
        if allows(call.principal.mode, op.mode):
            methods.append(
                {
                    "name": method.name,
                    "summary": method.summary,
                    "mode": op.mode,
                    "params": method.schema(),
                }
            )
    return {
        **call.principal.to_dict(),
        "methods": methods,
        "limits": {
            "max_request_bytes": settings.max_request_bytes,
            "max_batch": settings.max_batch,
            "job_wait_max_s": settings.job_wait_max_s,
        },
    }


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        *VM_METHODS,
        *BACKUP_METHODS,
        *TEMPLATE_METHODS,
        *JOB_METHODS,
        Method(
            "system.describe", "The caller, its mode and the methods it may call now.", {}, system_describe
        ),
    )
}


def call_method(call: Call, name: str, raw_params: Any) -> Any:
    """Run method ``name`` for ``call``; RpcError for anything that is not a result.

    A method with a spec (:mod:`ceso.specs`) has its job params checked first, then its spec
    parsed (a wrong type, unknown or missing param is -32602), then the caller authorized.
    """
    from ceso.security.gate import authorize

    method = METHODS.get(name)
    if method is None:
        raise RpcError(
            METHOD_NOT_FOUND,
            f"unknown method {name!r} (system.describe lists the methods you may call)",
            data_code="method_not_found",
        )
    try:
        if method.spec is None:
            params, spec = validate_params(name, method.params, raw_params), None
            host, vm = params.get("host"), params.get("name")
        else:
            params, spec = (
                _job_params(method, raw_params),
                method.spec.parse(_spec_params(method, raw_params)),
            )
            host, vm = getattr(spec, "host", None), getattr(spec, "name", None)
        authorize(call.runtime, call.principal, name, host=host, vm=vm)
        if spec is None:
            return method.handler(call, params)
        return method.handler(call, spec, params)
    except InvalidParamsError as exc:
        raise RpcError(INVALID_PARAMS, f"{name}: {exc.message}", data_code="invalid_params") from exc
    except CesoError as exc:
        raise from_ceso_error(exc) from exc
    except RpcError:
        raise
    except Exception as exc:
        from ceso.db.errors import translate_db_error

        translated = translate_db_error(exc)  # the database went away mid-call
        if translated is not None:
            raise from_ceso_error(translated) from exc
        log.exception("cesod method %s crashed", name)
        raise RpcError(
            INTERNAL_ERROR, f"internal error: {type(exc).__name__}", data_code="internal_error", exit_code=1
        ) from exc


def _job_params(method: Method, raw: Any) -> dict[str, Any]:
    """The job options of a spec method's params, checked, defaults filled in."""
    own = {key: raw[key] for key in method.params if key in raw} if isinstance(raw, dict) else raw
    return validate_params(method.name, method.params, own)


def _spec_params(method: Method, raw: Any) -> dict[str, Any]:
    """The params of a spec method that are not job options (the spec refuses what it does not know)."""
    assert isinstance(raw, dict | None)
    return {key: value for key, value in (raw or {}).items() if key not in method.params}
