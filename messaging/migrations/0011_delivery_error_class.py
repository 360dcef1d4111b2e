"""Failure reasons become an enum field (`error_class`) next to the human message (`error`); existing
rows are classified from the prefixes their messages were written with."""

from django.db import migrations, models
from django.db.models import Q

# (class, the condition on rows written before this field existed), first match wins.
CLASSES = [
    ("cancelled", Q(status="cancelled")),
    ("lost", Q(status="failed", error__startswith="lost")),
    ("retries_exhausted", Q(status="failed", error__startswith="gave up")),
    ("recipient_refused", Q(status="failed", error__startswith="recipient refused")),
    ("render_error", Q(status="failed", error__startswith="render error")),
    ("permanent", Q(status="failed")),
    ("transient", Q(status="queued", error__startswith="transient")),
]


def classify(apps, schema_editor):
    Delivery = apps.get_model("messaging", "Delivery")
    done = Q(pk__in=[])
    for error_class, condition in CLASSES:
        Delivery.objects.filter(condition).exclude(done).update(error_class=error_class)
        done |= condition


class Migration(migrations.Migration):
    dependencies = [
        ("messaging", "0010_kind_is_a_label_announcement_to_cadence"),
    ]

    operations = [
        migrations.AddField(
            model_name="delivery",
            name="error_class",
            field=models.CharField(
                blank=True,
                choices=[
                    ("", "none"),
                    ("transient", "transient (tried again)"),
                    ("permanent", "refused by the ESP for good"),
                    ("recipient_refused", "recipient refused"),
                    ("render_error", "template could not be rendered"),
                    ("retries_exhausted", "retries used up"),
                    ("lost", "lost (worker stopped while sending; replaced)"),
                    ("cancelled", "cancelled"),
                ],
                default="",
                max_length=24,
                verbose_name="error class",
            ),
        ),
        migrations.RunPython(classify, migrations.RunPython.noop),
    ]
