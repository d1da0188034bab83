"""Write a small OVA shaped like Ubuntu's cloud image OVA, for the quick start's `template import`.

Usage: python ops/simulator/make_ova.py PATH.ova [--size-mib N]

The disk is a few MiB of known bytes made stream-optimized by qemu-img (Debian's qemu-utils,
installed by ops/dev/setup.sh); the descriptor carries cloud-init's OVF properties, which the
import drops in favour of guestinfo.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.support.images import MIB, make_ova, make_raw


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--size-mib", type=int, default=8)
    args = parser.parse_args()
    name = args.path.name.removesuffix(".ova")
    with tempfile.TemporaryDirectory() as scratch:
        raw = make_raw(Path(scratch) / "disk.raw", args.size_mib * MIB)
        made = make_ova(Path(scratch), name, [raw])
        made.replace(args.path)
    print(f"wrote {args.path} ({args.path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
