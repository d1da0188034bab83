"""The ``#cloud-config`` userdata: ceso's user, its SSH keys, packages, and the
operator's extra cloud-config merged in.

Merge rule (extra text into ceso's document), applied by :func:`merge_cloud_config`:

* a key only in the extra document is added, after ceso's keys, in the extra's order;
* mapping + mapping: merged recursively by these same rules;
* list + list: concatenated, ceso's items first;
* ``users``: concatenated, except that an entry for ceso's own user (a mapping
  whose ``name`` is that user, or the bare name) is merged into ceso's entry
  instead of being appended; its ``ssh_authorized_keys`` are appended to
  ceso's (duplicates dropped), so the extra text can add keys and settings to
  that user but never replace or remove the keys ceso put there (hyphenated
  spellings such as ``ssh-authorized-keys`` are treated like cloud-init does:
  as their underscore form);
* scalar + anything: the extra value wins (an operator's explicit choice);
* ceso's mapping or list + an extra value of another type: InvalidInputError,
  because replacing ``users: [...]`` with ``users: null`` would silently drop
  the user ceso needs to reach the guest.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import yaml

from ceso.cloudinit.sshkeys import parse_ssh_public_key
from ceso.cloudinit.validate import validate_package, validate_username
from ceso.errors import InvalidInputError

__all__ = [
    "CLOUD_CONFIG_HEADER",
    "DEFAULT_USER",
    "SUDO_RULE",
    "build_userdata",
    "dump_yaml",
    "merge_cloud_config",
    "parse_extra_userdata",
]

CLOUD_CONFIG_HEADER = "#cloud-config"
DEFAULT_USER = "ubuntu"
SUDO_RULE = "ALL=(ALL) NOPASSWD:ALL"
_KEYS = "ssh_authorized_keys"
# cloud-init also reads the hyphenated spelling, normalizing '-' to '_' in user entries, so
# a hyphenated key list would replace ceso's after normalization: treat both as one.
_KEY_SPELLINGS = (_KEYS, "ssh-authorized-keys")
# Other user-data formats cloud-init recognizes by their first line; merging into them is meaningless.
_OTHER_FORMATS = (
    "#!",
    "#include",
    "#cloud-boothook",
    "#part-handler",
    "#upstart-job",
    "#cloud-config-archive",
    "#cloud-config-jsonp",
    "## template:",
    "content-type:",
)
_WIDE = 1 << 16  # never fold long scalars: an SSH key stays on one line in the preview


#: libyaml's safe dumper when PyYAML has it: the same documents as the pure-Python one, in C.
_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def dump_yaml(document: Any) -> str:
    """Deterministic YAML: keys in insertion order, block style, long lines kept whole."""
    return yaml.dump(
        document, Dumper=_DUMPER, sort_keys=False, default_flow_style=False, allow_unicode=True, width=_WIDE
    )


def parse_extra_userdata(text: str) -> dict[str, Any]:
    """Parse operator-supplied cloud-config text into a mapping.

    The ``#cloud-config`` header is optional; an empty text gives ``{}``. Raises
    InvalidInputError when the text is another user-data format (script, include,
    MIME, jinja template), is not valid YAML, or is not a mapping with string keys.
    """
    first_line = text.lstrip().partition("\n")[0].strip().lower()
    if first_line.startswith(_OTHER_FORMATS):
        raise InvalidInputError(
            f"extra userdata starts with {first_line[:40]!r}: only #cloud-config YAML can be merged"
        )
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"extra userdata is not valid YAML: {exc}") from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise InvalidInputError(
            f"extra userdata must be a YAML mapping (cloud-config), got a {type(loaded).__name__}"
        )
    for key in loaded:
        if not isinstance(key, str):
            raise InvalidInputError(f"extra userdata key {key!r} must be a string")
    return loaded


def _check_keys(keys: object, where: str) -> list[str]:
    if not isinstance(keys, list):
        raise InvalidInputError(f"{where} must be a list of SSH public keys, got {type(keys).__name__}")
    return [parse_ssh_public_key(str(key), where).line for key in keys]


def _merge(base: Any, extra: Any, path: str) -> Any:
    if isinstance(base, dict):
        if not isinstance(extra, dict):
            raise InvalidInputError(
                f"extra userdata {path} must be a mapping to merge, got {type(extra).__name__}"
            )
        merged = dict(base)
        for key, value in extra.items():
            merged[key] = _merge(base[key], value, f"{path}.{key}") if key in base else value
        return merged
    if isinstance(base, list):
        if not isinstance(extra, list):
            raise InvalidInputError(
                f"extra userdata {path} must be a list to merge, got {type(extra).__name__}"
            )
        return base + extra
    return extra


def _merge_users(base: list[Any], extra: object, user: str) -> list[Any]:
    if not isinstance(extra, list):
        raise InvalidInputError(f"extra userdata users must be a list, got {type(extra).__name__}")
    own = dict(base[0])
    others: list[Any] = []
    for index, entry in enumerate(extra):
        where = f"extra userdata users[{index}]"
        if isinstance(entry, str):
            if entry != user:
                others.append(entry)
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise InvalidInputError(f"{where} must be a user name or a mapping with a 'name'")
        keys: list[str] = []
        for spelling in _KEY_SPELLINGS:
            if spelling in entry:
                keys += _check_keys(entry[spelling], f"{where}.{spelling}")
        if entry["name"] != user:
            others.append(entry)
            continue
        # Normalize like cloud-init does, so e.g. lock-passwd merges onto ceso's lock_passwd.
        rest = {key.replace("-", "_"): value for key, value in entry.items() if key not in _KEY_SPELLINGS}
        own = _merge(own, rest, where)
        existing: list[str] = list(own.get(_KEYS, []))
        added = [key for key in dict.fromkeys(keys) if key not in existing]
        if added:
            own[_KEYS] = existing + added
    return [own, *base[1:], *others]


def merge_cloud_config(base: dict[str, Any], extra: dict[str, Any], user: str) -> dict[str, Any]:
    """Merge ``extra`` into ``base`` per the module's merge rule; neither input is modified.

    ``base["users"][0]`` must be ceso's entry for ``user``. Raises InvalidInputError
    on a type clash with ceso's structure or an invalid SSH key in a ``users`` entry.
    """
    extra = copy.deepcopy(extra)
    merged = dict(base)
    for key, value in extra.items():
        if key == "users" and "users" in base:
            merged[key] = _merge_users(base["users"], value, user)
        elif key in base:
            merged[key] = _merge(base[key], value, key)
        else:
            merged[key] = value
    return merged


def build_userdata(
    user: str = DEFAULT_USER,
    ssh_keys: Sequence[str] = (),
    packages: Sequence[str] = (),
    extra: str | None = None,
) -> str:
    """Return the userdata text: ``#cloud-config`` then ceso's document merged with ``extra``.

    ceso's user gets passwordless sudo, /bin/bash and a locked password (key-only
    login). ``ssh_keys`` are literal key lines (resolve files with
    :func:`~ceso.cloudinit.sshkeys.read_ssh_keys` first). Raises InvalidInputError
    for a bad user name, key, package name or extra text.
    """
    validate_username(user)
    keys: list[str] = []
    for index, key in enumerate(ssh_keys):
        line = parse_ssh_public_key(key, f"ssh_keys[{index}]").line
        if line not in keys:
            keys.append(line)
    entry: dict[str, Any] = {"name": user, "sudo": SUDO_RULE, "shell": "/bin/bash", "lock_passwd": True}
    if keys:
        entry[_KEYS] = keys
    document: dict[str, Any] = {"users": [entry]}
    if packages:
        document["packages"] = [validate_package(name) for name in packages]
    if extra is not None:
        document = merge_cloud_config(document, parse_extra_userdata(extra), user)
    return f"{CLOUD_CONFIG_HEADER}\n{dump_yaml(document)}"
