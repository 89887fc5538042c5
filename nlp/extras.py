"""Optional dependencies, grouped in pyproject.toml's extras by use: `train` (LoRA
fine-tuning, the VADER baseline), `onnx` (the ONNX encoder backends), `ray` (`convintel
score --engine ray`), `topics-umap` (UMAP reduction) and `bench`. The service's core
install has none of them; code that needs one imports it through `require`, so a missing
extra is one clear line naming the pip command, not a traceback."""

from __future__ import annotations

import importlib
from types import ModuleType


class MissingExtra(ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


def install_hint(extra: str) -> str:
    """The command that installs `extra`."""
    return f"pip install 'convintel[{extra}]'"


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import `module`, or raise MissingExtra saying that `purpose` needs `extra`."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtra(
            f"{purpose} needs {module.split('.')[0]} (the {extra!r} extra): {install_hint(extra)}"
        ) from exc
