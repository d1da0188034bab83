"""pyVmomi, imported lazily and typed as dynamic.

pyVmomi's generated types describe the wire schema, not its Python call
signatures, so strict mypy would flag every spec constructor; ceso treats the
library as ``Any`` here and types its own results instead.
"""

from __future__ import annotations

from typing import Any

__all__ = ["pyvim_connect", "vim", "vmodl"]


def vim() -> Any:
    from pyVmomi import vim as _vim

    return _vim


def vmodl() -> Any:
    from pyVmomi import vmodl as _vmodl

    return _vmodl


def pyvim_connect() -> Any:
    from pyVim import connect

    return connect
