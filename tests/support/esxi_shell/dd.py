"""``dd if=FILE bs=N skip=N`` in an emulated ESXi host's shell (busybox's): a datastore file from a block on.

ceso resumes a cut read with it (``ceso.ssh.commands.read_file_from``). Operands are busybox's
``key=value`` form; this emulator takes exactly ``if`` (one mapped datastore file), ``bs`` and ``skip``
(decimal numbers of bytes and blocks), and ``count``. Every other operand is refused, among them
``iflag=skip_bytes``, an optional busybox feature a host's build may lack, and ``of`` (the output is
standard output). An unknown operand gets busybox's answer: its usage on standard error, exit 1.
The bytes are the real file's: the process becomes ``/bin/dd`` on the mapped path.
"""

from __future__ import annotations

import os
import re
import sys

import emulator as emu

#: busybox dd's operands (its usage line); those outside TAKEN are real but not emulated.
BUSYBOX = {"if", "of", "ibs", "obs", "bs", "count", "skip", "seek", "conv", "iflag", "oflag", "status"}
TAKEN = {"if", "bs", "skip", "count"}
USAGE = (
    "BusyBox multi-call binary.\n\nUsage: dd [if=FILE] [of=FILE] [bs=N] [count=N] [skip=N] [seek=N]\n\n"
    "Copy a file with converting and formatting\n"
)


def main(argv: list[str]) -> None:
    emu.log_invocation("dd", argv)
    operands: dict[str, str] = {}
    for arg in argv:
        key, eq, value = arg.partition("=")
        if not eq or key not in BUSYBOX or key in operands:
            emu.die(USAGE)
        if key not in TAKEN:
            emu.die(f"dd: the emulator does not take {key}= (an ESXi host's busybox may not either)")
        operands[key] = value
    if "if" not in operands:
        emu.die("dd: the emulator reads a datastore file (if=FILE), not standard input")
    for key in ("bs", "skip", "count"):
        if key in operands and not re.fullmatch(r"[0-9]+", operands[key]):
            emu.die(f"dd: invalid number '{operands[key]}'")
    if operands.get("bs") == "0":
        emu.die("dd: invalid number '0'")
    emu.inject("dd disk" if operands["if"].endswith("-flat.vmdk") else "dd file")
    real = emu.host_path(operands["if"])
    if not real.is_file():
        emu.die(f"dd: can't open '{operands['if']}': No such file or directory")
    sys.stdout.flush()
    args = ["dd", f"if={real}", *(f"{k}={operands[k]}" for k in ("bs", "skip", "count") if k in operands)]
    os.execv("/bin/dd", args)


if __name__ == "__main__":
    main(sys.argv[1:])
