"""Where convintel finds its own files, installed or in a source checkout.

- The model bundles it ships: the top-level `models/` folder of the checkout, which the
  wheel carries as `nlp/bundled_models/` (pyproject.toml maps it there).
- The project's `data/` folder (labelled examples for training, evaluation, benchmarks
  and tests): only in a source checkout. The wheel does not carry it, so code that needs
  it fails with `ProjectDataUnavailable` when convintel runs installed, instead of
  reading from (or writing into) site-packages.

State and caches are never looked up here: their settings default to paths relative to
the working directory (service/settings.py)."""

from __future__ import annotations

from pathlib import Path

BUNDLED_MODELS = "bundled_models"
"""The shipped bundles' folder inside the installed `nlp` package."""


class ProjectDataUnavailable(FileNotFoundError):
    """The project's `data/` folder is needed but convintel runs from an installed package."""


def source_root() -> Path | None:
    """The root of the source checkout this code runs from (where pyproject.toml sits
    beside the packages), or None when it runs from an installed package."""
    root = Path(__file__).resolve().parents[1]
    if (root / "pyproject.toml").is_file() and (root / "nlp").is_dir() and (root / "service").is_dir():
        return root
    return None


def shipped_models_dir() -> Path | None:
    """The folder of model bundles shipped with convintel: inside the installed package, or
    the checkout's `models/`; None when neither exists (a wheel built without bundles)."""
    installed = Path(__file__).resolve().with_name(BUNDLED_MODELS)
    if installed.is_dir():
        return installed
    root = source_root()
    if root is not None and (root / "models").is_dir():
        return root / "models"
    return None


def project_data_path(*parts: str) -> Path:
    """A path under the checkout's `data/` folder (it may not exist). Raises
    ProjectDataUnavailable, naming what was wanted, when there is no checkout."""
    root = source_root()
    relative = Path("data", *parts)
    if root is None:
        raise ProjectDataUnavailable(
            f"{relative.as_posix()} is part of convintel's source checkout, not of the installed package: "
            "run from a checkout, or pass the file explicitly"
        )
    return root / relative
