"""Backup targets: the :class:`~ceso.backup.targets.base.Target` interface and its implementations
(``local``, ``sftp``, ``s3``, ``datastore``); :mod:`ceso.backup.targets.registry` keeps the
configured ones in SQL (settings) and the secret store (credentials)."""

TARGET_TYPES = ("local", "sftp", "s3", "datastore")
