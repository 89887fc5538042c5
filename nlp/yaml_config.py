"""Reading a YAML configuration file into a strict pydantic model, with errors that name
the file and the bad key's path (`rules.3.when.urgncy_at_least`). The escalation policy
and the tag categories both load through here."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from nlp.errors import describe_validation_error

ModelT = TypeVar("ModelT", bound=BaseModel)


class StrictModel(BaseModel):
    """A configuration section: unknown keys are errors, so a typo never goes unnoticed."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def check_unique(names: list[str], what: str) -> None:
    """ValueError naming the repeated entries when `names` holds one twice."""
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"{what} names must be unique; repeated: {repeated}")


class ConfigFileError(ValueError):
    """A configuration file (policy, categories) is missing, not YAML, or does not validate."""


def read_validated(path: Path, model: type[ModelT], kind: str, error: type[ConfigFileError]) -> ModelT:
    """`model` validated from the YAML mapping in `path`; any problem raises `error` with
    one line naming `kind`, the file and every bad key."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise error(f"{kind} {path}: cannot read it ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise error(f"{kind} {path}: not UTF-8 text") from None
    except yaml.YAMLError as exc:
        raise error(f"{kind} {path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise error(f"{kind} {path}: expected a mapping at the top level")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise error(f"{kind} {path}: {describe_validation_error(exc, limit=None, root='(top level)')}") from None
