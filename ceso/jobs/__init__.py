"""Jobs: the SQL record, the outbox publish, claiming, running and waiting."""
