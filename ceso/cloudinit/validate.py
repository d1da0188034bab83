"""Validators for the names and identifiers that end up in cloud-init documents.

Every function here is pure: it either returns the normalized value or raises
:class:`~ceso.errors.InvalidInputError` whose message names the field and the
bad value, so a caller can surface it unchanged before anything touches a host.
"""

from __future__ import annotations

import re

from ceso.errors import InvalidInputError

__all__ = [
    "hostname_for_vm",
    "validate_domain",
    "validate_hostname",
    "validate_instance_id",
    "validate_interface_name",
    "validate_mac",
    "validate_package",
    "validate_username",
]

_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_MAC = re.compile(r"^[0-9a-f]{2}([:-])[0-9a-f]{2}(?:\1[0-9a-f]{2}){4}$")
# useradd's portable name rule (NAME_REGEX in adduser.conf), 32 chars like utmp.
_USERNAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
# The instance id becomes a directory name under /var/lib/cloud/instances/, so no '/'.
_INSTANCE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
# Debian package names, optionally pinned as name=version (what cloud-init passes to apt).
_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+(?:=[A-Za-z0-9.+:~-]+)?$")
# Kernel IFNAMSIZ is 16 including the NUL; '/' and whitespace are forbidden.
_IFNAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")


def _check_dns_name(value: str, field: str) -> str:
    """RFC 1123 name check shared by hostnames and search domains; returns it lowercased."""
    name = value.strip().lower()
    if not name:
        raise InvalidInputError(f"{field} must not be empty")
    if len(name) > 253:
        raise InvalidInputError(f"{field} {value!r} is {len(name)} characters long; at most 253 are allowed")
    labels = name.split(".")
    for label in labels:
        if not _LABEL.match(label):
            raise InvalidInputError(
                f"{field} {value!r} is not a valid RFC 1123 name: label {label!r} must be 1-63 characters "
                "of a-z, 0-9 and '-', not starting or ending with '-'"
            )
    # An all-numeric last label reads as an IP address to resolvers (RFC 3696 section 2).
    if labels[-1].isdigit():
        raise InvalidInputError(f"{field} {value!r} must not end in an all-numeric label")
    return name


def validate_hostname(value: str, field: str = "hostname") -> str:
    """Return ``value`` lowercased if it is an RFC 1123 host name (FQDN allowed).

    Labels are 1-63 characters of ``[a-z0-9-]`` not starting or ending with '-',
    the whole name at most 253 characters, no trailing dot.
    Raises InvalidInputError otherwise.
    """
    return _check_dns_name(value, field)


def validate_domain(value: str, field: str = "search domain") -> str:
    """Return a DNS search domain lowercased; same rules as :func:`validate_hostname`."""
    return _check_dns_name(value, field)


def hostname_for_vm(vm_name: str, hostname: str | None = None) -> str:
    """Pick the guest's ``local-hostname``.

    An explicit ``hostname`` wins and must be valid. Otherwise the VM name,
    lowercased, is used only if it is a valid host name; VM names may hold spaces,
    underscores or dots in odd places, and silently mangling them would give a
    guest a name nobody chose, so an invalid VM name requires an explicit hostname.
    Raises InvalidInputError.
    """
    if hostname is not None:
        return validate_hostname(hostname)
    try:
        return validate_hostname(vm_name, "VM name")
    except InvalidInputError as exc:
        raise InvalidInputError(
            f"{exc.message}; the VM name cannot serve as the guest hostname, give an explicit hostname"
        ) from exc


def validate_mac(value: str, field: str = "mac") -> str:
    """Return a unicast Ethernet MAC as lowercase ``aa:bb:cc:dd:ee:ff``.

    Accepts ':' or '-' separators. Rejects the all-zero and multicast/broadcast
    addresses, which no vNIC can carry. Raises InvalidInputError.
    """
    mac = value.strip().lower()
    if not _MAC.match(mac):
        raise InvalidInputError(f"{field} {value!r} is not a MAC address like 00:50:56:aa:bb:cc")
    mac = mac.replace("-", ":")
    first = int(mac[:2], 16)
    if mac == "00:00:00:00:00:00" or first & 1:
        raise InvalidInputError(f"{field} {value!r} is not a unicast MAC address")
    return mac


def validate_interface_name(value: str, field: str = "interface name") -> str:
    """Return a Linux interface name (1-15 characters of ``[A-Za-z0-9_.-]``, not '.' or '..')."""
    if not _IFNAME.match(value) or value in {".", ".."}:
        raise InvalidInputError(
            f"{field} {value!r} is not a Linux interface name (1-15 characters of letters, digits, '_', '.', '-')"
        )
    return value


def validate_username(value: str, field: str = "user") -> str:
    """Return a portable Linux user name; refuses ``root``.

    root is refused because cloud-init's ``users`` handling and ``disable_root``
    make a sudo-configured root entry behave unlike any other user.
    """
    if not _USERNAME.match(value):
        raise InvalidInputError(
            f"{field} {value!r} is not a valid user name (start with a-z or '_', then a-z, 0-9, '_', '-'; "
            "at most 32 characters)"
        )
    if value == "root":
        raise InvalidInputError(f"{field} must not be 'root'; use an ordinary user with sudo")
    return value


def validate_instance_id(value: str, field: str = "instance-id") -> str:
    """Return a cloud-init instance id: 1-128 of ``[A-Za-z0-9._:-]``, starting alphanumeric."""
    if not _INSTANCE_ID.match(value):
        raise InvalidInputError(
            f"{field} {value!r} is invalid: use 1-128 characters of letters, digits, '.', '_', ':', '-', "
            "starting with a letter or digit"
        )
    return value


def validate_package(value: str, field: str = "package") -> str:
    """Return a Debian package name, optionally pinned as ``name=version``."""
    if not _PACKAGE.match(value):
        raise InvalidInputError(f"{field} {value!r} is not a Debian package name (optionally name=version)")
    return value
