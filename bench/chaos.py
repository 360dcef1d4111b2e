"""A distributed run that survives faults: beat and 2 workers, SIGKILLs and a Redis restart.

    DATABASE_URL=postgres://... .venv/bin/python -m bench.chaos --contacts 100000

Without DATABASE_URL it uses BENCH_DATABASE_URL's name plus `_chaos` (created and migrated).

Real processes against PostgreSQL and a redis-server of its own (a free port; never the shared
one): one `celery beat` (tick every second, guard every 5 s, see bench/chaos_app.py) and
`--workers` worker processes. N confirmed contacts are made due at once. While the mail flows,
a worker is killed with SIGKILL `--kills` times (and restarted), and Redis is killed and
restarted once, half-way, losing every message in it. Then the guard must bring everyone in.

Mail goes, by default (`--esp postmark`), through anymail's real Postmark backend to the Postmark
stand-in (bench/postmark_server.py), which posts a Delivery webhook for each accepted message to
the service's own web process (gunicorn, `/anymail/postmark/tracking/`, basic auth), as Postmark
does. A worker killed between handing mail over and recording it leaves deliveries in `sending`;
the guard records those the ESP reported on as sent and resends only the others. With `--esp file`
(Django's file backend: no ESP, no events, like an SMTP relay) nothing can tell the guard what a
killed worker handed over, so up to one unit per lane per kill is sent twice.

The verdict is read where the mail arrived (the stand-in's count per recipient, or the files), not
from the database: every contact must have received exactly one mail for the slot.
Prints sent, duplicates, missing and the time to recover (last fault -> nobody missing).
Exit status 0 only when there are no duplicates and nobody is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Without DATABASE_URL, a database of its own next to the bench database (earlier runs' contacts are
# deleted); set before the Celery app below loads the settings.
from bench.common import bench_database_url, ensure_secrets  # noqa: E402

ensure_secrets()
OWN_DATABASE = "DATABASE_URL" not in os.environ
if OWN_DATABASE:
    os.environ["DATABASE_URL"] = f"{bench_database_url()}_chaos"

from bench.chaos_app import DEFAULT_CLAIM, DEFAULT_GUARD  # noqa: E402
from bench.postmark_counted import CountingPostmarkServer  # noqa: E402
from bench.redisproc import RedisProcess, free_port  # noqa: E402

ESPS = ("postmark", "file")

# A welcome step beyond any series: the contacts are in the nurture phase.
WELCOME_DONE = 1000
TO_HEADER = re.compile(rb"^To: (.+)$", re.MULTILINE)


@dataclass
class Result:
    contacts: int
    sent: int
    duplicates: int
    missing: int
    kills: int  # of the sending workers
    redis_restarts: int
    crashes: int  # processes that exited on their own and were restarted, as a supervisor would
    time_to_recover: float | None  # seconds from the last fault until nobody was missing
    elapsed: float
    events_worker_kills: int = 0  # of the events worker (the ESP webhooks' processing)

    @property
    def ok(self) -> bool:
        return self.duplicates == 0 and self.missing == 0


def missing_entry_points(claim: str, guard: str) -> list[str]:
    """Return those of the tick/guard entry points that cannot be imported."""
    import django

    django.setup()
    from bench.chaos_app import resolve

    missing = []
    for spec in (claim, guard):
        try:
            resolve(spec)
        except (ImportError, AttributeError):
            missing.append(spec)
    return missing


def make_contacts_due(run: str, count: int) -> None:
    """Delete earlier runs' contacts; create `count` confirmed contacts, each with one nurture slot due."""
    from django.utils import timezone

    from cadence.models import Schedule
    from preferences.models import Contact

    # Earlier runs' contacts would be claimed and repaired too and blur the figures.
    Contact.objects.filter(source__startswith="chaos-").delete()
    now = timezone.now()
    for start in range(0, count, 5000):
        contacts = [
            Contact(
                email=f"chaos-{run}-{i}@chaos.example.org",
                locale="en",
                status=Contact.Status.CONFIRMED,
                confirmed_at=now - timedelta(days=40),
                source=f"chaos-{run}",
            )
            for i in range(start, min(start + 5000, count))
        ]
        Contact.objects.bulk_create(contacts, batch_size=1000)
        # Past the welcome series, last mailed a month ago: exactly one nurture slot is due per contact.
        Schedule.objects.bulk_create(
            [
                Schedule(
                    contact=c,
                    next_due_at=now - timedelta(seconds=random.uniform(0, 600)),
                    last_sent_at=now - timedelta(days=31),
                    welcome_step=WELCOME_DONE,
                )
                for c in contacts
            ],
            batch_size=1000,
        )


def mails_per_recipient(outbox: Path, run: str) -> Counter[str]:
    """Count the mails in the file outbox per recipient of this run."""
    marker = f"chaos-{run}-".encode()
    counts: Counter[str] = Counter()
    for path in outbox.glob("*"):
        for match in TO_HEADER.finditer(path.read_bytes()):
            address = match.group(1).strip()
            if marker in address:
                counts[address.decode()] += 1
    return counts


def contacts_without_sent_mail(run: str) -> int:
    """Return how many of this run's contacts have no SENT delivery yet (the progress, from the database)."""
    from django.db import connection

    from messaging.models import Delivery
    from preferences.models import Contact

    connection.close_if_unusable_or_obsolete()
    run_contacts = Contact.objects.filter(source=f"chaos-{run}")
    sent = Delivery.objects.filter(contact__source=f"chaos-{run}", status=Delivery.Status.SENT)
    return run_contacts.count() - sent.values("contact").distinct().count()


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # so that `finally` stops the processes and the Redis server


class CrashLoop(RuntimeError):
    """The processes keep dying right after they start: a broken setup, not a fault of the run."""


class Processes:
    """Beat and the workers, started with the same environment, killable one by one."""

    # A process that dies this soon after its start, this many times, is a crash loop.
    EARLY_EXIT_SECONDS = 10.0
    EARLY_EXITS_ALLOWED = 10

    def __init__(self, env: dict[str, str], workdir: Path, workers: int, log: Path) -> None:
        self.env, self.workdir, self.log = env, workdir, log
        self.workers: list[subprocess.Popen[bytes] | None] = [None] * workers
        self.events_worker: subprocess.Popen[bytes] | None = None
        self.beat: subprocess.Popen[bytes] | None = None
        self.web: subprocess.Popen[bytes] | None = None
        self.started_at: dict[int, float] = {}
        self.early_exits = 0

    def _start(
        self, *args: str, command: tuple[str, ...] = ("celery", "-A", "bench.chaos_app")
    ) -> subprocess.Popen[bytes]:
        out = open(self.log, "ab")  # noqa: SIM115  (kept open for the child's lifetime)
        process = subprocess.Popen(
            [sys.executable, "-m", *command, *args],
            cwd=BASE_DIR,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        self.started_at[process.pid] = time.monotonic()
        return process

    def _exited_on_its_own(self, process: subprocess.Popen[bytes]) -> None:
        """Count an early exit; raise CrashLoop with the log's tail when there are too many."""
        lived = time.monotonic() - self.started_at.pop(process.pid, 0.0)
        if lived < self.EARLY_EXIT_SECONDS:
            self.early_exits += 1
        if self.early_exits > self.EARLY_EXITS_ALLOWED:
            tail = self.log.read_text(errors="replace").splitlines()[-40:]
            raise CrashLoop(
                f"{self.early_exits} processes exited within {self.EARLY_EXIT_SECONDS:.0f} s of their start; "
                f"the end of {self.log}:\n" + "\n".join(tail)
            )

    def start_worker(self, index: int) -> None:
        self.workers[index] = self._start(
            "worker",
            "-Q",
            "welcome,bulk,default",
            "-P",
            "threads",
            "-c",
            "4",
            "-n",
            f"chaos{index}-{uuid.uuid4().hex[:6]}@%h",
            "--without-mingle",
            "--without-gossip",
            "-l",
            "WARNING",
        )

    def start_events_worker(self) -> None:
        """The production set's worker-events: it processes the ESP webhook posts the web stored."""
        self.events_worker = self._start(
            "worker", "-Q", "events", "-c", "1", "-n", f"chaos-events-{uuid.uuid4().hex[:6]}@%h",
            "--without-mingle", "--without-gossip", "-l", "WARNING",
        )  # fmt: skip

    def kill_events_worker(self) -> None:
        """SIGKILL the events worker (mid-batch, most likely) and start a new one in its place."""
        if self.events_worker is not None:
            os.kill(self.events_worker.pid, signal.SIGKILL)
            self.events_worker.wait()
            self.started_at.pop(self.events_worker.pid, None)
        self.start_events_worker()

    def start(self) -> None:
        for index in range(len(self.workers)):
            self.start_worker(index)
        self.start_events_worker()
        self.start_beat()

    def start_beat(self) -> None:
        self.beat = self._start(
            "beat", "-S", "celery.beat:PersistentScheduler", "-s", str(self.workdir / "beat-schedule"), "-l", "WARNING"
        )

    def start_web(self, port: int) -> None:
        """The service's web process (it takes the ESP's webhooks), as in production: gunicorn."""
        self.web = self._start(
            "config.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "4", command=("gunicorn",)
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.web.poll() is not None:
                self._exited_on_its_own(self.web)
                self.web = self._start(
                    "config.wsgi",
                    "--bind",
                    f"127.0.0.1:{port}",
                    "--workers",
                    "2",
                    "--threads",
                    "4",
                    command=("gunicorn",),
                )
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        raise CrashLoop(f"the web process did not answer on port {port} within 60 s; see {self.log}")

    def supervise(self) -> int:
        """Restart every worker (and beat) that exited on its own, as systemd or Kubernetes would; return how many."""
        restarted = 0
        for index, process in enumerate(self.workers):
            if process is not None and process.poll() is not None:
                self._exited_on_its_own(process)
                self.start_worker(index)
                restarted += 1
        if self.events_worker is not None and self.events_worker.poll() is not None:
            self._exited_on_its_own(self.events_worker)
            self.start_events_worker()
            restarted += 1
        if self.beat is not None and self.beat.poll() is not None:
            self._exited_on_its_own(self.beat)
            self.start_beat()
            restarted += 1
        return restarted

    def kill_worker(self, index: int) -> None:
        """SIGKILL one worker (no warm shutdown, no acks) and start a new one in its place."""
        process = self.workers[index]
        if process is not None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            self.started_at.pop(process.pid, None)
        self.start_worker(index)

    def stop(self) -> None:
        for process in [*self.workers, self.events_worker, self.beat, self.web]:
            if process is not None and process.poll() is None:
                process.terminate()
        for process in [*self.workers, self.events_worker, self.beat, self.web]:
            if process is not None:
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()


def run(
    *,
    contacts: int,
    workers: int = 2,
    kills: int = 3,
    fault_interval: float = 5.0,
    timeout: float = 600.0,
    claim: str = DEFAULT_CLAIM,
    guard: str = DEFAULT_GUARD,
    guard_kwargs: dict | None = None,
    database_url: str | None = None,
    visibility_timeout: int = 60,
    task_time_limit: int = 45,
    log: Path | None = None,
    esp: str = "postmark",
) -> Result:
    """Run the chaos scenario and return its figures (see the module docstring)."""
    import django

    django.setup()
    run_id = uuid.uuid4().hex[:8]
    workdir = Path(tempfile.mkdtemp(prefix="cadence-chaos-"))
    outbox = workdir / "outbox"
    outbox.mkdir()
    redis_server = RedisProcess().start()
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": database_url or os.environ["DATABASE_URL"],
            "REDIS_URL": redis_server.url(),
            "CELERY_BROKER_URL": redis_server.url(),
            # Short limits so that lost work comes back within the run; a task is killed before
            # Redis hands its message to another worker.
            "CELERY_VISIBILITY_TIMEOUT": str(visibility_timeout),
            "CELERY_TASK_TIME_LIMIT": str(task_time_limit),
            "CELERY_TASK_SOFT_TIME_LIMIT": str(task_time_limit - 10),
            # Retry waits must stay below the visibility timeout (the settings refuse to load otherwise).
            "SEND_RETRY_BACKOFF_MAX": str(visibility_timeout // 2),
            "SEND_RETRY_AFTER_MAX": str(visibility_timeout // 2),
            "CHAOS_CLAIM": claim,
            "CHAOS_GUARD": guard,
            "CHAOS_GUARD_KWARGS": json.dumps(guard_kwargs or {}),
            "PYTHONUNBUFFERED": "1",
        }
    )
    if esp not in ESPS:
        raise ValueError(f"esp must be one of {ESPS}, not {esp!r}")
    standin: CountingPostmarkServer | None = None
    web_port = free_port()
    if esp == "postmark":
        webhook_auth = ("chaos", uuid.uuid4().hex)
        standin = CountingPostmarkServer(
            latency=0.01,
            webhook_url=f"http://127.0.0.1:{web_port}/anymail/postmark/tracking/",
            webhook_auth=webhook_auth,
        )
        standin.keep_messages = False
        env.pop("EMAIL_URL", None)
        env.update(
            {
                "EMAIL_BACKEND": "anymail.backends.postmark.EmailBackend",
                "ANYMAIL_POSTMARK_SERVER_TOKEN": "chaos-token",
                "ANYMAIL_POSTMARK_API_URL": standin.url,
                "ANYMAIL_WEBHOOK_SECRET": ":".join(webhook_auth),
                "ALLOWED_HOSTS": "127.0.0.1,localhost",
            }
        )
    else:
        env.pop("EMAIL_URL", None)
        env.update(
            {
                "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
                "EMAIL_FILE_PATH": str(outbox),
                # The workers run the production start-up checks; the file backend is meant here.
                "ALLOW_DEV_MAIL_BACKEND": "true",
            }
        )
    processes = Processes(env, workdir, workers, log or workdir / "processes.log")
    started = time.monotonic()
    make_contacts_due(run_id, contacts)
    kill_count = redis_restarts = crashes = events_kills = 0
    recovered_at: float | None = None

    def wait(seconds: float) -> None:
        nonlocal crashes
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            crashes += processes.supervise()
            time.sleep(min(0.5, max(end - time.monotonic(), 0)))

    previous_sigterm = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        if standin is not None:
            standin.start()
            processes.start_web(web_port)
        processes.start()
        # The faults: SIGKILL a worker every `fault_interval` seconds; restart Redis half-way.
        redis_after = max(kills // 2, 1)
        for fault in range(kills):
            wait(fault_interval)
            processes.kill_worker(fault % workers)
            kill_count += 1
            if fault + 1 == redis_after:
                wait(fault_interval / 2)
                redis_server.restart()
                redis_restarts += 1
                if standin is not None:
                    processes.kill_events_worker()
                    events_kills += 1
        last_fault = time.monotonic()
        deadline = last_fault + timeout
        while time.monotonic() < deadline:
            if contacts_without_sent_mail(run_id) == 0:
                recovered_at = time.monotonic()
                break
            wait(1.0)
        wait(2.0)  # let any mail in flight land, so a duplicate would be seen
    finally:
        signal.signal(signal.SIGTERM, previous_sigterm)
        processes.stop()
        redis_server.cleanup()
        if standin is not None:
            standin.stop()
    if standin is not None:
        marker = f"chaos-{run_id}-"
        counts = Counter({address: n for address, n in standin.recipients.items() if marker in address})
    else:
        counts = mails_per_recipient(outbox, run_id)
    return Result(
        contacts=contacts,
        sent=sum(counts.values()),
        duplicates=sum(n - 1 for n in counts.values() if n > 1),
        missing=contacts - len(counts),
        kills=kill_count,
        redis_restarts=redis_restarts,
        crashes=crashes,
        time_to_recover=None if recovered_at is None else round(recovered_at - last_fault, 1),
        elapsed=round(time.monotonic() - started, 1),
        events_worker_kills=events_kills,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--kills", type=int, default=4)
    parser.add_argument("--fault-interval", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait for recovery")
    parser.add_argument("--claim", default=DEFAULT_CLAIM, help="module:function of the tick's claim")
    parser.add_argument("--guard", default=DEFAULT_GUARD, help="module:function of the silence guard")
    parser.add_argument(
        "--guard-kwargs",
        default='{"stuck_after": {"seconds": 60}}',
        help='JSON of extra keyword arguments for the guard; {"seconds": n} becomes a timedelta',
    )
    parser.add_argument("--visibility-timeout", type=int, default=60)
    parser.add_argument("--task-time-limit", type=int, default=45)
    parser.add_argument("--migrate", action="store_true", help="run migrations on DATABASE_URL first")
    parser.add_argument(
        "--esp",
        choices=ESPS,
        default="postmark",
        help="postmark: anymail's Postmark backend, the stand-in and its Delivery webhooks; file: files, no events",
    )
    args = parser.parse_args()
    if OWN_DATABASE:
        from bench.common import _create_database

        _create_database(os.environ["DATABASE_URL"])
        args.migrate = True
    missing = missing_entry_points(args.claim, args.guard)
    if missing:
        raise SystemExit(f"The cadence engine is not on this branch: cannot import {', '.join(missing)}.")
    if args.migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
    result = run(
        contacts=args.contacts,
        workers=args.workers,
        kills=args.kills,
        fault_interval=args.fault_interval,
        timeout=args.timeout,
        claim=args.claim,
        guard=args.guard,
        guard_kwargs=json.loads(args.guard_kwargs),
        visibility_timeout=args.visibility_timeout,
        task_time_limit=args.task_time_limit,
        log=BASE_DIR / "var" / "chaos.log",
        esp=args.esp,
    )
    print(json.dumps({**asdict(result), "ok": result.ok}, indent=2))
    sys.exit(0 if result.ok else 1)


if __name__ == "__main__":
    main()
