"""guestinfo value encoding: gzip+base64 out, gzip+base64 / base64 / plain back in.

cloud-init's VMware datasource reads ``guestinfo.<doc>`` and decodes it per
``guestinfo.<doc>.encoding``: ``gzip+base64`` (or ``gz+b64``), ``base64`` (or
``b64``), anything else as plain text. One guestinfo value holds at most 64 KiB,
so the size is checked on the encoded text — what the VMX actually stores.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import zlib
from collections.abc import Mapping

from ceso.errors import InvalidInputError

__all__ = [
    "DOCUMENTS",
    "ENCODING",
    "GUESTINFO_MAX_BYTES",
    "decode_guestinfo",
    "decode_value",
    "encode_document",
    "guestinfo_key",
]

#: The encoding ceso writes: the smallest, and understood by every cloud-init with the datasource.
ENCODING = "gzip+base64"
#: Largest guestinfo value, in bytes of the encoded text.
GUESTINFO_MAX_BYTES = 65536
#: The documents the datasource reads, in the order ceso writes them.
DOCUMENTS = ("metadata", "userdata", "vendordata")

_GZIP_NAMES = {"gzip+base64", "gz+b64"}
_BASE64_NAMES = {"base64", "b64"}
_MAX_DECODED = 16 * 1024 * 1024  # a decode bomb guard; real documents are a few KiB


def guestinfo_key(document: str) -> str:
    """``"metadata"`` -> ``"guestinfo.metadata"``."""
    return f"guestinfo.{document}"


def encode_document(document: str, text: str) -> str:
    """Return ``text`` as gzip+base64, refusing a result over 64 KiB.

    The gzip header carries mtime 0 so the same text always encodes to the same
    value (stable audit records and idempotent reconfigure). Raises
    InvalidInputError naming ``guestinfo.<document>`` and both sizes when the
    encoded value exceeds :data:`GUESTINFO_MAX_BYTES`.
    """
    raw = text.encode("utf-8")
    encoded = base64.b64encode(gzip.compress(raw, compresslevel=9, mtime=0)).decode("ascii")
    if len(encoded) > GUESTINFO_MAX_BYTES:
        raise InvalidInputError(
            f"{guestinfo_key(document)} is {len(encoded)} bytes after {ENCODING} ({len(raw)} bytes before); "
            f"a guestinfo value holds at most {GUESTINFO_MAX_BYTES} bytes",
            details={"document": document, "encoded_bytes": len(encoded), "raw_bytes": len(raw)},
        )
    return encoded


def decode_value(key: str, value: str, encoding: str | None) -> str:
    """Decode one guestinfo value the way cloud-init does; raise InvalidInputError if it cannot.

    A missing or blank ``encoding`` means plain text. Unlike cloud-init, which
    falls back to plain text, an unknown encoding name is refused: in a preview
    it is always a mistake worth showing.
    """
    name = (encoding or "").strip().lower()
    try:
        if name in _GZIP_NAMES:
            decompressor = zlib.decompressobj(wbits=31)  # 31: gzip framing
            data = decompressor.decompress(base64.b64decode(value, validate=True), _MAX_DECODED)
            if decompressor.unconsumed_tail:
                raise InvalidInputError(f"{key} decodes to more than {_MAX_DECODED} bytes")
            if not decompressor.eof:
                raise InvalidInputError(f"{key} is not a complete gzip stream")
        elif name in _BASE64_NAMES:
            data = base64.b64decode(value, validate=True)
        elif not name:
            return value
        else:
            raise InvalidInputError(
                f"{key}.encoding {encoding!r} is unknown (expected gzip+base64 or base64)"
            )
        return data.decode("utf-8")
    except (binascii.Error, zlib.error, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"{key} is not valid {name} data: {exc}") from exc


def decode_guestinfo(extra_config: Mapping[str, str]) -> dict[str, str]:
    """Return the decoded texts of the documents present in ``extra_config``.

    Keys of the result are ``metadata``, ``userdata``, ``vendordata`` (only those
    present with a non-blank value, in that order). Other extraConfig keys are
    ignored, so a VM's whole extraConfig may be passed. Raises InvalidInputError
    when a value does not decode.
    """
    documents: dict[str, str] = {}
    for document in DOCUMENTS:
        key = guestinfo_key(document)
        value = extra_config.get(key)
        if value is None or not value.strip():
            continue
        documents[document] = decode_value(key, value, extra_config.get(f"{key}.encoding"))
    return documents
