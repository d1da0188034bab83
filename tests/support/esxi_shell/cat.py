"""``cat FILE`` in an emulated ESXi host's shell (busybox's): a datastore file to standard output.

Only one file under ``/vmfs/volumes/<datastore>/`` is mapped (like every emulator here);
anything else is refused. The bytes are the real file's: the process becomes
``/bin/cat`` on the mapped path, so the stream is as fast as the host's own.
"""

from __future__ import annotations

import os
import sys

import emulator as emu


def main(argv: list[str]) -> None:
    emu.log_invocation("cat", argv)
    if len(argv) != 1 or argv[0].startswith("-"):
        emu.die("cat: the emulator reads exactly one datastore file")
    # A hang on "cat disk" stalls reads of disk data only (a slow datastore), not of .vmx or descriptors.
    emu.inject("cat disk" if argv[0].endswith("-flat.vmdk") else "cat file")
    real = emu.host_path(argv[0])
    if not real.is_file():
        emu.die(f"cat: can't open '{argv[0]}': No such file or directory")
    sys.stdout.flush()
    os.execv("/bin/cat", ["cat", str(real)])


if __name__ == "__main__":
    main(sys.argv[1:])
