"""Configuration: built-in defaults < YAML file < ``CESO_*`` environment variables.

The YAML file is the first of: ``--config PATH``, ``$CESO_CONFIG``,
``~/.config/ceso/config.yaml``, ``/etc/ceso/config.yaml``; with none of them
the built-in defaults apply. Nested keys map to variables with ``__``
(``CESO_JOBS__MAX_ATTEMPTS``). :func:`get_settings` is a cached factory; no
settings object is built at import time.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, SettingsError

from ceso import config_paths
from ceso.backup.config import BackupSettings
from ceso.constants import ENV_PREFIX
from ceso.errors import ConfigError
from ceso.security.config import CesodSettings, SecuritySettings

__all__ = [
    "JobSettings",
    "LockSettings",
    "Settings",
    "default_data_dir",
    "find_config_file",
    "get_settings",
    "load_settings",
]


def default_data_dir() -> Path:
    """Where ceso keeps its SQLite database and secret file when not configured."""
    return Path(config_paths.default_data_dir())


def find_config_file(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The YAML file to read, or None for built-in defaults (:func:`ceso.config_paths.find_config_file`)."""
    found = config_paths.find_config_file(explicit)
    return Path(found) if found is not None else None


def _default_database_url() -> str:
    return f"sqlite:///{default_data_dir() / 'ceso.db'}"


class JobSettings(BaseModel):
    """How jobs run: time limits, attempts, heartbeats."""

    model_config = ConfigDict(extra="forbid")  # a typo in the YAML is an error, never ignored

    soft_time_limit_s: int = Field(
        3300, gt=0, description="Soft limit: the job is asked to stop and clean up."
    )
    hard_time_limit_s: int = Field(3600, gt=0, description="Hard limit: the worker child is killed.")
    max_attempts: int = Field(
        3, ge=1, le=20, description="Deliveries of one job before it is failed for good."
    )
    heartbeat_s: float = Field(
        5.0, gt=0, description="How often a running job refreshes its heartbeat in SQL."
    )
    stale_after_s: float = Field(
        60.0, gt=0, description="A running job whose heartbeat is older than this may be re-claimed."
    )
    relay_interval_s: float = Field(
        5.0, gt=0, le=3600, description="How often each worker's outbox relay looks for its hosts' lost jobs."
    )
    republish_after_s: float = Field(
        30.0,
        gt=0,
        description="A queued job neither claimed nor waiting in its queue this long after it was "
        "published is published again.",
    )
    host_retry_s: float = Field(
        60.0,
        ge=0,
        le=3600,
        description="How long a job step that is safe to repeat retries a transient host fault "
        "(connection lost, host unreachable), with backoff, within the soft time limit, and how long "
        "a backup's read cut mid-file waits to resume from its byte, per cut; 0: never.",
    )


class LockSettings(BaseModel):
    """VM and datastore locks (Redis leases)."""

    model_config = ConfigDict(extra="forbid")  # a typo in the YAML is an error, never ignored

    ttl_s: float = Field(30.0, gt=0.05, description="Lease time; a job renews it every third of that.")
    wait_s: float = Field(600.0, ge=0, description="How long a job waits for a busy VM or datastore.")
    datastore_concurrency: int = Field(
        4, ge=1, le=64, description="Disk copies running at once on one datastore."
    )


class MetricsSettings(BaseModel):
    """Prometheus endpoints of long-lived processes."""

    model_config = ConfigDict(extra="forbid")  # a typo in the YAML is an error, never ignored

    address: str = Field("127.0.0.1", description="Address the metrics endpoints bind to.")
    worker_port: int = Field(
        9810, ge=0, le=65535, description="Port of a worker's /metrics (0: any free port)."
    )
    # 9811 is `ceso metrics serve`'s and 9812 the usual second worker on one machine.
    cesod_port: int = Field(9813, ge=0, le=65535, description="Port of cesod's /metrics (0: any free port).")
    enabled: bool = Field(True, description="Serve metrics from workers and cesod.")


class Settings(BaseSettings):
    """ceso's configuration. Every field can be set in YAML or as ``CESO_<FIELD>``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    database_url: str = Field(
        default_factory=_default_database_url, description="SQLAlchemy URL of the database."
    )
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis URL: the Celery broker and locks.")
    data_dir: Path = Field(default_factory=default_data_dir, description="Directory for local state.")
    secret_store: Literal["auto", "keyring", "file", "sql"] = Field(
        "auto",
        description="Where secrets (host passwords, keys, sealed job params) go: the OS keyring, an "
        "encrypted file, auto (keyring if usable, else the file), or sql: encrypted in the database under "
        "master_key_file, so every machine of the installation can use them.",
    )
    master_key_file: Path | None = Field(
        None,
        description="The master key of secret_store sql (default: $CREDENTIALS_DIRECTORY/ceso-master-key, "
        "/run/secrets/ceso_master_key, then <data_dir>/master.key).",
    )
    esxi_timeout_s: float = Field(30.0, gt=0, description="Timeout of one vSphere or HTTP request.")
    esxi_task_timeout_s: float = Field(1800.0, gt=0, description="Longest wait for one vSphere task.")
    host_probe_interval_s: float = Field(
        3600.0,
        ge=0,
        description="Workers re-probe their hosts (license, API writes, SSH) this often; 0: never.",
    )
    jobs: JobSettings = Field(default_factory=JobSettings)  # type: ignore[arg-type]
    locks: LockSettings = Field(default_factory=LockSettings)  # type: ignore[arg-type]
    backups: BackupSettings = Field(default_factory=BackupSettings)  # type: ignore[arg-type]
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)  # type: ignore[arg-type]
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    cesod: CesodSettings = Field(default_factory=CesodSettings)

    config_file: Path | None = Field(
        None, exclude=True, description="The YAML file these settings came from."
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment wins over the YAML file, which is passed as init values.
        return env_settings, init_settings


#: A config file larger than this is refused (the example with every setting is a few KiB).
MAX_CONFIG_FILE = 1024 * 1024


def _read_yaml(path: Path) -> dict[str, Any]:
    from ceso.errors import InvalidInputError
    from ceso.input_files import read_text_file

    try:
        text = read_text_file(path, "config file", max_bytes=MAX_CONFIG_FILE)
    except InvalidInputError as exc:
        raise ConfigError(exc.message) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: cannot read config: {str(exc).splitlines()[0]}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: config must be a mapping of keys to values")
    return data


def load_settings(config: str | os.PathLike[str] | None = None) -> Settings:
    """Build settings from defaults, the YAML file and the environment.

    Raises ConfigError naming the offending key and its source (file or env).
    """
    path = find_config_file(config)
    values = _read_yaml(path) if path else {}
    try:
        settings = Settings(**values)
    except SettingsError as exc:  # a variable pydantic-settings could not even parse (bad JSON)
        raise ConfigError(_unparsable_env(str(exc))) from exc
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        env_name = ENV_PREFIX + key.upper().replace(".", "__")
        source = f"environment variable {env_name}" if env_name in os.environ else str(path or "defaults")
        if err["type"] == "extra_forbidden":
            raise ConfigError(
                f"{source}: unknown key {key!r} (a typo? every setting: docs/configuration.md)"
            ) from exc
        raise ConfigError(f"{source}: invalid value for {key!r}: {err['msg']}") from exc
    settings.config_file = path
    return settings


def _unparsable_env(message: str) -> str:
    """One line naming the variables behind a field pydantic-settings could not parse."""
    found = re.search(r'field "([^"]+)"', message)
    field = found.group(1) if found else ""
    prefix = ENV_PREFIX + field.upper()
    names = sorted(k for k in os.environ if k.upper() == prefix or k.upper().startswith(prefix + "__"))
    where = ", ".join(names) if names else f"the {ENV_PREFIX}* variables"
    return f"{where}: not a valid value for {field!r} (lists and mappings are written in JSON)"


@functools.cache
def get_settings(config: str | None = None) -> Settings:
    """Cached :func:`load_settings`; one settings object per process and path."""
    return load_settings(config)
