"""django-post-office sending the same mails as the send benchmark, through the same ESP stand-ins.

    python -m bench post_office --esp test|postmark|smtp --contacts 20000 [--processes 2]

Its own settings (bench/post_office_settings.py) and database. One HTML template with the person's
name, three digest items and an unsubscribe link (rendered at delivery, as ours is), queued for N
recipients with `mail.send_many`, then sent with post_office's own multiprocess sending
(`send_queued_mail_until_done(processes=...)`, what `manage.py send_queued_mail -p N` runs).
Reports queueing, sending and end-to-end mails/s and checks that each recipient got one mail.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import common

SUBJECT = "{{ name }}, three reads picked for you"
TEXT = """Hello {{ name }},
{% for item in items %}
{{ item.title }}
{{ item.summary }}
{{ item.url }}
{% endfor %}
Change your preferences: {{ preferences_url }}
Unsubscribe: {{ unsubscribe_url }}
"""
HTML = """<!doctype html><html><body style="font-family: Arial, sans-serif; color: #222">
<p style="font-size: 16px">Hello {{ name }},</p>
{% for item in items %}<div style="margin: 16px 0; padding: 12px; border-left: 4px solid #0a6">
<h2 style="font-size: 18px; margin: 0"><a href="{{ item.url }}" style="color: #0a6">{{ item.title }}</a></h2>
<p style="margin: 4px 0">{{ item.summary }}</p></div>{% endfor %}
<p style="font-size: 12px; color: #666"><a href="{{ preferences_url }}">Your preferences</a> &middot;
<a href="{{ unsubscribe_url }}">Unsubscribe</a></p></body></html>"""


def setup() -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.post_office_settings"
    url = os.environ.get("BENCH_PO_DATABASE_URL", f"{common.bench_database_url()}_po")
    common._create_database(url)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def recipients(contacts: int) -> list[dict[str, Any]]:
    """Return the keyword arguments of `mail.send` for each recipient: name, a personal digest, links."""
    topics = ["saving", "mortgage", "insurance", "pension", "energy", "investing"]
    out = []
    for n in range(contacts):
        language = "nl" if n % 3 else "en"
        items = [
            {
                "title": f"{topics[(n + k) % 6]} {language} {k}",
                "summary": "A summary that is about as long as a real one, give or take a few words.",
                "url": f"https://example.com/{topics[(n + k) % 6]}/{language}/{k}",
            }
            for k in range(3)
        ]
        token = f"{n:08x}-bench-token"
        out.append(
            {
                "recipients": [f"bench{n}@example.com"],
                "template": "digest",
                "render_on_delivery": True,
                "context": {
                    "name": "Sam",
                    "items": items,
                    "preferences_url": f"https://cadence.example.org/preferences/{token}/",
                    "unsubscribe_url": f"https://cadence.example.org/unsubscribe/{token}/",
                },
            }
        )
    return out


def run(*, esp: str, contacts: int, processes: int, latency_ms: float, smtp_delay_ms: float) -> dict[str, Any]:
    from bench.send import stand_in

    workdir = Path(tempfile.mkdtemp(prefix="cadence-bench-po-"))
    with stand_in(esp, latency_ms=latency_ms, smtp_delay_ms=smtp_delay_ms, workdir=workdir) as server:
        os.environ.update({k: v for k, v in server["env"].items() if k != "DJANGO_SETTINGS_MODULE"})
        setup()
        from django.db import connection
        from post_office import mail
        from post_office.models import Email, EmailTemplate

        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE post_office_log, post_office_email, post_office_emailtemplate CASCADE")
        EmailTemplate.objects.create(name="digest", subject=SUBJECT, content=TEXT, html_content=HTML)
        kwargs_list = recipients(contacts)
        t0 = time.monotonic()
        for start in range(0, contacts, 5000):
            mail.send_many(kwargs_list[start : start + 5000])
        queued = time.monotonic() - t0
        connection.close()
        mail.send_queued_mail_until_done(lockfile=str(workdir / "post_office"), processes=processes)
        total = time.monotonic() - t0
        sent = Email.objects.filter(status=0).count()
        counts = server["counts"]()
    figures: dict[str, Any] = {
        "esp": esp,
        "contacts": contacts,
        "processes": processes,
        "sent": sent,
        "queue_seconds": round(queued, 2),
        "send_seconds": round(total - queued, 2),
        "seconds": round(total, 2),
        "mails_per_second": round(sent / total, 1),
        "send_only_mails_per_second": round(sent / max(total - queued, 1e-9), 1),
    }
    if counts is not None:
        bench_counts = {a: n for a, n in counts.items() if a.startswith("bench")}
        figures.update(
            server_missing=contacts - len(bench_counts),
            server_duplicates=sum(n - 1 for n in bench_counts.values() if n > 1),
        )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench post_office", description=__doc__)
    parser.add_argument("--esp", choices=("test", "postmark", "smtp"), default="test")
    parser.add_argument("--contacts", type=int, default=20_000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--latency-ms", type=float, default=60.0)
    parser.add_argument("--smtp-delay-ms", type=float, default=3.0)
    parser.add_argument("--json", action="store_true", help="print only the figures, as one JSON line")
    args = parser.parse_args()
    figures = run(
        esp=args.esp,
        contacts=args.contacts,
        processes=args.processes,
        latency_ms=args.latency_ms,
        smtp_delay_ms=args.smtp_delay_ms,
    )
    print(json.dumps(figures) if args.json else json.dumps(figures, indent=2))
    if figures["sent"] != args.contacts or figures.get("server_missing") or figures.get("server_duplicates"):
        sys.exit(1)


if __name__ == "__main__":
    main()
