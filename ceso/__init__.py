"""ceso (ESXi Commander): VM operations on standalone VMware ESXi hosts.

The package is the library and the CLI; the Celery app and tasks live in the
sibling ``workers`` package, which the CLI never imports (it enqueues by name).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
