"""Raw tracking-webhook payloads, shaped as each ESP documents them.

Each builder takes the event ("delivered", "hard_bounce", "soft_bounce", "complained", "opened",
"clicked", "unsubscribed"), the delivery it is about, and an event number that makes the ESP's
event id unique; it returns the keyword arguments for the test client's `post`.

Sources: Postmark "Webhooks" (postmarkapp.com/developer/webhooks), Mailgun "Webhooks" event-data
(documentation.mailgun.com), SendGrid "Event Webhook reference", Amazon SES "Contents of event data
that Amazon SES publishes to Amazon SNS", Brevo "Transactional webhooks", SparkPost "Webhook event
types" (developers.sparkpost.com/api/webhooks: batches of {"msys": {"<class>_event": {...}}}), Mailjet
"Event API: real-time notifications" (dev.mailjet.com/email/guides/webhooks).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from messaging.models import Delivery

WEBHOOK_SECRET = "hook:s3cret-pass"
MAILGUN_SIGNING_KEY = "key-mailgun-signing-0123456789"
CLICKED_URL = "https://example.com/savings?utm=mail"
EPOCH = 1_764_000_000  # 2025-11-24, seconds


def _json(payload: Any, **headers: str) -> dict[str, Any]:
    return {"data": json.dumps(payload), "content_type": "application/json", **headers}


def postmark(event: str, delivery: Delivery, n: int = 1) -> dict[str, Any]:
    email = delivery.contact.email
    common = {
        "MessageStream": "outbound",
        "MessageID": delivery.esp_message_id or "883953f4-6105-42a2-a16a-77a8eac79483",
        "Metadata": {"delivery_id": str(delivery.id), "kind": delivery.kind},
        "Tag": delivery.kind,
        "ServerID": 23,
    }
    bounce = {
        "ID": 4323372036854775000 + n,
        "Name": "Hard bounce",
        "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": email,
        "From": "hello@example.com",
        "BouncedAt": "2025-11-24T16:33:54.9070259Z",
        "DumpAvailable": True,
        "Inactive": True,
        "CanActivate": True,
        "Subject": "Welcome",
    }
    payloads: dict[str, dict[str, Any]] = {
        "delivered": {
            "RecordType": "Delivery",
            "Recipient": email,
            "DeliveredAt": "2025-11-24T16:33:54.9070259Z",
            "Details": "smtp;250 2.0.0 OK",
        },
        "hard_bounce": {"RecordType": "Bounce", "Type": "HardBounce", "TypeCode": 1, **bounce},
        "soft_bounce": {
            "RecordType": "Bounce",
            "Type": "SoftBounce",
            "TypeCode": 4096,
            **bounce,
            "Name": "Soft bounce/Undeliverable",
            "Inactive": False,
            "Details": "smtp;452 4.2.2 The email account that you tried to reach is over quota.",
        },
        "complained": {
            "RecordType": "SpamComplaint",
            "Type": "SpamComplaint",
            "TypeCode": 512,
            **bounce,
            "Name": "Spam complaint",
            "Description": "The subscriber explicitly marked this message as spam.",
        },
        "opened": {
            "RecordType": "Open",
            "FirstOpen": True,
            "Recipient": email,
            "ReceivedAt": "2025-11-24T16:40:00.0000000Z",
            "Platform": "WebMail",
            "ReadSeconds": 5,
            "UserAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_7_5)",
            "OS": {"Name": "OS X 10.7 Lion", "Family": "OS X 10", "Company": "Apple Computer, Inc."},
            "Client": {"Name": "Chrome 35.0.1916.153", "Family": "Chrome", "Company": "Google"},
        },
        "clicked": {
            "RecordType": "Click",
            "ClickLocation": "HTML",
            "Recipient": email,
            "ReceivedAt": "2025-11-24T16:41:00.0000000Z",
            "OriginalLink": CLICKED_URL,
            "Platform": "Desktop",
            "UserAgent": "Mozilla/5.0",
        },
        "unsubscribed": {
            "RecordType": "SubscriptionChange",
            "Recipient": email,
            "ChangedAt": "2025-11-24T16:42:00.0000000Z",
            "SuppressSending": True,
            "SuppressionReason": "ManualSuppression",
            "Origin": "Recipient",
        },
    }
    return _json({**common, **payloads[event]})


def mailgun(event: str, delivery: Delivery, n: int = 1, signing_key: str = MAILGUN_SIGNING_KEY) -> dict[str, Any]:
    email = delivery.contact.email
    timestamp = str(EPOCH + n)
    token = f"a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de{n:04d}"
    signature = hmac.new(signing_key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    event_data: dict[str, Any] = {
        "id": f"CPgfbmQMTCKtHW6uIWtuV{n}",
        "timestamp": EPOCH + n + 0.908181,
        "log-level": "info",
        "envelope": {"transport": "smtp", "sender": "hello@mg.example.com", "targets": email},
        "flags": {"is-routed": False, "is-authenticated": True, "is-system-test": False, "is-test-mode": False},
        "message": {
            "headers": {
                "to": f"Sam <{email}>",
                "message-id": "20251124182626.18666.16540@mg.example.com",
                "from": "Cadence <hello@mg.example.com>",
                "subject": "Welcome",
            },
            "attachments": [],
            "size": 111,
        },
        "recipient": email,
        "recipient-domain": email.split("@")[1],
        "campaigns": [],
        "tags": [delivery.kind],
        "user-variables": {"delivery_id": str(delivery.id), "kind": delivery.kind},
    }
    events: dict[str, dict[str, Any]] = {
        "delivered": {
            "event": "delivered",
            "delivery-status": {"tls": True, "mx-host": "smtp-in.example.com", "code": 250, "message": "OK"},
        },
        "hard_bounce": {
            "event": "failed",
            "severity": "permanent",
            "reason": "bounce",
            "log-level": "error",
            "delivery-status": {
                "attempt-no": 1,
                "code": 550,
                "message": "5.1.1 The email account that you tried to reach does not exist.",
                "description": "",
            },
        },
        "soft_bounce": {
            "event": "failed",
            "severity": "temporary",
            "reason": "generic",
            "log-level": "warn",
            "delivery-status": {
                "attempt-no": 1,
                "code": 452,
                "message": "4.2.2 The email account that you tried to reach is over quota.",
                "retry-seconds": 600,
            },
        },
        "complained": {"event": "complained"},
        "opened": {
            "event": "opened",
            "client-info": {"client-type": "browser", "client-os": "OS X", "user-agent": "Mozilla/5.0"},
            "geolocation": {"country": "NL", "region": "NH", "city": "Amsterdam"},
        },
        "clicked": {"event": "clicked", "url": CLICKED_URL, "client-info": {"user-agent": "Mozilla/5.0"}},
        "unsubscribed": {"event": "unsubscribed"},
    }
    event_data.update(events[event])
    return _json(
        {"signature": {"timestamp": timestamp, "token": token, "signature": signature}, "event-data": event_data}
    )


def sendgrid(event: str, delivery: Delivery, n: int = 1) -> dict[str, Any]:
    common = {
        "email": delivery.contact.email,
        "timestamp": EPOCH + n,
        "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
        "sg_event_id": f"sg_event_id_{event}_{n}",
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
        "category": [delivery.kind],
        # custom_args come back at the top level of each event
        "delivery_id": str(delivery.id),
        "kind": delivery.kind,
    }
    events: dict[str, dict[str, Any]] = {
        "delivered": {"event": "delivered", "response": "250 OK", "ip": "168.1.1.1", "tls": 1},
        "hard_bounce": {
            "event": "bounce",
            "type": "bounce",
            "bounce_classification": "Invalid Address",
            "reason": "550 5.1.1 The email account that you tried to reach does not exist.",
            "status": "5.1.1",
        },
        "soft_bounce": {
            "event": "bounce",
            "type": "blocked",
            "bounce_classification": "Mailbox Unavailable",
            "reason": "452 4.2.2 The email account that you tried to reach is over quota.",
            "status": "4.2.2",
        },
        "complained": {"event": "spamreport"},
        "opened": {"event": "open", "sg_machine_open": False, "useragent": "Mozilla/4.0", "ip": "255.255.255.255"},
        "clicked": {
            "event": "click",
            "url": CLICKED_URL,
            "url_offset": {"index": 0, "type": "html"},
            "useragent": "Mozilla/4.0",
            "ip": "255.255.255.255",
        },
        "unsubscribed": {"event": "unsubscribe"},
    }
    return _json([{**common, **events[event]}])


def amazon_ses(event: str, delivery: Delivery, n: int = 1) -> dict[str, Any]:
    email = delivery.contact.email
    mail = {
        "timestamp": "2025-11-24T00:40:02.012Z",
        "source": "Cadence <hello@example.com>",
        "sourceArn": "arn:aws:ses:eu-west-1:123456789012:identity/example.com",
        "sendingAccountId": "123456789012",
        "messageId": delivery.esp_message_id or "EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000",
        "destination": [email],
        "headersTruncated": False,
        "headers": [
            {"name": "From", "value": "Cadence <hello@example.com>"},
            {"name": "To", "value": email},
            {"name": "Subject", "value": "Welcome"},
            {"name": "X-Metadata", "value": json.dumps({"delivery_id": str(delivery.id), "kind": delivery.kind})},
            {"name": "X-Tag", "value": delivery.kind},
        ],
        "commonHeaders": {"from": ["Cadence <hello@example.com>"], "to": [email], "subject": "Welcome"},
        "tags": {"ses:configuration-set": ["cadence"]},
    }
    bounce = {
        "bouncedRecipients": [
            {
                "emailAddress": email,
                "action": "failed",
                "status": "5.1.1",
                "diagnosticCode": "smtp; 550 5.1.1 user unknown",
            }
        ],
        "timestamp": "2025-11-24T00:41:02.669Z",
        "feedbackId": "01000157c44f053b-61b59c11-9236-11e6-8f96-7be8aexample-000000",
        "reportingMTA": "dsn; mta.example.com",
    }
    events: dict[str, dict[str, Any]] = {
        "delivered": {
            "eventType": "Delivery",
            "delivery": {
                "timestamp": "2025-11-24T00:41:01.000Z",
                "processingTimeMillis": 546,
                "recipients": [email],
                "smtpResponse": "250 2.6.0 Message received",
                "reportingMTA": "mta.example.com",
            },
        },
        "hard_bounce": {
            "eventType": "Bounce",
            "bounce": {"bounceType": "Permanent", "bounceSubType": "General", **bounce},
        },
        "soft_bounce": {
            "eventType": "Bounce",
            "bounce": {"bounceType": "Transient", "bounceSubType": "MailboxFull", **bounce},
        },
        "complained": {
            "eventType": "Complaint",
            "complaint": {
                "complainedRecipients": [{"emailAddress": email}],
                "timestamp": "2025-11-24T00:42:02.000Z",
                "feedbackId": "01000157c44f053b-61b59c11-9236-11e6-8f96-7be8aexample-000001",
                "userAgent": "Mozilla/5.0",
                "complaintFeedbackType": "abuse",
                "arrivalDate": "2025-11-24T00:42:01.000Z",
            },
        },
        "opened": {
            "eventType": "Open",
            "open": {"ipAddress": "192.0.2.1", "timestamp": "2025-11-24T00:43:02.000Z", "userAgent": "Mozilla/5.0"},
        },
        "clicked": {
            "eventType": "Click",
            "click": {
                "ipAddress": "192.0.2.1",
                "link": CLICKED_URL,
                "linkTags": {"samplekey0": ["samplevalue0"]},
                "timestamp": "2025-11-24T00:44:02.000Z",
                "userAgent": "Mozilla/5.0",
            },
        },
    }
    message_id = f"22b80b92-fdea-4c2c-8f9d-bdfb0c7b{n:04d}"
    sns = {
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": "arn:aws:sns:eu-west-1:123456789012:ses-events",
        "Subject": "Amazon SES Email Event Notification",
        "Message": json.dumps({**events[event], "mail": mail}),
        "Timestamp": "2025-11-24T00:45:06.655Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLEw6JRN...",
        "SigningCertURL": "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-example.pem",
        "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=example",
    }
    # SNS posts JSON as text/plain, with its type and id repeated in headers.
    return {
        "data": json.dumps(sns),
        "content_type": "text/plain; charset=UTF-8",
        "HTTP_X_AMZ_SNS_MESSAGE_TYPE": "Notification",
        "HTTP_X_AMZ_SNS_MESSAGE_ID": message_id,
        "HTTP_X_AMZ_SNS_TOPIC_ARN": sns["TopicArn"],
    }


def brevo(event: str, delivery: Delivery, n: int = 1) -> dict[str, Any]:
    common = {
        "email": delivery.contact.email,
        "id": 26224,
        "date": "2025-11-24 17:55:09",
        "ts": EPOCH + n,
        "message-id": "<202511241755.12345678901@smtp-relay.mailin.fr>",
        "ts_event": EPOCH + n,
        "subject": "Welcome",
        "X-Mailin-custom": json.dumps({"delivery_id": str(delivery.id), "kind": delivery.kind}),
        "sending_ip": "185.41.28.109",
        "ts_epoch": (EPOCH + n) * 1000 + 223,
        "tags": [delivery.kind],
    }
    events: dict[str, dict[str, Any]] = {
        "delivered": {"event": "delivered"},
        "hard_bounce": {"event": "hard_bounce", "reason": "550 5.1.1 The email account does not exist."},
        "soft_bounce": {"event": "soft_bounce", "reason": "452 4.2.2 Mailbox full."},
        "complained": {"event": "spam"},
        "opened": {"event": "unique_opened"},
        "clicked": {"event": "click", "link": CLICKED_URL},
        "unsubscribed": {"event": "unsubscribe"},
    }
    return _json({**common, **events[event]})


def sparkpost(event: str, delivery: Delivery, n: int = 1) -> dict[str, Any]:
    email = delivery.contact.email
    common = {
        "event_id": f"92356927693813{n:06d}",
        "timestamp": str(EPOCH + n),
        "transmission_id": delivery.esp_message_id or "65832150921904138",
        "message_id": "000443ee14578172be22",
        "customer_id": "1",
        "campaign_id": delivery.kind,
        "friendly_from": "hello@example.com",
        "ip_pool": "default",
        "rcpt_to": email.lower(),
        "raw_rcpt_to": email,
        "rcpt_type": "to",
        # anymail's backend sends the message's metadata as each recipient's
        "rcpt_meta": {"delivery_id": str(delivery.id), "kind": delivery.kind},
        "rcpt_tags": [],
        "template_id": "templ-1234",
        "template_version": "1",
        "subject": "Welcome",
        "routing_domain": "example.com",
        "sending_ip": "127.0.0.1",
    }
    engagement = {
        "user_agent": "Mozilla/5.0 (Windows NT 10.0)",
        "ip_address": "172.16.0.1",
        "geo_ip": {"country": "NL"},
    }
    events: dict[str, tuple[str, dict[str, Any]]] = {
        "delivered": ("message_event", {"type": "delivery", "queue_time": "12", "num_retries": "0"}),
        "hard_bounce": (
            "message_event",
            {
                "type": "bounce",
                "bounce_class": "10",
                "error_code": "550",
                "reason": "550 5.1.1 Recipient address rejected: User unknown",
                "raw_reason": "550 5.1.1 <recipient@example.com>: Recipient address rejected: User unknown",
            },
        ),
        "soft_bounce": (
            "message_event",
            {
                "type": "bounce",
                "bounce_class": "22",
                "error_code": "452",
                "reason": "452 4.2.2 Mailbox full",
                "raw_reason": "452 4.2.2 The email account that you tried to reach is over quota",
            },
        ),
        "complained": (
            "message_event",
            {"type": "spam_complaint", "fbtype": "abuse", "report_by": "server.emailprovider.com"},
        ),
        "opened": ("track_event", {"type": "open", **engagement}),
        "clicked": (
            "track_event",
            {"type": "click", "target_link_name": "Savings", "target_link_url": CLICKED_URL, **engagement},
        ),
        "unsubscribed": ("unsubscribe_event", {"type": "list_unsubscribe", "mailfrom": "bounces@example.com"}),
    }
    event_class, fields = events[event]
    return _json([{"msys": {event_class: {**common, **fields}}}])


def mailjet(event: str, delivery: Delivery, n: int = 1) -> dict[str, Any]:
    common = {
        "time": EPOCH + n,
        "MessageID": 19421777835146490 + n,
        "Message_GUID": f"1ab23cd4-e567-8901-2345-6789f0gh{n:04d}",
        "email": delivery.contact.email,
        "mj_campaign_id": 7257,
        "mj_contact_id": 4,
        "customcampaign": delivery.kind,
        "CustomID": "",
        # anymail's backend sends the metadata as the message's EventPayload
        "Payload": json.dumps({"delivery_id": str(delivery.id), "kind": delivery.kind}),
    }
    engagement = {"ip": "127.0.0.1", "geo": "NL", "agent": "Mozilla/5.0 (Windows NT 10.0)"}
    events: dict[str, dict[str, Any]] = {
        "delivered": {
            "event": "sent",
            "mj_message_id": "19421777835146490",
            "smtp_reply": "sent (250 2.0.0 OK 1433333948 fa5si855896wjc.199 - gsmtp)",
        },
        "hard_bounce": {
            "event": "bounce",
            "blocked": False,
            "hard_bounce": True,
            "error_related_to": "recipient",
            "error": "user unknown",
            "comment": "Host or domain name not found. Name service error",
        },
        "soft_bounce": {
            "event": "bounce",
            "blocked": False,
            "hard_bounce": False,
            "error_related_to": "recipient",
            "error": "quota exceeded",
            "comment": "Mailbox full",
        },
        "complained": {"event": "spam", "source": "JMRPP"},
        "opened": {"event": "open", **engagement},
        "clicked": {"event": "click", "url": CLICKED_URL, **engagement},
        "unsubscribed": {"event": "unsub", "mj_list_id": 1, **engagement},
    }
    return _json({**common, **events[event]})


BUILDERS = {
    "postmark": postmark,
    "mailgun": mailgun,
    "sendgrid": sendgrid,
    "amazon_ses": amazon_ses,
    "brevo": brevo,
    "sparkpost": sparkpost,
    "mailjet": mailjet,
}

# Delivery.esp_name as the send path writes it (the lower-cased anymail backend's esp_name).
DELIVERY_ESP_NAMES = {
    "postmark": "postmark",
    "mailgun": "mailgun",
    "sendgrid": "sendgrid",
    "amazon_ses": "amazon ses",
    "brevo": "brevo",
    "sparkpost": "sparkpost",
    "mailjet": "mailjet",
}
