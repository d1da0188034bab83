"""cesod's template methods: ``template.import`` (a job) takes the spec of :mod:`ceso.images.specs`.

``from`` names the image as the worker will read it: an absolute path on the worker's machine
or an https:// URL. cesod never opens it.
"""

from __future__ import annotations

from typing import Any

from ceso.cesod.calls import Call, Method, job_method, submit_and_report
from ceso.images.specs import ImportTemplate

__all__ = ["TEMPLATE_METHODS"]


def template_import(call: Call, spec: ImportTemplate, p: dict[str, Any]) -> Any:
    from ceso.images.requests import import_request

    request = import_request(call.runtime, spec, idempotency_key=p["idempotency_key"])
    return submit_and_report(call, spec, request, p)


TEMPLATE_METHODS: list[Method] = [
    job_method(
        "template.import",
        "Import an OVA, an OVF with its disks or a stream-optimized VMDK as a new template (a job).",
        ImportTemplate,
        template_import,
    ),
]
