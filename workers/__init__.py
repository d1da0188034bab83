"""The Celery side of ceso: the app and its one task. Started by ``ceso worker``."""
