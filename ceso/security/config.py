"""Configuration of the sandbox (``security:``) and of the JSON-RPC daemon (``cesod:``).

Imported by :mod:`ceso.settings`; pydantic only, nothing heavy. Example::

    security:
      operator_mode: admin            # the local user running `ceso` without an agent token
      promotion_default_s: 1800
      promotion_max_s: 14400          # never more than 4 h
      rails:
        standard:
          hosts: [esxi-a]
          datastores: [LocalDS_0]
          networks: ["VM Network"]
          ip_ranges: [192.0.2.0/24, 2001:db8::/64]
          max_cpus: 8
          max_memory_mb: 16384
          max_disk_gb: 200
          delete_only_own: true
    cesod:
      listen: 127.0.0.1:8470
      allowlist: [127.0.0.1/32, ::1/128]
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["CesodSettings", "GuardRails", "SecuritySettings"]

MAX_PROMOTION_S = 4 * 3600

Mode = Literal["read-only", "standard", "admin"]


def _check_networks(values: list[str]) -> list[str]:
    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not an IP network (CIDR)") from exc
    return values


class GuardRails(BaseModel):
    """Extra limits for actors in one mode; an empty list or None means no limit."""

    model_config = ConfigDict(extra="forbid")

    hosts: list[str] = Field(default_factory=list, description="Hosts jobs may target.")
    datastores: list[str] = Field(
        default_factory=list, description="Datastores new VMs may use (then --datastore is required)."
    )
    networks: list[str] = Field(
        default_factory=list, description="Port groups new VMs may use (then --network is required)."
    )
    ip_ranges: list[str] = Field(
        default_factory=list, description="CIDRs static VM addresses must fall in (DHCP is always allowed)."
    )
    max_cpus: int | None = Field(default=None, ge=1, description="Most vCPUs a new VM may have.")
    max_memory_mb: int | None = Field(default=None, ge=1, description="Most memory a new VM may have.")
    max_disk_gb: int | None = Field(default=None, ge=1, description="Largest first disk a new VM may have.")
    delete_only_own: bool = Field(
        default=True,
        description="Agents may delete only VMs they created (operators are not limited by this).",
    )

    _nets = field_validator("ip_ranges")(_check_networks)


class SecuritySettings(BaseModel):
    """Actors, modes, promotions and guard rails."""

    model_config = ConfigDict(extra="forbid")

    operator_mode: Mode = Field(
        default="admin", description="Mode of the local user running ceso without CESO_AGENT_TOKEN."
    )
    operator_name: str | None = Field(
        default=None, max_length=64, description="Name recorded for the operator (default: the OS user)."
    )
    promotion_default_s: int = Field(
        default=1800, gt=0, le=MAX_PROMOTION_S, description="Length of a promotion when none is asked for."
    )
    promotion_max_s: int = Field(
        default=MAX_PROMOTION_S, gt=0, le=MAX_PROMOTION_S, description="Longest promotion (at most 4 h)."
    )
    rails: dict[str, GuardRails] = Field(
        default_factory=dict, description="Guard rails by mode (read-only, standard, admin)."
    )

    @model_validator(mode="after")
    def _default_within_max(self) -> SecuritySettings:
        if self.promotion_default_s > self.promotion_max_s:
            raise ValueError("promotion_default_s must not exceed promotion_max_s")
        return self

    @field_validator("rails")
    @classmethod
    def _rail_modes(cls, value: dict[str, GuardRails]) -> dict[str, GuardRails]:
        for mode in value:
            if mode not in ("read-only", "standard", "admin"):
                raise ValueError(f"rails: {mode!r} is not a mode (read-only, standard, admin)")
        return value

    def rails_for(self, mode: str) -> GuardRails:
        """The guard rails of ``mode`` (defaults if not configured)."""
        return self.rails.get(mode) or GuardRails()


class CesodSettings(BaseModel):
    """The JSON-RPC daemon for agents (off unless ``cesod`` is started)."""

    model_config = ConfigDict(extra="forbid")

    listen: str = Field(default="127.0.0.1:8470", description="HOST:PORT to bind (loopback by default).")
    allowlist: list[str] = Field(
        default_factory=lambda: ["127.0.0.1/32", "::1/128"],
        description="Client address CIDRs allowed to connect; checked before anything else.",
    )
    max_request_bytes: int = Field(
        default=1_048_576, ge=1024, le=64 * 1_048_576, description="Largest request body accepted."
    )
    max_batch: int = Field(default=20, ge=1, le=1000, description="Most calls in one batch request.")
    job_wait_max_s: float = Field(default=60.0, gt=0, le=600, description="Longest job.wait long-poll.")
    read_timeout_s: float = Field(
        default=30.0, gt=0, le=3600, description="Time a client has to finish the TLS handshake."
    )
    request_deadline_s: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="Time a client has for its whole request (TLS handshake, headers and body).",
    )
    max_connections: int = Field(
        default=64, ge=1, le=4096, description="Connections served at once; more are closed at once."
    )
    max_connections_per_client: int = Field(
        default=16, ge=1, le=4096, description="Connections served at once from one client address."
    )
    max_header_bytes: int = Field(
        default=16_384,
        ge=1024,
        le=1_048_576,
        description="Largest request line and headers accepted; more is answered HTTP 431 (400 if they "
        "never end) and the connection closed.",
    )
    keep_alive_s: int = Field(
        default=5, ge=1, le=300, description="Time an idle connection is kept open between requests."
    )
    worker_threads: int = Field(
        default=32,
        ge=1,
        le=1024,
        description="Threads that run calls (SQL, queue, ESXi); cesod's thread count stays bounded by it. "
        "Calls beyond it wait their turn.",
    )
    shutdown_grace_s: int = Field(
        default=8,
        ge=0,
        le=3600,
        description="On SIGTERM, time requests in flight have to finish before they are cut (within "
        "Docker's default 10 s stop timeout).",
    )
    rate_per_address: float = Field(
        default=50.0,
        ge=0,
        le=100_000,
        description="Requests a second one client address may send on average (0: no limit); more are "
        "answered HTTP 429.",
    )
    rate_per_token: float = Field(
        default=20.0,
        ge=0,
        le=100_000,
        description="Requests a second one agent may send on average, from any address (0: no limit).",
    )
    rate_burst: int = Field(
        default=100,
        ge=1,
        le=100_000,
        description="Requests an address or agent may send at once above its rate.",
    )
    tls_cert: Path | None = Field(
        default=None,
        description="PEM certificate (chain after the leaf) for HTTPS; needed, with tls_key, to listen on "
        "an address other than loopback.",
    )
    tls_key: Path | None = Field(default=None, description="PEM private key of tls_cert (no passphrase).")
    insecure_http: bool = Field(
        default=False,
        description="Allow plain HTTP on a non-loopback address (only behind a TLS-terminating proxy).",
    )
    access_log: Path | None = Field(default=None, description="Access log file (default: stderr).")
    operator_socket: bool = Field(
        default=True,
        description="Also serve the local operator on a private Unix socket; the ceso CLI then "
        "submits vm create/clone/power/delete/reconfigure, vm snapshot create/revert/delete, "
        "backup create/restore and host ping through cesod (same OS user only).",
    )

    _nets = field_validator("allowlist")(_check_networks)

    @model_validator(mode="after")
    def _tls_pair(self) -> CesodSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("cesod.tls_cert and cesod.tls_key go together: give both or neither")
        return self
