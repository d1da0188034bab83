"""Images brought onto a host: OVA/OVF packages and VMDK disks (``ceso template import``).

:mod:`ceso.images.ovf` reads an OVF descriptor and refuses what ceso cannot import;
:mod:`ceso.images.vmdk` reads a stream-optimized VMDK as it streams by;
:mod:`ceso.images.source` opens a local file or an ``https://`` URL as a stream;
:mod:`ceso.images.package` walks an OVA, an OVF with its disks, or a lone VMDK, checking digests.
The job itself is :mod:`ceso.operations.template_import`.
"""
