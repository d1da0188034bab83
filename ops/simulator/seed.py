"""Create VMs on a simulated ESXi host (for the quick start and benchmarks).

Usage: python ops/simulator/seed.py URL [--count N] [--prefix NAME] [--template NAME]

Each VM gets 2 vCPUs, 2 GiB, one thin 16 GiB disk and one vmxnet3 NIC on
"VM Network", like a small Ubuntu guest (tests/support/vms.py). Talks to the
simulator directly with pyVmomi (the simulator accepts any user and password).
"""

from __future__ import annotations

import argparse
import ssl
import sys
from pathlib import Path

from pyVim import connect

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.support.vms import create_vm, make_template


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument("--prefix", default="ubuntu")
    parser.add_argument("--user", default="root")
    parser.add_argument("--password", default="simulator")
    parser.add_argument(
        "--template", help="Also make a powered-off template VM of this name (tools 'installed')."
    )
    args = parser.parse_args()
    scheme, rest = args.url.split("://", 1)
    host, _, port = rest.split("/", 1)[0].rpartition(":")
    si = connect.SmartConnect(
        protocol=scheme,
        host=host,
        port=int(port),
        user=args.user,
        pwd=args.password,
        sslContext=ssl._create_unverified_context() if scheme == "https" else None,
    )
    for i in range(args.count):
        create_vm(si, f"{args.prefix}-{i:04d}" if args.count > 1 else args.prefix)
    if args.template:
        datastore = Path(
            si.RetrieveContent()
            .rootFolder.childEntity[0]
            .hostFolder.childEntity[0]
            .host[0]
            .datastore[0]
            .info.url
        )
        make_template(si, datastore, args.template, b"ubuntu golden image\n" * 4096)
    connect.Disconnect(si)
    print(f"created {args.count} VMs on {args.url}")


if __name__ == "__main__":
    main()
