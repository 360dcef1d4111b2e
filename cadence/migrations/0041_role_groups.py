"""The staff roles as groups (preferences/roles.py): marketer, ops, privacy officer, read-only.

Permissions are created by post_migrate, after every migration; on a fresh database they do not
exist yet here, so they are created first (for the apps this migration depends on). Running it again
changes nothing.
"""

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.db import migrations

from preferences.roles import roles_sync


def create_role_groups(apps, schema_editor):
    for app_config in global_apps.get_app_configs():
        create_permissions(app_config, verbosity=0, using=schema_editor.connection.alias, apps=apps)
    roles_sync(group_model=apps.get_model("auth", "Group"), permission_model=apps.get_model("auth", "Permission"))


class Migration(migrations.Migration):

    dependencies = [
        ("cadence", "0040_admin_page_permissions"),
        ("preferences", "0041_audit_trail"),
        ("messaging", "0012_event_post"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_role_groups, migrations.RunPython.noop)]
