"""Every environment variable config/settings.py reads is in docs/configuration.md and in .env.example."""

from __future__ import annotations

import re
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
READS = [
    # env("X"), env.str("X"), env.int/.bool/.float/.list/.json/.db_url("X", ...)
    re.compile(r"""\benv(?:\.[a-z_]+)?\(\s*["']([A-Z][A-Z0-9_]*)["']"""),
    # os.environ["X"], os.environ.get("X"), os.getenv("X")
    re.compile(r"""\bos\.(?:environ(?:\.get)?|getenv)\s*[\[(]\s*["']([A-Z][A-Z0-9_]*)["']"""),
    # "X" in env.ENVIRON / os.environ
    re.compile(r"""["']([A-Z][A-Z0-9_]*)["']\s+(?:not\s+)?in\s+(?:env\.ENVIRON|os\.environ)"""),
]


def variables_read(source: str) -> set[str]:
    """Return the names of the environment variables `source` (a settings module) reads."""
    return {name for pattern in READS for name in pattern.findall(source)}


def test_the_parser_finds_each_form_of_read():
    source = """
DEBUG = env.bool("DEBUG", default=False)
A = env("PLAIN")
B = env.db_url("DATABASE_URL", default="sqlite://")
C = os.environ.get("FROM_OS", "")
D = os.environ["INDEXED"]
if "EMAIL_BACKEND" in env.ENVIRON: pass
E = env.json( 'SPACED' , default={})
"""
    assert variables_read(source) == {"DEBUG", "PLAIN", "DATABASE_URL", "FROM_OS", "INDEXED", "EMAIL_BACKEND", "SPACED"}


def test_every_variable_settings_read_is_in_the_configuration_reference():
    read = variables_read((BASE_DIR / "config" / "settings.py").read_text())
    reference = (BASE_DIR / "docs" / "configuration.md").read_text()
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]*)`", reference))

    assert len(read) > 50, "the parser found too few reads: has settings.py changed its style?"
    missing = sorted(read - documented)
    assert not missing, f"add these to docs/configuration.md: {missing}"


def test_every_variable_settings_read_is_in_env_example():
    read = variables_read((BASE_DIR / "config" / "settings.py").read_text())
    example = (BASE_DIR / ".env.example").read_text()
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", example, re.MULTILINE))

    missing = sorted(read - listed)
    assert not missing, f"add these to .env.example: {missing}"
