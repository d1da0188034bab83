"""Prometheus metrics of long-lived ceso processes (workers, cesod, ``ceso metrics serve``).

The short-lived CLI never imports this package. Workers fork prefork
children, so metrics use prometheus-client's multiprocess mode: the worker
command points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before
anything imports prometheus_client, children write their own files, dead
children are marked, and one endpoint in the main process serves the
aggregate plus gauges computed from SQL and Redis at scrape time. cesod is
one multi-threaded process: it records into the default registry and serves
its own counters without those gauges (:mod:`ceso.cesod.metrics`).

Recording helpers in :mod:`ceso.metrics.record` never raise: metrics are
bookkeeping and must not break a job.
"""
