"""`manage.py demo` (run by `make run`) loads what a newcomer needs to try the journey by hand."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from cadence.models import ContactHealth, ContentItem, Schedule
from preferences.models import Contact, Conversion, LeaveFeedback, Topic

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _debug(settings):
    settings.DEBUG = True


def test_the_demo_refuses_to_run_without_debug(settings):
    settings.DEBUG = False

    with pytest.raises(CommandError, match="DEBUG"):
        call_command("demo", contacts=10)
    assert not Contact.objects.exists()


def test_the_demo_loads_topics_contacts_prospects_content_and_a_superuser(capsys, client):
    call_command("demo", contacts=300)
    out = capsys.readouterr().out

    assert Topic.objects.count() == 6
    assert all(topic.name_nl and topic.name_en and topic.name_nl != topic.name_en for topic in Topic.objects.all())
    for topic in Topic.objects.all():
        assert set(ContentItem.objects.filter(topic=topic).values_list("language", flat=True)) == {"en", "nl"}
    assert Contact.objects.count() == 300
    assert Contact.objects.filter(share_of_customer=0, status="confirmed").count() > 50, "prospects included"
    assert Conversion.objects.exists() and ContactHealth.objects.exists()
    outcomes = set(LeaveFeedback.objects.values_list("outcome", flat=True))
    assert LeaveFeedback.Outcome.LEFT in outcomes and len(outcomes) > 1, "saves and leavers for the dashboard"
    assert Schedule.objects.count() == Contact.objects.filter(status="confirmed").count()

    password = re.search(r"password: (\S+)\)", out).group(1)
    assert get_user_model().objects.get(username="admin").check_password(password)
    link = re.search(r"Preference centre:\s+http://[^/]+(/preferences/\S+/)", out).group(1)
    assert client.get(link).status_code == 200


def test_running_the_demo_again_adds_nothing(capsys):
    call_command("demo", contacts=100)
    call_command("demo", contacts=100)
    assert Contact.objects.count() == 100
    assert Topic.objects.count() == 6
