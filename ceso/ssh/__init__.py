"""The SSH route: ESXi's shell (vim-cmd, vmkfstools, esxcli) and SFTP over paramiko.

Used where a host's vSphere API cannot write (a free license) or when the
host's route is forced to ``ssh``; see docs/ssh-route.md. Modules:

* :mod:`ceso.ssh.client` — one pinned, kept-alive connection per host (``SshClient``),
  :mod:`ceso.ssh.pool` — the process's pool, :mod:`ceso.ssh.target` — logins from host rows;
* :mod:`ceso.ssh.keys` — host-key fingerprints and pinning, private keys;
* :mod:`ceso.ssh.faults` — paramiko/socket exceptions → ceso's error tree;
* :mod:`ceso.ssh.commands` — quoted command builders; :mod:`ceso.ssh.parsers` — their output;
* :mod:`ceso.ssh.files` — SFTP; :mod:`ceso.ssh.vmx`, :mod:`ceso.ssh.vmxspec` — the .vmx;
* the VM operations over this package (``SshVmBackend``) are in :mod:`ceso.backends.ssh`, on the
  handles of :mod:`ceso.ssh.handles` (``SshVm``, ``SshSnapshot``).

Nothing is imported here, so importing a light module (``ceso.ssh.target``)
does not load paramiko.
"""
