"""A delivery's kind is its producer's label (no choices here); the Announcement model moves to cadence
(state only: the table stays and belongs to cadence now)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('messaging', '0009_monthly_count_labels'),
        ('cadence', '0003_announcement_from_messaging'),
    ]

    operations = [
        migrations.AlterField(
            model_name='delivery',
            name='kind',
            field=models.CharField(max_length=24, verbose_name='kind'),
        ),
        migrations.AlterField(
            model_name='deliverymonthlycount',
            name='kind',
            field=models.CharField(max_length=24, verbose_name='kind'),
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name='Announcement')],
            database_operations=[],
        ),
    ]
