"""The one settings object: HEARTH_* variables and the TOML file read alike, and every setting, command
and exit status documented (a setting nobody can find is a setting nobody can use): settings in
docs/configuration.md, commands in the README's guide and in docs/cli.md, which is made from their
`--help` and must be current, and the README a guide of at most ~350 lines."""

from __future__ import annotations

from dataclasses import fields

import pytest

from conftest import ROOT
from ingest.settings import Settings, load_settings

README = (ROOT / "README.md").read_text()
CONFIGURATION = (ROOT / "docs" / "configuration.md").read_text()


@pytest.mark.parametrize("word, value", [("false", False), ("0", False), ("off", False), ("no", False),
                                         ("true", True), ("1", True), ("Yes", True), ("on", True)])
def test_a_yes_no_variable_means_what_it_says(home, monkeypatch, word, value):
    monkeypatch.setenv("HEARTH_VERIFY_CLAIMS", word)
    assert load_settings().verify_claims is value


def test_a_yes_no_setting_that_is_neither_is_refused(home, monkeypatch):
    monkeypatch.setenv("HEARTH_VERIFY_CLAIMS", "maybe")
    with pytest.raises(ValueError, match="not a yes/no value"):
        load_settings()
    (home / "config.toml").parent.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text("verify_claims = false\n")
    monkeypatch.delenv("HEARTH_VERIFY_CLAIMS")
    assert load_settings().verify_claims is False


def test_every_setting_is_documented():
    missing = [f.name for f in fields(Settings) if f"`HEARTH_{f.name.upper()}`" not in CONFIGURATION]
    assert missing == [], f"settings missing from docs/configuration.md: {missing}"


def test_every_command_is_in_the_guide_and_the_reference_is_current():
    from rag import cli_reference

    names = sorted({words[0] for words in cli_reference.commands()})
    missing = [n for n in names if f"hearth {n}" not in README]
    assert missing == [], f"commands the README's guide never names: {missing}"
    assert (ROOT / "docs" / "cli.md").read_text() == cli_reference.reference(), \
        "docs/cli.md is stale: run `make docs` (python -m rag.cli_reference > docs/cli.md)"


def test_the_readme_is_a_guide():
    """A user's guide: short, and no tracker history (figures and their history live in docs/)."""
    import re

    assert len(README.splitlines()) <= 360
    assert not re.search(r"(?i)\bissue \d+", README)


def test_every_error_has_its_exit_status_in_the_readme():
    """A front end catches HearthError and exits with its exit_code: each error named in the README's
    table of exit statuses, on the row of its own status."""
    from ingest import errors

    def every(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from every(sub)

    rows = {}
    for line in README.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 2 and cells[0].isdigit():
            rows[int(cells[0])] = cells[1]
    assert {0, 1, 2, 3, 4, 5} <= set(rows)
    bases = {errors.StoreError}  # never raised themselves
    missing = [f"{cls.__name__} ({cls.exit_code})" for cls in every(errors.HearthError)
               if cls not in bases and f"`{cls.__name__}`" not in rows.get(cls.exit_code, "")]
    assert missing == [], f"errors missing from README's exit statuses: {missing}"
