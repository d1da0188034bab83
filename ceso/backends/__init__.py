"""How a job reaches its host: one protocol, two routes, and what both routes share.

* :mod:`ceso.backends.protocol` — :class:`VmBackend`, the VM operations every route offers;
* :mod:`ceso.backends.routes` — which route a host takes and the backend a job gets
  (``ctx.backend()``);
* :mod:`ceso.backends.api` — the vSphere API route (pyVmomi, through :mod:`ceso.esxi`);
* :mod:`ceso.backends.ssh`, :mod:`ceso.backends.ssh_lifecycle` — the SSH route (through
  :mod:`ceso.ssh`; it imports nothing from :mod:`ceso.esxi`);
* :mod:`ceso.backends.fake` — an in-memory backend for unit tests of step logic;
* shared by every route: :mod:`ceso.backends.guest` (waiting for a power state or a guest
  address, guest shutdown), :mod:`ceso.backends.paths` (datastore paths, MACs, the one VM of a
  name), :mod:`ceso.backends.faults` (vSphere fault names → CesoErrors) and
  :mod:`ceso.backends.vmomi` (pyVmomi's data objects, imported lazily).

Nothing is imported here, so importing one module does not load the others.
"""
