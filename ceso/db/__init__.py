"""SQL storage: engines, the schema (Alembic) and the tables."""
