"""Human output of job results: no Python reprs (lists joined, mappings indented)."""

from __future__ import annotations

from ceso.cli.render import mapping_lines


def test_lists_and_mappings_read_as_text() -> None:
    result = {
        "vm": "web-01",
        "macs": ["00:50:56:00:00:01", "00:50:56:00:00:02"],
        "powered_on": True,
        "disks": [{"path": "[ds] web-01/web-01.vmdk", "bytes": 12}],
        "network": {"ip": "192.0.2.10/24", "dns": []},
        "note": None,
    }
    text = "\n".join(mapping_lines(result))
    assert text == (
        "  vm: web-01\n"
        "  macs: 00:50:56:00:00:01, 00:50:56:00:00:02\n"
        "  powered_on: yes\n"
        "  disks:\n"
        "    - path: [ds] web-01/web-01.vmdk\n"
        "      bytes: 12\n"
        "  network:\n"
        "    ip: 192.0.2.10/24\n"
        "    dns: -\n"
        "  note: -"
    )
    assert "['" not in text and "{'" not in text
