"""Which of the addresses a guest reports are the ones to give back: the same rule on both routes.

VMware Tools report every address of every interface, and real guests list
the IPv6 link-local one (``fe80::…``) first; loopback addresses show up too.
Neither reaches the guest from outside, so :func:`usable_addresses` drops
link-local (``fe80::/10``, ``169.254.0.0/16``) and loopback (``127.0.0.0/8``,
``::1``) addresses and puts the addresses the job configured first, keeping
the guest's order otherwise. A value that is not an IP address is dropped.
"""

from __future__ import annotations

import ipaddress

__all__ = ["usable_addresses"]


def usable_addresses(reported: list[str], expected: list[str]) -> list[str]:
    """``reported`` without link-local, loopback and non-addresses; ``expected`` ones first, no repeats."""
    usable: list[str] = []
    for value in reported:
        try:
            address = ipaddress.ip_address(value.split("%", 1)[0].strip())
        except ValueError:
            continue
        if address.is_link_local or address.is_loopback or value in usable:
            continue
        usable.append(value)
    wanted = set(expected)
    return [a for a in usable if a in wanted] + [a for a in usable if a not in wanted]
