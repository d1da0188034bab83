"""Load a script of the repository (a generator under ops/) as a module, without running its main."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType


def load_script(path: Path, prefix: str = "ceso_script") -> ModuleType:
    """The module of the Python file ``path``, named ``<prefix>_<stem>``."""
    spec = importlib.util.spec_from_file_location(f"{prefix}_{path.stem}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
