"""docs/configuration.md's settings table is the one generated from `Settings`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from service.settings import Settings
from service.settings_docs import (
    CONFIGURATION_DOC,
    END_MARKER,
    START_MARKER,
    documented_table,
    env_var,
    main,
    settings_table,
    write_table,
)

ROOT = Path(__file__).resolve().parents[2]

# Environment variables the docs may name that are not `Settings` fields:
# CONVINTEL_DATA_ROOT is an option of `convintel train` / `convintel evaluate`; the
# CONVINTEL_TEST_* ones are the test suite's (tests/conftest.py, tests/postgres_server.py).
NOT_SETTINGS = {"CONVINTEL_DATA_ROOT", "CONVINTEL_TEST_DATABASE", "CONVINTEL_TEST_PG_BIN"}


def test_configuration_doc_table_is_the_generated_one() -> None:
    assert documented_table() == settings_table(), (
        f"the settings table in {CONFIGURATION_DOC.relative_to(ROOT)} differs from service.settings.Settings: "
        "run `make docs` and commit the result"
    )


def test_every_setting_is_documented() -> None:
    text = CONFIGURATION_DOC.read_text(encoding="utf-8")
    missing = [env_var(name) for name in Settings.model_fields if f"`{env_var(name)}`" not in text]
    assert not missing, f"not in {CONFIGURATION_DOC.relative_to(ROOT)}: {missing}; run `make docs`"


def test_docs_name_only_real_settings() -> None:
    """A variable the README or docs mention must exist: catches a renamed or removed setting."""
    known = {env_var(name) for name in Settings.model_fields} | NOT_SETTINGS
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    unknown = {
        f"{page.relative_to(ROOT)}: {name}"
        for page in pages
        # A name, or a group of them written as a prefix with `*` (`CONVINTEL_RAY_*`).
        for name in re.findall(r"\bCONVINTEL_[A-Z0-9_]*[A-Z0-9](?:_\*)?", page.read_text(encoding="utf-8"))
        if not (any(k.startswith(name[:-1]) for k in known) if name.endswith("*") else name in known)
    }
    assert not unknown, sorted(unknown)


def test_table_has_one_row_per_field_in_declaration_order() -> None:
    rows = [line for line in settings_table().splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == [env_var(name) for name in Settings.model_fields]


def test_defaults_do_not_depend_on_the_machine() -> None:
    table = settings_table()
    assert str(ROOT) not in table  # paths under the project are shown relative to it
    assert "| `CONVINTEL_TORCH_THREADS` | int (≥ 1) | number of CPUs |" in table
    assert "| `CONVINTEL_API_KEYS` | secret, optional | unset |" in table
    assert "| `CONVINTEL_DB_PATH` | path | `var/conversations.sqlite3` |" in table


def test_write_replaces_only_the_marked_part(tmp_path: Path) -> None:
    doc = tmp_path / "configuration.md"
    doc.write_text(f"# Configuration\n\nbefore\n{START_MARKER}\nstale\n{END_MARKER}\nafter\n", encoding="utf-8")
    assert write_table(doc) is True
    text = doc.read_text(encoding="utf-8")
    assert text == f"# Configuration\n\nbefore\n{START_MARKER}\n{settings_table()}{END_MARKER}\nafter\n"
    assert write_table(doc) is False  # idempotent
    assert main(["--check", "--path", str(doc)]) == 0


def test_check_fails_on_a_stale_table_and_missing_markers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = tmp_path / "configuration.md"
    doc.write_text(f"{START_MARKER}\n| old |\n{END_MARKER}\n", encoding="utf-8")
    assert main(["--check", "--path", str(doc)]) == 1
    assert "make docs" in capsys.readouterr().err
    doc.write_text("no markers\n", encoding="utf-8")
    assert main(["--write", "--path", str(doc)]) == 2
    assert "settings-table:start" in capsys.readouterr().err
