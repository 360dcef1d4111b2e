"""The layout's rules, checked on the source: one writer of the schedule, one registration per admin
model, imports in one direction, and the rooms of cadence that only read the engine."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.apps import apps as django_apps
from django.contrib import admin

ROOT = Path(__file__).resolve().parent.parent
APPS = ("cadence", "messaging", "preferences", "config")


def sources(*apps: str) -> list[Path]:
    return sorted(path for app in apps for path in (ROOT / app).rglob("*.py") if "migrations" not in path.parts)


def tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def writes_next_due_at(module: ast.Module) -> list[int]:
    """Return the lines that assign `next_due_at`: an attribute, a keyword (create, update, a model
    constructor) or an UPDATE's SET in SQL text."""
    lines = []
    for node in ast.walk(module):
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Attribute) and target.attr == "next_due_at":
                    lines.append(node.lineno)
        elif isinstance(node, ast.keyword) and node.arg == "next_due_at":
            lines.append(node.value.lineno)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = " ".join(node.value.split())
            if "next_due_at =" in text and "WHERE" not in text.split("next_due_at =")[0][-40:]:
                lines.append(node.lineno)
    return lines


def test_nothing_outside_cadence_schedules_writes_next_due_at():
    writers = {
        str(path.relative_to(ROOT)): lines
        for path in sources(*APPS)
        if (lines := writes_next_due_at(tree(path))) and path != ROOT / "cadence" / "schedules.py"
    }
    assert writers == {}


def test_the_check_finds_a_write_of_next_due_at():
    """The check above must be able to fail: each form of a write is found."""
    module = ast.parse(
        "s.next_due_at = now\n"
        "Schedule.objects.filter(pk=1).update(next_due_at=now)\n"
        "sql = 'UPDATE cadence_schedule SET next_due_at = %s'\n"
    )
    assert sorted(writes_next_due_at(module)) == [1, 2, 3]
    assert writes_next_due_at(tree(ROOT / "cadence" / "schedules.py"))


PROJECT_MODELS = {
    model.__name__
    for app in ("cadence", "messaging", "preferences")
    for model in django_apps.get_app_config(app).get_models()
}


def test_each_admin_model_is_registered_once_and_nothing_unregisters():
    """A library's admin may be replaced (unregistered, registered again); a model of ours is registered once."""
    registrations: dict[str, list[str]] = {}
    for path in sources(*APPS):
        for node in ast.walk(tree(path)):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                name = node.func.attr
                project_model = node.args and ast.unparse(node.args[0]) in PROJECT_MODELS
                if name == "unregister" and project_model:
                    pytest.fail(f"{path.relative_to(ROOT)}:{node.lineno} unregisters a project's admin model")
                is_site_register = name == "register" and ast.unparse(node.func.value) == "admin.site"
                is_decorator = name == "register" and ast.unparse(node.func.value) == "admin"
                if (is_site_register or is_decorator) and project_model and isinstance(node.args[0], ast.Name):
                    registrations.setdefault(node.args[0].id, []).append(f"{path.relative_to(ROOT)}:{node.lineno}")
    twice = {model: places for model, places in registrations.items() if len(places) > 1}
    assert twice == {}
    # And the site itself: every project model's admin is the one registered above.
    project_models = [m for m in admin.site._registry if m._meta.app_label in ("cadence", "messaging", "preferences")]
    assert sorted(m.__name__ for m in project_models) == sorted(registrations)


def imported_modules(module: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(module):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize(
    ("app", "forbidden"),
    [
        ("preferences", ("cadence", "messaging")),
        ("messaging", ("cadence",)),
    ],
)
def test_imports_go_one_way(app, forbidden):
    wrong = {
        str(path.relative_to(ROOT)): sorted(
            name for name in imported_modules(tree(path)) if name.split(".")[0] in forbidden
        )
        for path in sources(app)
    }
    assert {path: names for path, names in wrong.items() if names} == {}


def test_the_engine_never_imports_ops_or_insights():
    engine = [path for path in sources("cadence") if not {"ops", "insights"} & set(path.relative_to(ROOT).parts)]
    wrong = {
        str(path.relative_to(ROOT)): sorted(
            name for name in imported_modules(tree(path)) if name.startswith(("cadence.ops", "cadence.insights"))
        )
        for path in engine
        if path.name != "admin.py"  # the admin shows the engine's figures to marketers
    }
    assert {path: names for path, names in wrong.items() if names} == {}
