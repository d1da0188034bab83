"""cesod: ceso's JSON-RPC 2.0 daemon for agents (``POST /rpc``), off unless started.

Layers, outside in:

* :mod:`ceso.cesod.server`   — HTTP: client address allowlist first, then path, size
  limits and the bearer token; an access log line per request;
* :mod:`ceso.cesod.dispatch` — JSON-RPC: parsing, batches, notifications, errors;
* :mod:`ceso.cesod.methods`  — the method table: names from the operation table,
  parameter schemas spelled like the CLI's options, the sandbox check of each call;
* :mod:`ceso.cesod.vm_methods`, :mod:`ceso.cesod.backup_methods`, :mod:`ceso.cesod.job_methods` — the calls, made
  through the same core functions and request builders as the CLI;
* :mod:`ceso.cesod.protocol` — ceso's error tree → JSON-RPC error objects;
* :mod:`ceso.cesod.hooks`    — observers of every call (the metrics hook);
* :mod:`ceso.cesod.metrics`  — cesod's own ``/metrics`` endpoint, on its own port.
"""
