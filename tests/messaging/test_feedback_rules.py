"""How each ESP's bounce is classed hard or soft (pure rules, no I/O)."""

from __future__ import annotations

import pytest
from anymail.signals import AnymailTrackingEvent, EventType

from messaging.feedback import classify, event_key

SOFT, HARD, DEFERRED = "soft_bounced", "bounced", "deferred"


@pytest.mark.parametrize(
    ("esp", "event_type", "raw", "expected"),
    [
        ("Postmark", EventType.BOUNCED, {"Type": "HardBounce"}, HARD),
        ("Postmark", EventType.BOUNCED, {"Type": "SoftBounce"}, SOFT),
        ("Postmark", EventType.DEFERRED, {"Type": "Transient"}, SOFT),
        ("Mailgun", EventType.BOUNCED, {"event-data": {"event": "failed", "severity": "permanent"}}, HARD),
        ("Mailgun", EventType.DEFERRED, {"event-data": {"event": "failed", "severity": "temporary"}}, SOFT),
        ("SendGrid", EventType.BOUNCED, {"event": "bounce", "type": "bounce"}, HARD),
        ("SendGrid", EventType.BOUNCED, {"event": "bounce", "type": "blocked"}, SOFT),
        ("SendGrid", EventType.DEFERRED, {"event": "deferred"}, DEFERRED),
        ("Brevo", EventType.BOUNCED, {"event": "hard_bounce"}, HARD),
        ("Brevo", EventType.BOUNCED, {"event": "soft_bounce"}, SOFT),
        ("SendinBlue", EventType.BOUNCED, {"event": "soft_bounce"}, SOFT),
        ("Amazon SES", EventType.BOUNCED, {"bounce": {"bounceType": "Permanent"}}, HARD),
        ("Amazon SES", EventType.BOUNCED, {"bounce": {"bounceType": "Transient"}}, SOFT),
        ("SparkPost", EventType.BOUNCED, {"bounce_class": "10"}, HARD),
        ("SparkPost", EventType.BOUNCED, {"bounce_class": "22"}, SOFT),
        # anymail's esp_event for SparkPost is the wrapper SparkPost posts
        ("SparkPost", EventType.BOUNCED, {"msys": {"message_event": {"bounce_class": "22"}}}, SOFT),
        ("SparkPost", EventType.BOUNCED, {"msys": {"message_event": {"bounce_class": "10"}}}, HARD),
        ("Mailjet", EventType.BOUNCED, {"event": "bounce", "hard_bounce": True}, HARD),
        ("Mailjet", EventType.BOUNCED, {"event": "bounce", "hard_bounce": False}, SOFT),
        ("Resend", EventType.BOUNCED, {}, HARD),
        ("Postmark", EventType.OPENED, {"RecordType": "Open"}, "opened"),
        ("Postmark", "inbound", {}, "other"),
    ],
)
def test_bounces_are_hard_unless_the_esp_calls_them_temporary(esp, event_type, raw, expected):
    event = AnymailTrackingEvent(event_type=event_type, esp_event=raw)
    assert classify(esp, event, raw) == expected


def test_the_dedup_key_is_the_esp_event_id_per_recipient_else_a_hash_of_the_event():
    with_id = AnymailTrackingEvent(event_type="opened", event_id="sns-1", recipient="a@example.com")
    assert event_key(with_id, {}) == "sns-1:a@example.com"
    without = AnymailTrackingEvent(event_type="opened")
    assert event_key(without, {"b": 1, "a": 2}) == event_key(without, {"a": 2, "b": 1})
    assert event_key(without, {"a": 1}) != event_key(without, {"a": 2})
