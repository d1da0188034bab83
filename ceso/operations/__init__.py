"""Job handlers: one module per job kind, each with ``run_<kind>(ctx) -> result dict``.

The table of kind -> handler is :mod:`ceso.operations.handlers`.
"""
