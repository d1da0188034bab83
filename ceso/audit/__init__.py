"""The audit trail: append-only, hash-chained records of every change and every refusal.

* :mod:`ceso.audit.chain`  — canonical JSON and the hash of a record;
* :mod:`ceso.audit.store`  — appending (safe under concurrency on SQLite and PostgreSQL);
* :mod:`ceso.audit.jobs`   — the records of a job's life (submitted, claimed, steps, outcome);
* :mod:`ceso.audit.query`  — list, show, export;
* :mod:`ceso.audit.verify` — finding changed, removed and reordered records.
"""
