"""The Announcement model moves here from messaging; its table (messaging_announcement) stays as it is."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


def move_content_type(apps, schema_editor):
    """Keep the admin log and the permissions: the content type follows the model to cadence."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label="cadence", model="announcement").exists():
        ContentType.objects.filter(app_label="messaging", model="announcement").update(app_label="cadence")


def move_content_type_back(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label="messaging", model="announcement").exists():
        ContentType.objects.filter(app_label="cadence", model="announcement").update(app_label="messaging")


class Migration(migrations.Migration):

    dependencies = [
        ('cadence', '0002_field_verbose_names'),
        ('preferences', '0007_import_invitations'),
        ('messaging', '0009_monthly_count_labels'),
        ('contenttypes', '0002_remove_content_type_name'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
        migrations.CreateModel(
                    name='Announcement',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('title', models.CharField(max_length=200, verbose_name='title (internal)')),
                        ('kind', models.CharField(choices=[('service', 'service (every reachable address, whatever the marketing consent)'), ('marketing', 'marketing (needs marketing consent)')], default='service', max_length=16, verbose_name='kind')),
                        ('subject_en', models.CharField(max_length=200, verbose_name='subject (English)')),
                        ('subject_nl', models.CharField(max_length=200, verbose_name='subject (Dutch)')),
                        ('body_en', models.TextField(verbose_name='body (English)')),
                        ('body_nl', models.TextField(verbose_name='body (Dutch)')),
                        ('audience', models.CharField(choices=[('all_customers', 'all customers'), ('all_contacts', 'all contacts'), ('segment', 'a segment')], default='all_customers', max_length=16, verbose_name='audience')),
                        ('segment_potential', models.CharField(blank=True, choices=[('high', 'high'), ('medium', 'medium'), ('low', 'low'), ('none', 'none')], max_length=8, verbose_name='segment: potential')),
                        ('segment_lifecycle', models.CharField(blank=True, choices=[('prospect', 'prospects (no share of customer)'), ('customer', 'customers')], max_length=16, verbose_name='segment: lifecycle')),
                        ('status', models.CharField(choices=[('draft', 'draft'), ('confirmed', 'confirmed, waiting to start'), ('sending', 'sending'), ('done', 'done')], default='draft', max_length=16, verbose_name='status')),
                        ('scheduled_at', models.DateTimeField(blank=True, help_text='Empty: sending starts as soon as it is confirmed.', null=True, verbose_name='send at')),
                        ('audience_count', models.PositiveIntegerField(blank=True, null=True, verbose_name='recipients counted at confirmation')),
                        ('created_count', models.PositiveIntegerField(default=0, verbose_name='deliveries created')),
                        ('expanded_through', models.UUIDField(blank=True, editable=False, null=True, verbose_name='expanded through (contact id)')),
                        ('confirmed_by', models.CharField(blank=True, max_length=150, verbose_name='confirmed by')),
                        ('confirmed_at', models.DateTimeField(blank=True, null=True, verbose_name='confirmed at')),
                        ('expanded_at', models.DateTimeField(blank=True, null=True, verbose_name='audience expanded at')),
                        ('finished_at', models.DateTimeField(blank=True, null=True, verbose_name='finished at')),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False, verbose_name='created at')),
                        ('updated_at', models.DateTimeField(auto_now=True, verbose_name='updated at')),
                        ('segment_topic', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, to='preferences.topic', verbose_name='segment: topic')),
                    ],
                    options={
                        'verbose_name': 'announcement',
                        'verbose_name_plural': 'announcements',
                        'db_table': 'messaging_announcement',
                        'ordering': ['-created_at'],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(move_content_type, move_content_type_back),
    ]
