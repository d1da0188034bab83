"""Job handlers: one module per job kind, each ``run(ctx) -> result dict``."""
