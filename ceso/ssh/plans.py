"""What ``--dry-run`` shows for a create or clone on the SSH route (the commands it will run)."""

from __future__ import annotations

__all__ = ["SSH_CLONE_PLAN", "SSH_CREATE_PLAN"]

_COMMON = [
    "SFTP mkdir /vmfs/volumes/DS/NAME",
    "vmkfstools -i SRC DST -d thin for each source disk (the bytes stay on the host)",
    "SFTP upload of a complete NAME.vmx: new uuid.bios, new static MACs, guestinfo (cloud-init)",
    "vim-cmd solo/registervm /vmfs/volumes/DS/NAME/NAME.vmx NAME",
    "SFTP copy of the source's NAME.nvram over the new VM's (EFI sources: the boot entries)",
    "vmkfstools -X SIZE for the first disk (only with --disk)",
    'vim-cmd vmsvc/power.on VMID, answering "I copied it" if ESXi asks (unless --no-power-on)',
]

SSH_CREATE_PLAN = [
    "SSH route: the host's API cannot write (or route: ssh); every step runs in the ESXi shell",
    "lock the new VM name and a slot on the datastore",
    "vim-cmd vmsvc/getallvms; SFTP read of the template's .vmx and disk descriptors",
    *_COMMON,
]

SSH_CLONE_PLAN = [
    "SSH route: the host's API cannot write (or route: ssh); every step runs in the ESXi shell",
    "lock the new VM name, the source and a slot on the datastore",
    "vim-cmd vmsvc/getallvms; SFTP read of the source's .vmx and disk descriptors",
    "with --hot: vim-cmd vmsvc/snapshot.create of the source, removed afterwards",
    "with --shutdown-source: vim-cmd vmsvc/power.shutdown, powered back on afterwards",
    *_COMMON,
]
