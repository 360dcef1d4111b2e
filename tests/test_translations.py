"""Every person-facing text exists in Dutch, and the compiled catalogues match their sources."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import polib
import pytest

BASE_DIR = Path(__file__).resolve().parent.parent
CATALOGUES = sorted(p for p in BASE_DIR.glob("*/locale/nl/LC_MESSAGES/django.po") if ".venv" not in p.parts)


def test_there_are_dutch_catalogues_for_every_app():
    apps = {p.parts[len(BASE_DIR.parts)] for p in CATALOGUES}
    assert {"preferences", "messaging", "cadence"} <= apps


@pytest.mark.parametrize("po_path", CATALOGUES, ids=lambda p: p.parts[-5])
def test_every_text_is_translated_and_none_is_fuzzy(po_path):
    catalogue = polib.pofile(str(po_path))
    assert catalogue.untranslated_entries() == []
    assert [e.msgid for e in catalogue.fuzzy_entries()] == []


@pytest.mark.parametrize("po_path", CATALOGUES, ids=lambda p: p.parts[-5])
def test_the_compiled_catalogue_matches_its_source(po_path):
    source = {
        (e.msgctxt, e.msgid): (e.msgstr, tuple(sorted(e.msgstr_plural.items())))
        for e in polib.pofile(str(po_path))
        if not e.obsolete
    }
    compiled = {
        (e.msgctxt, e.msgid): (e.msgstr, tuple(sorted(e.msgstr_plural.items())))
        for e in polib.mofile(str(po_path.with_suffix(".mo")))
    }
    compiled.pop((None, ""), None)
    assert compiled == source, "run `make messages` and commit the .mo files"


@pytest.mark.skipif(shutil.which("xgettext") is None, reason="GNU gettext is not installed")
@pytest.mark.parametrize("po_path", CATALOGUES, ids=lambda p: p.parts[-5])
def test_no_text_in_the_code_is_missing_from_the_catalogue(po_path, tmp_path):
    app = po_path.parts[len(BASE_DIR.parts)]
    copy = tmp_path / app
    shutil.copytree(BASE_DIR / app, copy, ignore=shutil.ignore_patterns("__pycache__", "*.mo"))
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"}
    command = [sys.executable, str(BASE_DIR / "manage.py"), "makemessages", "-l", "nl", "-v", "0"]
    subprocess.run(command, cwd=copy, env=env, check=True)
    fresh = {e.msgid for e in polib.pofile(str(copy / "locale/nl/LC_MESSAGES/django.po"))}
    committed = {e.msgid for e in polib.pofile(str(po_path)) if not e.obsolete}
    assert sorted(fresh - committed) == [], "run `make messages` and translate the new texts"
