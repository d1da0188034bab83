"""Where ceso's configuration and local state live, found without loading the settings.

Light on purpose (standard library only): the CLI's fast path to a local cesod
(:mod:`ceso.cesod.local`) needs these answers before it decides whether to
load pydantic at all.
"""

from __future__ import annotations

import os
from pathlib import Path

from ceso.constants import ENV_CONFIG, ENV_DATA_DIR
from ceso.errors import ConfigError

__all__ = ["default_data_dir", "find_config_file"]


def default_data_dir() -> Path:
    """Where ceso keeps its SQLite database and secret file when not configured."""
    if env := os.environ.get(ENV_DATA_DIR):
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "ceso"


def find_config_file(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """Return the YAML file to read, or None for built-in defaults.

    The first of ``explicit`` (``--config``), ``$CESO_CONFIG``,
    ``~/.config/ceso/config.yaml`` and ``/etc/ceso/config.yaml``. An explicit
    path must exist (ConfigError); the per-user and system paths are used
    only when present.
    """
    chosen = explicit if explicit is not None else os.environ.get(ENV_CONFIG)
    if chosen:
        path = Path(chosen).expanduser()
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        return path
    for candidate in (Path.home() / ".config" / "ceso" / "config.yaml", Path("/etc/ceso/config.yaml")):
        if candidate.is_file():
            return candidate
    return None
