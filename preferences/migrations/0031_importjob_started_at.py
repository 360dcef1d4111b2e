from __future__ import annotations

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("preferences", "0030_suppression_keyed_hash")]

    operations = [
        migrations.AddField(
            model_name="importjob",
            name="started_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="started at"),
        ),
    ]
