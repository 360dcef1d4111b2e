"""The admin's change log never keeps a person's address.

Django's admin writes `str(obj)` into `LogEntry.object_repr`, and a contact (or a row about one:
a conversion, a product) is shown by its address. Before an entry is saved, the repr of a contact,
or of any row with a foreign key to one, becomes "<model> <first 8 characters of its id>": the entry
still says who changed which row and when, and an erasure has nothing to find there.
"""

from __future__ import annotations

from typing import Any

from django.contrib.admin.models import LogEntry
from django.db import models
from django.db.models.signals import pre_save
from django.dispatch import receiver


def names_a_person(model: type[models.Model]) -> bool:
    from preferences.models import Contact

    return model is Contact or any(
        isinstance(field, models.ForeignKey) and field.related_model is Contact for field in model._meta.concrete_fields
    )


@receiver(pre_save, sender=LogEntry)
def log_entry_without_address(sender: Any, instance: LogEntry, **kwargs: Any) -> None:
    content_type = instance.content_type if instance.content_type_id else None
    model = content_type.model_class() if content_type is not None else None
    if model is not None and names_a_person(model):
        instance.object_repr = f"{model._meta.model_name} {str(instance.object_id or '')[:8]}"
