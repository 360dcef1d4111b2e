"""Delivery says itself whether it is marketing and which queue it goes to (set from the kind once)."""

from __future__ import annotations

from typing import Any

from django.db import migrations, models

MARKETING_KINDS = ["welcome", "nurture", "reengagement"]
WELCOME_QUEUE_KINDS = ["confirmation", "already_subscribed"]


def from_kind(apps: Any, schema_editor: Any) -> None:
    Delivery = apps.get_model("messaging", "Delivery")
    Delivery.objects.filter(kind__in=MARKETING_KINDS).update(marketing=True)
    Delivery.objects.filter(kind="announcement", context__marketing=True).update(marketing=True)
    Delivery.objects.filter(kind__in=WELCOME_QUEUE_KINDS).update(queue="welcome")
    # The first welcome (key welcome:<contact>:0) is the latency-sensitive one; the series goes in bulk.
    Delivery.objects.filter(kind="welcome", idempotency_key__endswith=":0").update(queue="welcome")


class Migration(migrations.Migration):
    dependencies = [("messaging", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="delivery",
            name="marketing",
            field=models.BooleanField(default=False, verbose_name="marketing"),
        ),
        migrations.AddField(
            model_name="delivery",
            name="queue",
            field=models.CharField(
                choices=[("welcome", "welcome (latency-sensitive)"), ("bulk", "bulk"), ("default", "default")],
                default="bulk",
                max_length=16,
                verbose_name="queue",
            ),
        ),
        migrations.RunPython(from_kind, migrations.RunPython.noop),
    ]
