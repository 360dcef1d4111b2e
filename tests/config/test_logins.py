"""Logins a bank accepts: password validators, lockout after failed admin logins, TOTP for staff."""

from __future__ import annotations

import time

import pytest
import time_machine
from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from config.otp import otp_check

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple 42"


@pytest.fixture
def staff() -> User:
    return User.objects.create_superuser("marketer", "marketer@example.com", PASSWORD)


@pytest.mark.parametrize("password", ["short", "password123456", "12345678901234", "marketer2024"])
def test_weak_passwords_are_refused(staff, password):
    with pytest.raises(ValidationError):
        validate_password(password, user=staff)


def test_a_long_passphrase_is_accepted(staff):
    validate_password(PASSWORD, user=staff)


def test_the_admin_login_locks_out_after_five_failures_even_for_the_right_password(client, staff, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = client.post("/admin/login/", {"username": "marketer", "password": "wrong guess"})
        assert response.status_code == 200 and "_auth_user_id" not in client.session
    response = client.post("/admin/login/", {"username": "marketer", "password": "wrong guess"})
    assert response.status_code == 429

    response = client.post("/admin/login/", {"username": "marketer", "password": PASSWORD})

    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/").status_code == 302


def test_a_lockout_is_per_client_and_lifts_with_axes_reset(client, staff, settings):
    from django.core.management import call_command

    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/admin/login/", {"username": "marketer", "password": "wrong guess"})
    call_command("axes_reset")

    response = client.post("/admin/login/", {"username": "marketer", "password": PASSWORD})
    assert response.status_code == 302 and "_auth_user_id" in client.session


def test_with_otp_required_a_password_alone_does_not_open_the_admin(client, staff, settings):
    settings.OTP_REQUIRED = True

    response = client.post("/admin/login/", {"username": "marketer", "password": PASSWORD})
    assert response.status_code == 200 and "_auth_user_id" not in client.session

    client.force_login(staff)  # a session signed in elsewhere with the password only
    for url in ["/admin/", "/admin/preferences/contact/", "/admin/ops/", "/admin/dashboard/"]:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/"), url


def test_with_otp_required_a_valid_totp_code_opens_the_admin(client, staff, settings):
    settings.OTP_REQUIRED = True
    device = TOTPDevice.objects.create(user=staff, name="phone", confirmed=True)
    fields = {"username": "marketer", "password": PASSWORD, "otp_device": device.persistent_id}

    wrong = client.post("/admin/login/", {**fields, "otp_token": f"{(totp(device.bin_key) + 1) % 10**6:06d}"})
    assert wrong.status_code == 200 and "_auth_user_id" not in client.session

    # django-otp throttles a device after a failure (1 s, then doubling).
    with time_machine.travel(time.time() + 5, tick=False):
        response = client.post("/admin/login/", {**fields, "otp_token": f"{totp(device.bin_key):06d}"})

        assert response.status_code == 302
        assert client.get("/admin/").status_code == 200


def test_an_unconfirmed_device_does_not_count(client, staff, settings):
    settings.OTP_REQUIRED = True
    device = TOTPDevice.objects.create(user=staff, name="phone", confirmed=False)

    client.post(
        "/admin/login/",
        {
            "username": "marketer",
            "password": PASSWORD,
            "otp_device": device.persistent_id,
            "otp_token": f"{totp(device.bin_key):06d}",
        },
    )

    assert "_auth_user_id" not in client.session


def test_without_otp_the_admin_opens_with_a_password(client, staff, settings):
    settings.OTP_REQUIRED = False
    response = client.post("/admin/login/", {"username": "marketer", "password": PASSWORD})
    assert response.status_code == 302 and client.get("/admin/").status_code == 200


def test_otp_switched_off_in_production_is_a_start_up_warning(settings):
    settings.DEBUG = False
    settings.OTP_REQUIRED = False
    assert [warning.id for warning in otp_check()] == ["cadence.W020"]

    settings.OTP_REQUIRED = True
    assert otp_check() == []
    settings.DEBUG, settings.OTP_REQUIRED = True, False
    assert otp_check() == []


def test_otp_device_add_enrols_a_confirmed_totp_device(staff, capsys):
    from django.core.management import call_command

    call_command("otp_device", "add", "marketer")

    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("otpauth://totp/")
    assert TOTPDevice.objects.get(user=staff).confirmed
