"""Content receipts lose their index on `contact_id` alone: `receipt_contact_item` (contact_id, item_id)
leads with it, and each mail writes three receipts or so."""

from django.db import migrations, models

from messaging.schema import IndexMove, move_indexes

MOVES = [IndexMove("cadence_contentreceipt", "contact_id", None)]


class Migration(migrations.Migration):
    dependencies = [
        ("cadence", "0050_announcement_delivery_modes"),
        ("preferences", "__first__"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="contentreceipt",
                    name="contact",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=models.deletion.CASCADE,
                        related_name="content_receipts",
                        to="preferences.contact",
                        verbose_name="contact",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunPython(move_indexes(MOVES), move_indexes(MOVES, reverse=True)),
            ],
        ),
    ]
