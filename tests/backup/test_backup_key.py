"""``backup key export/import/show-fingerprint``: the key file format, the safety rules around
replacing a key, operator-only access, audit without the key, and a restore after losing the key."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
import sqlalchemy as sa

from ceso.backup.crypto import key_id
from ceso.backup.keyfile import format_key_text, parse_key_text
from ceso.errors import InvalidInputError
from tests.backup.bed import BackupBed, payload
from tests.conftest import Cli, unique
from tests.security.helpers import add_agent, as_agent, audit_rows

KEY = bytes(range(32))


def _key_forms(key: bytes) -> list[str]:
    """Every spelling of a key that must never leave the secret store except in a key file."""
    return [base64.b64encode(key).decode(), key.hex(), base64.urlsafe_b64encode(key).decode().rstrip("=")]


# -- the text form ---------------------------------------------------------------------------------
def test_key_text_round_trips_and_names_the_key_id() -> None:
    text = format_key_text(KEY)
    assert f"key-id: {key_id(KEY)}\n" in text and text.startswith("# ceso backup encryption key")
    assert parse_key_text(text) == KEY
    assert parse_key_text(base64.b64encode(KEY).decode() + "\n") == KEY  # the secret store's form
    assert parse_key_text(text.replace("\n", "\r\n")) == KEY


def _edit(old: str, new: str) -> str:
    return format_key_text(KEY).replace(old, new)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("# only a comment\n", "empty"),
        ("not base64!\n", "not base64"),
        (base64.b64encode(KEY[:16]).decode(), "16 bytes, not 32"),
        (_edit("ceso-backup-key: 1", "ceso-backup-key: 2"), "unknown format version"),
        (_edit(f"key-id: {key_id(KEY)}", "key-id: 0000000000000000"), "does not match the key"),
        (_edit(base64.b64encode(KEY).decode(), base64.b64encode(KEY[::-1]).decode()), "does not match"),
        (_edit(f"key-id: {key_id(KEY)}\n", ""), "missing 'key-id:'"),
        (_edit("ceso-backup-key: 1\n", "ceso-backup-key: 1\nowner: me\n"), "line 6 is not one of"),
        (_edit("ceso-backup-key: 1\n", "ceso-backup-key: 1\nceso-backup-key: 1\n"), "repeats"),
        ("x" * (65 << 10), "more than"),
    ],
)
def test_malformed_key_text_is_refused_without_quoting_it(text: str, reason: str) -> None:
    with pytest.raises(InvalidInputError) as exc:
        parse_key_text(text)
    assert exc.value.code == "backup_key_invalid" and exc.value.exit_code == 2
    assert reason in exc.value.message
    for form in _key_forms(KEY) + _key_forms(KEY[::-1]):
        assert form not in exc.value.message


# -- export, import, fingerprint through the CLI (both databases) ------------------------------------
def _stored_key_id(cli: Cli) -> str:
    result = cli("--json", "backup", "key", "show-fingerprint")
    assert result.exit_code == 0, result.stdout + result.stderr
    return str(result.json()["key_id"])


def _make_key(cli: Cli) -> str:
    from ceso.backup.keys import ensure_key
    from ceso.runtime import get_runtime

    return ensure_key(get_runtime().secrets)


def _stored_key() -> bytes:
    from ceso.backup.keys import load_key
    from ceso.runtime import get_runtime

    return load_key(get_runtime().secrets)


def test_export_writes_a_new_private_file_and_never_overwrites(cli: Cli, tmp_path: Path) -> None:
    missing = cli("--json", "backup", "key", "show-fingerprint")
    assert missing.exit_code == 4 and missing.json()["error"]["code"] == "backup_key_missing"
    ident = _make_key(cli)
    assert _stored_key_id(cli) == ident
    out = tmp_path / "backup.key"
    old_umask = os.umask(0)  # even a permissive umask must not widen the file's mode
    try:
        result = cli("--json", "backup", "key", "export", "--output", str(out))
    finally:
        os.umask(old_umask)
    assert result.exit_code == 0, result.stderr
    assert result.json() == {"key_id": ident, "output": str(out)}
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert parse_key_text(out.read_text()) == _stored_key()

    out.write_text("precious")
    again = cli("--json", "backup", "key", "export", "--output", str(out))
    assert again.exit_code == 5 and "never overwritten" in again.json()["error"]["message"]
    assert out.read_text() == "precious"

    dry = cli("--json", "--dry-run", "backup", "key", "export", "--output", str(tmp_path / "dry.key"))
    assert dry.exit_code == 0 and dry.json()["dry_run"] is True and not (tmp_path / "dry.key").exists()


def test_export_to_stdout_only_when_asked_with_a_warning(cli: Cli) -> None:
    _make_key(cli)
    assert cli("backup", "key", "export").exit_code == 2  # no --output: a usage error, nothing printed
    result = cli("--json", "backup", "key", "export", "--output", "-")
    assert result.exit_code == 0
    assert parse_key_text(result.stdout) == _stored_key()
    assert "warning" in result.stderr and "key-id" not in result.stderr


def test_import_refuses_malformed_and_different_keys_and_changes_nothing(cli: Cli, tmp_path: Path) -> None:
    ident = _make_key(cli)
    before = _stored_key()
    bad = tmp_path / "bad.key"
    bad.write_text(format_key_text(KEY).replace(f"key-id: {key_id(KEY)}", "key-id: 0123456789abcdef"))
    result = cli("--json", "backup", "key", "import", "--input", str(bad))
    assert result.exit_code == 2 and result.json()["error"]["code"] == "backup_key_invalid"
    garbage = cli("--json", "backup", "key", "import", input="not a key\n")  # standard input by default
    assert garbage.exit_code == 2
    assert _stored_key() == before

    other = tmp_path / "other.key"
    other.write_text(format_key_text(KEY))
    refused = cli("--json", "backup", "key", "import", "--input", str(other))
    assert refused.exit_code == 5 and refused.json()["error"]["code"] == "backup_key_conflict"
    assert ident in refused.json()["error"]["message"]
    dry = cli("--json", "--dry-run", "backup", "key", "import", "--input", str(other), "--force")
    assert dry.exit_code == 0 and dry.json()["replaced"] is True
    assert _stored_key() == before

    forced = cli("--json", "backup", "key", "import", "--input", str(other), "--force")
    assert forced.exit_code == 0, forced.stderr
    assert forced.json()["previous_key_id"] == ident and forced.json()["key_id"] == key_id(KEY)
    assert "warning: replaced backup key" in forced.stderr and ident in forced.stderr
    assert _stored_key() == KEY
    same = cli("--json", "backup", "key", "import", "--input", str(other))
    assert same.exit_code == 0 and same.json()["unchanged"] is True


def test_agents_may_not_export_or_import_the_key_in_any_mode(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ceso_env: dict[str, str]
) -> None:
    _make_key(cli)
    token = add_agent(cli, unique("admin-bot"), "admin")
    out = tmp_path / "stolen.key"
    result = as_agent(cli, monkeypatch, token, "--json", "backup", "key", "export", "--output", str(out))
    assert result.exit_code == 3 and "only the local operator" in result.json()["error"]["message"]
    assert not out.exists()
    result = as_agent(cli, monkeypatch, token, "--json", "backup", "key", "export", "--output", "-")
    assert result.exit_code == 3 and "key:" not in result.stdout
    key_file = tmp_path / "k"
    key_file.write_text(format_key_text(KEY))
    result = as_agent(cli, monkeypatch, token, "backup", "key", "import", "--input", str(key_file), "--force")
    assert result.exit_code == 3 and _stored_key() != KEY
    fingerprint = as_agent(cli, monkeypatch, token, "--json", "backup", "key", "show-fingerprint")
    assert fingerprint.exit_code == 0  # the id is public
    refused = audit_rows(ceso_env["CESO_DATABASE_URL"], "outcome = 'refused'")
    assert {r["operation"] for r in refused} >= {"backup.key.export", "backup.key.import"}


def test_key_operations_are_audited_without_the_key(
    cli: Cli, tmp_path: Path, ceso_env: dict[str, str]
) -> None:
    _make_key(cli)
    stored = _stored_key()
    assert cli("backup", "key", "export", "--output", str(tmp_path / "a.key")).exit_code == 0
    assert cli("backup", "key", "export", "--output", "-").exit_code == 0
    assert cli("backup", "key", "export", "--output", str(tmp_path / "a.key")).exit_code == 5
    other = tmp_path / "other.key"
    other.write_text(format_key_text(KEY))
    assert cli("backup", "key", "import", "--input", str(other)).exit_code == 5
    assert cli("backup", "key", "import", "--input", str(other), "--force").exit_code == 0
    assert cli("backup", "key", "import", input="garbage\n").exit_code == 2

    url = ceso_env["CESO_DATABASE_URL"]
    rows = audit_rows(url, "operation LIKE 'backup.key.%'")
    seen = [(r["operation"], r["outcome"]) for r in rows]
    assert seen == [
        ("backup.key.export", "ok"),
        ("backup.key.export", "ok"),
        ("backup.key.export", "failed"),
        ("backup.key.import", "failed"),
        ("backup.key.import", "ok"),
        ("backup.key.import", "failed"),
    ]
    assert rows[0]["details"]["key_id"] == key_id(stored) and rows[1]["details"]["destination"] == "stdout"
    assert rows[4]["details"]["previous_key_id"] == key_id(stored) and rows[4]["details"]["replaced"]
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        dump = "\n".join(str(tuple(r)) for r in conn.execute(sa.text("SELECT * FROM audit_records")))
    engine.dispose()
    for form in _key_forms(stored) + _key_forms(KEY):
        assert form not in dump


# -- losing the machine: export, wipe, import, restore ------------------------------------------------
def test_encrypted_backup_restores_after_the_key_is_exported_lost_and_imported(
    backup_bed: BackupBed, tmp_path: Path
) -> None:
    from ceso.backup.keys import ENCRYPTION_KEY_NAME
    from ceso.runtime import get_runtime

    bed = backup_bed
    data = payload(1 << 20)
    source = bed.make_vm(data)
    job = bed.run("backup", "create", source, "--target", bed.target, "--encrypt", "--timeout", "120")
    assert job["state"] == "succeeded", job
    backup_id = job["result"]["backup_id"]
    (entry,) = bed.run("backup", "list", "--vm", source)
    fingerprint = bed.run("backup", "key", "show-fingerprint")
    assert entry["key_id"] == fingerprint["key_id"] and fingerprint["backups_with_this_key"] == 1
    key_file = tmp_path / "offsite" / "ceso-backup.key"
    key_file.parent.mkdir()
    bed.run("backup", "key", "export", "--output", str(key_file))

    get_runtime().secrets.delete(ENCRYPTION_KEY_NAME)  # the machine holding the key is gone
    lost = bed.cli("--json", "backup", "verify", backup_id)
    assert lost.exit_code == 4 and lost.json()["error"]["code"] == "backup_key_missing"
    assert bed.run("backup", "list", "--vm", source)[0]["status"] == "completed"  # not marked damaged

    imported = bed.run("backup", "key", "import", "--input", str(key_file))
    assert imported["key_id"] == entry["key_id"] and imported["replaced"] is False
    assert imported["backups_with_this_key"] == 1
    assert bed.run("backup", "verify", backup_id)["status"] == "verified"
    name = unique("rekeyed")
    restored = bed.run("backup", "restore", backup_id, "--as", name, "--no-power-on", "--timeout", "120")
    assert restored["state"] == "succeeded", restored
    assert (bed.datastore_dir / name / f"{source}-flat.vmdk").read_bytes() == data
