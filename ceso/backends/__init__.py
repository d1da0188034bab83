"""How a job reaches its host: one protocol, two routes, and what both routes share.

* :mod:`ceso.backends.routes` — :class:`VmBackend`, which route a host takes, the backend a job gets;
* :mod:`ceso.backends.api` — the vSphere API route (pyVmomi, through :mod:`ceso.esxi`);
* :mod:`ceso.backends.ssh`, :mod:`ceso.backends.ssh_lifecycle` — the SSH route (through :mod:`ceso.ssh`);
* shared by both routes: :mod:`ceso.backends.faults` (vSphere fault names → CesoErrors) and
  :mod:`ceso.backends.vmomi` (pyVmomi's data objects, imported lazily).

Nothing is imported here, so importing one module does not load the others.
"""
