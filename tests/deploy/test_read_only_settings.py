"""Settings make no folder at import, so the image runs on a read-only root filesystem."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent.parent

PROBE = """
import json, os, pathlib
made = []
pathlib.Path.mkdir = lambda self, *a, **k: made.append(str(self))
os.makedirs = lambda name, *a, **k: made.append(str(name))
os.mkdir = lambda name, *a, **k: made.append(str(name))
import django
django.setup()
from django.conf import settings
settings.STORAGES, settings.LOGGING
print(json.dumps(made))
"""


def test_importing_the_settings_and_setting_up_django_makes_no_folder():
    env = {"DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "false", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_without_debug_static_files_are_served_hashed_and_compressed(settings):
    import importlib

    import config.settings as module

    assert not module.DEBUG or module.STORAGES["staticfiles"]["BACKEND"].endswith("StaticFilesStorage")
    if not module.DEBUG:
        assert module.STORAGES["staticfiles"]["BACKEND"] == "whitenoise.storage.CompressedManifestStaticFilesStorage"
        assert module.WHITENOISE_USE_FINDERS is False
    assert importlib.import_module("whitenoise.storage")
