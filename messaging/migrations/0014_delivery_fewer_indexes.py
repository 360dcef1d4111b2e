"""Three indexes fewer on deliveries, each write (the tick's insert, the claim, the record) keeps nine.

- `contact_id` alone: `delivery_contact_created` (contact_id, created_at) leads with it.
- the `varchar_pattern_ops` copies PostgreSQL gets for `esp_message_id` and `feedback` with `db_index=True`:
  both are looked up by equality only. Their plain indexes are renamed in place (no rebuild, no lock on a
  large table); on other databases they are dropped and created again.
"""

from django.db import migrations, models

from messaging.schema import IndexMove, move_indexes

MOVES = [
    IndexMove("messaging_delivery", "contact_id", None),
    IndexMove("messaging_delivery", "esp_message_id", "delivery_esp_message_id"),
    IndexMove("messaging_delivery", "feedback", "delivery_feedback"),
]


class Migration(migrations.Migration):
    dependencies = [
        ("messaging", "0013_event_post_id_label"),
        ("preferences", "__first__"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="delivery",
                    name="contact",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=models.deletion.CASCADE,
                        related_name="deliveries",
                        to="preferences.contact",
                        verbose_name="contact",
                    ),
                ),
                migrations.AlterField(
                    model_name="delivery",
                    name="esp_message_id",
                    field=models.CharField(blank=True, max_length=255, verbose_name="ESP message id"),
                ),
                migrations.AlterField(
                    model_name="delivery",
                    name="feedback",
                    field=models.CharField(blank=True, max_length=16, verbose_name="feedback"),
                ),
                migrations.AddIndex(
                    model_name="delivery",
                    index=models.Index(fields=["esp_message_id"], name="delivery_esp_message_id"),
                ),
                migrations.AddIndex(
                    model_name="delivery",
                    index=models.Index(fields=["feedback"], name="delivery_feedback"),
                ),
            ],
            database_operations=[
                migrations.RunPython(move_indexes(MOVES), move_indexes(MOVES, reverse=True)),
            ],
        ),
    ]
