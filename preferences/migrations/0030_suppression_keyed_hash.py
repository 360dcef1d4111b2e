"""The suppression list moves from an unkeyed SHA-256 to a keyed hash (HMAC-SHA256).

A SHA-256 cannot be turned into the keyed hash without the address it came from. This migration
rehashes every entry whose address is still known (a contact row holds it: bounced, complained,
suppressed by hand); the entries of erased people, whose address is gone, stay SHA-256 and are
marked `hash_key_id="sha256"`. Lookups keep trying that form (preferences.addresshash.lookup_hashes)
and rehash an entry the first time its address comes back (a new signup, a re-import, a send).
`manage.py suppression_hashes --report` counts the entries per form.
"""

from __future__ import annotations

from django.db import migrations, models


def rehash_known_addresses(apps, schema_editor):
    from preferences import addresshash

    SuppressionEntry = apps.get_model("preferences", "SuppressionEntry")
    Contact = apps.get_model("preferences", "Contact")
    SuppressionEntry.objects.update(hash_key_id=addresshash.LEGACY_KEY_ID)
    if not SuppressionEntry.objects.exists():
        return
    current = addresshash.key_id(addresshash.current_key())
    emails = Contact.objects.exclude(email__endswith="@erased.invalid").values_list("email", flat=True)
    batch: dict[str, str] = {}

    def flush() -> None:
        for entry in SuppressionEntry.objects.filter(address_hash__in=list(batch)):
            keyed = batch[entry.address_hash]
            if not SuppressionEntry.objects.filter(address_hash=keyed).exists():
                SuppressionEntry.objects.filter(pk=entry.pk).update(address_hash=keyed, hash_key_id=current)
        batch.clear()

    for email in emails.iterator(chunk_size=2000):
        batch[addresshash.legacy_hash(email)] = addresshash.keyed_hash(email)
        if len(batch) >= 2000:
            flush()
    flush()


class Migration(migrations.Migration):
    dependencies = [("preferences", "0021_pending_signups_and_plain_names")]

    operations = [
        migrations.AddField(
            model_name="suppressionentry",
            name="hash_key_id",
            field=models.CharField(default="", editable=False, max_length=12, verbose_name="hash key"),
        ),
        migrations.AlterField(
            model_name="suppressionentry",
            name="address_hash",
            field=models.CharField(max_length=64, unique=True, verbose_name="address hash (HMAC-SHA256)"),
        ),
        migrations.RunPython(rehash_known_addresses, migrations.RunPython.noop),
    ]
