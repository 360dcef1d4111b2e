"""The README and docs/*.md name only things that exist: repository paths, Python modules and their
attributes, management commands, `deploy/cadence` roles, make targets and the files they link to.

Moves and renames leave the prose behind (`cadence/services.py`, `messaging/esp.py`, a task's old
name); this fails on the first such mention, with the file and the name.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path

import pytest
from django.apps import apps
from django.core.management import get_commands

BASE_DIR = Path(__file__).resolve().parent.parent
DOCS = [
    *(BASE_DIR / name for name in ("README.md", "CONTRIBUTING.md", "SECURITY.md", "deploy/README.md")),
    *sorted((BASE_DIR / "docs").glob("*.md")),
]
# Made at run time, never in a clone: `make run`'s secrets and outbox, the virtualenv, collectstatic's output.
GENERATED = ("var/", ".venv/", "staticfiles/")
# Linked before it exists: written on another branch. Remove the entry when the file is here.
PENDING: set[str] = set()
TOP_LEVEL = {path.name for path in BASE_DIR.iterdir()}
PATH_EXTENSIONS = (".py", ".md", ".yml", ".yaml", ".json", ".html", ".txt", ".toml", ".in", ".po", ".sh", ".cfg")
OUR_PACKAGES = ("preferences", "messaging", "cadence", "config", "bench", "tests")

CODE_SPAN = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
PATH = re.compile(r"^\.?[\w.-]+(?:/[\w.-]+)*/?$")
DOTTED = re.compile(rf"^((?:{'|'.join(OUR_PACKAGES)})(?:\.\w+)+)(?:\(.*\))?$")
LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")


def spans(text: str) -> list[str]:
    """Return every inline code span of `text` and every line of its fenced blocks."""
    fenced = [line.strip() for block in FENCE.findall(text) for line in block.splitlines()[1:-1]]
    return CODE_SPAN.findall(FENCE.sub("", text)) + fenced


def is_repository_path(token: str) -> bool:
    if "/" not in token or token.startswith(("/", "http", "<")) or not PATH.match(token):
        return False
    first = token.removeprefix("./").split("/", 1)[0]
    return first in TOP_LEVEL or token.rstrip("/").endswith(PATH_EXTENSIONS) or token.endswith("/")


def path_exists(token: str, folder: Path = BASE_DIR) -> bool:
    """Return whether `token` names a file or folder of the repository (or of `folder`, the doc's own)."""
    path = token.removeprefix("./")
    migration = re.fullmatch(r"(\w+)/(\d{4})", path)  # `preferences/0020`: that app's migration 0020
    if migration:
        return any((BASE_DIR / migration.group(1) / "migrations").glob(f"{migration.group(2)}_*.py"))
    return path.startswith(GENERATED) or (BASE_DIR / path).exists() or (folder / path).exists()


def check_ids() -> set[str]:
    """Return the ids of our system checks (`cadence.E001`) as the code spells them."""
    sources = (path.read_text() for package in OUR_PACKAGES[:4] for path in (BASE_DIR / package).rglob("*.py"))
    return {found for source in sources for found in re.findall(r"\bcadence\.[EW]\d{3}\b", source)}


def permissions() -> set[str]:
    """Return every permission as `app_label.codename` (the default four per model and Meta.permissions)."""
    names: set[str] = set()
    for model in apps.get_models():
        meta = model._meta
        names |= {f"{meta.app_label}.{action}_{meta.model_name}" for action in meta.default_permissions}
        names |= {f"{meta.app_label}.{codename}" for codename, _label in meta.permissions}
    return names


def dotted_exists(name: str) -> bool:
    """Return whether `name` is a module of ours, an attribute of one, or a permission."""
    if name in permissions() or name in check_ids():
        return True
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            spec = importlib.util.find_spec(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        if spec is None:
            continue
        if cut == len(parts):
            return True
        target: object = importlib.import_module(".".join(parts[:cut]))
        for attribute in parts[cut:]:
            if not hasattr(target, attribute):
                return False
            target = getattr(target, attribute)
        return True
    return False


def deploy_roles() -> set[str]:
    return set(re.findall(r"^  ([\w|-]+)\)", (BASE_DIR / "deploy" / "cadence").read_text(), re.MULTILINE))


def make_targets() -> set[str]:
    return set(re.findall(r"^([\w-]+):", (BASE_DIR / "Makefile").read_text(), re.MULTILINE))


def wrong_names(doc: Path) -> list[str]:
    text = doc.read_text()
    commands, roles, targets = set(get_commands()), deploy_roles(), make_targets()
    wrong: list[str] = []
    for span in spans(text):
        tokens = span.split()
        for token in tokens:
            token = token.strip("\"'(),;:").split("::", 1)[0]  # `tests/x.py::test_y` names tests/x.py
            if is_repository_path(token) and not path_exists(token, doc.parent):
                wrong.append(f"path {token}")
            dotted = DOTTED.match(token)
            if dotted and not dotted_exists(dotted.group(1)):
                wrong.append(f"module or attribute {dotted.group(1)}")
        for command in re.findall(r"\bmanage(?:\.py)? ([a-z_]+)", span):
            if command not in commands:
                wrong.append(f"management command {command}")
        for role in re.findall(r"\bdeploy/cadence ([a-z-]+)", span):
            if role not in roles:
                wrong.append(f"deploy/cadence role {role}")
        for target in re.findall(r"(?:^|[\s(])make ([a-z-]+)", span):
            if target not in targets:
                wrong.append(f"make target {target}")
    for link in LINK.findall(text):
        if link.startswith(("http:", "https:", "mailto:")):
            continue
        target = (doc.parent / link).resolve()
        relative = target.relative_to(BASE_DIR).as_posix() if target.is_relative_to(BASE_DIR) else str(target)
        if not target.exists() and relative not in PENDING:
            wrong.append(f"link {link}")
    return wrong


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(BASE_DIR).as_posix())
def test_the_doc_names_only_what_exists(doc):
    wrong = wrong_names(doc)
    assert wrong == [], "\n".join(wrong)


def test_the_check_catches_moved_paths_modules_commands_and_links(tmp_path):
    doc = tmp_path / "moved.md"
    doc.write_text(
        "Read `cadence/metrics.py` and `messaging/esp.py`, not `cadence/ops/metrics.py` or `messaging/esp/`.\n"
        "The guard `cadence.services.silence_repair`; `cadence.guard.silence_repair` is right.\n"
        "The test `tests/test_docs_paths.py::test_x` is here, `tests/test_gone.py::test_y` is not.\n"
        "Migration `preferences/0001` and check `cadence.E001` exist; `preferences/0999` and `cadence.E999` do not.\n"
        "Run `manage.py drf_create_token crm`, `deploy/cadence worker-events`, `deploy/cadence worker-mail`.\n"
        "```sh\nmake prod\nmake deploy\n.venv/bin/python manage.py crm_key create --name crm\n```\n"
        "Content types like `text/plain` and URLs like `/admin/ops/` are not paths. See [gone](gone.md).\n"
    )
    assert wrong_names(doc) == [
        "path cadence/metrics.py",
        "path messaging/esp.py",
        "module or attribute cadence.services.silence_repair",
        "path tests/test_gone.py",
        "path preferences/0999",
        "module or attribute cadence.E999",
        "management command drf_create_token",
        "deploy/cadence role worker-mail",
        "make target deploy",
        "link gone.md",
    ]
