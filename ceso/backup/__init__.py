"""Backups: streamed, compressed, checksummed, optionally encrypted copies of VMs.

Layers, from bytes up:

* :mod:`ceso.backup.codec` and :mod:`ceso.backup.crypto`: compression and chunked AES-256-GCM;
* :mod:`ceso.backup.datastore_http`: datastore files over the host's ``/folder`` HTTP(S) service;
* :mod:`ceso.backup.pipeline`: one file from a source to a target (hashes, sizes, progress) and back;
* :mod:`ceso.backup.targets`: where backup sets are stored (local, SFTP, S3, a datastore);
* :mod:`ceso.backup.manifest` and :mod:`ceso.backup.catalog`: what a set holds, on the target and in SQL;
* :mod:`ceso.backup.create`, :mod:`ceso.backup.restore`, :mod:`ceso.backup.verify`,
  :mod:`ceso.backup.prune`: the operations; :mod:`ceso.backup.synthetic`: prune's merge of a
  chain into a synthetic full.
* :mod:`ceso.backup.tags` and :mod:`ceso.backup.policy`: ceso's VM tags and which retention
  policy applies to a VM;
* :mod:`ceso.backup.keyfile` and :mod:`ceso.backup.key_transfer`: exporting and importing the
  encryption key.

Nothing here logs or stores an encryption key or a target credential.
"""
