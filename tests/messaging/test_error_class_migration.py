"""The error-class migration classifies the rows written before the field existed, from their messages."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("messaging", "0010_kind_is_a_label_announcement_to_cadence")]
AFTER = [("messaging", "0011_delivery_error_class")]


@pytest.fixture
def back_to_the_latest_schema():
    """Migrate forward to every app's latest migration afterwards: the tests that follow need the whole schema."""
    yield
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("back_to_the_latest_schema")
def test_existing_rows_get_the_class_their_message_names():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old_apps = executor.loader.project_state(BEFORE).apps
    Contact = old_apps.get_model("preferences", "Contact")
    Delivery = old_apps.get_model("messaging", "Delivery")
    contact = Contact.objects.create(email="old@example.com", token_secret="s" * 32)
    rows = {
        "lost": ("failed", "lost: the worker stopped while sending; replaced"),
        "gave": ("failed", "gave up: TransientSendError('x')"),
        "refused": ("failed", "recipient refused: 550 no such user"),
        "render": ("failed", "render error: TemplateSyntaxError()"),
        "permanent": ("failed", "permanent: 422: bad sender"),
        "transient": ("queued", "transient: connection: timed out"),
        "cancelled": ("cancelled", "cancelled: consent withdrawn"),
        "sent": ("sent", ""),
    }
    ids = {}
    for name, (status, error) in rows.items():
        ids[name] = Delivery.objects.create(
            id=uuid.uuid4(), contact=contact, kind="nurture", template="nurture",
            idempotency_key=f"old:{name}", status=status, error=error,
        ).id  # fmt: skip

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    new_apps = executor.loader.project_state(AFTER).apps
    classes = dict(new_apps.get_model("messaging", "Delivery").objects.values_list("id", "error_class"))

    assert {name: classes[pk] for name, pk in ids.items()} == {
        "lost": "lost",
        "gave": "retries_exhausted",
        "refused": "recipient_refused",
        "render": "render_error",
        "permanent": "permanent",
        "transient": "transient",
        "cancelled": "cancelled",
        "sent": "",
    }
