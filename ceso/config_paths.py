"""Where ceso's configuration and local state live, found without loading the settings.

The CLI's way to a local cesod (:mod:`ceso.cesod.local`) needs these answers
without loading the settings. :mod:`ceso.settings` wraps them in ``Path``.
"""

from __future__ import annotations

import os

from ceso.constants import ENV_CONFIG, ENV_DATA_DIR
from ceso.errors import ConfigError

__all__ = ["default_data_dir", "find_config_file"]


def default_data_dir() -> str:
    """Where ceso keeps its SQLite database and secret file when not configured."""
    if env := os.environ.get(ENV_DATA_DIR):
        return env
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "ceso")


def find_config_file(explicit: str | os.PathLike[str] | None = None) -> str | None:
    """Return the YAML file to read, or None for built-in defaults.

    The first of ``explicit`` (``--config``), ``$CESO_CONFIG``,
    ``~/.config/ceso/config.yaml`` and ``/etc/ceso/config.yaml``. An explicit
    path must name an existing regular file (ConfigError for an empty path, a
    missing file, a FIFO, a device or a directory); an empty ``$CESO_CONFIG``
    counts as unset. The per-user and system paths are used only when present.
    """
    from ceso.errors import InvalidInputError
    from ceso.input_files import require_regular_file

    if explicit is not None and not os.fspath(explicit).strip():
        raise ConfigError("--config: the path is empty")
    chosen = explicit if explicit is not None else os.environ.get(ENV_CONFIG)
    if chosen:
        try:
            return require_regular_file(os.fspath(chosen), "config file")
        except InvalidInputError as exc:
            raise ConfigError(exc.message) from None
    home = os.path.expanduser("~")
    for candidate in (os.path.join(home, ".config", "ceso", "config.yaml"), "/etc/ceso/config.yaml"):
        if os.path.isfile(candidate):
            return candidate
    return None
