"""End-to-end send benchmark through the production worker command.

    python -m bench send --esp test|postmark|smtp --contacts 100000 [--broker amqp://...] [--compare]

N confirmed subscribers with personal digests (bench/common.py's COPY generator), all due now.
The README's production workers run as real processes:

    celery -A config worker -Q bulk,default -c 2 -n bulk@%h
    celery -A config worker -Q welcome -c 2 -n welcome@%h

then the tick (`manage.py cadence_tick`) claims everything and the workers render, hand off and
record. Meanwhile `--welcomes` contacts are confirmed one by one and their welcome is timed from
confirmation to `sent_at`, while `bulk` is saturated.

ESPs (`--esp`):
- `test`: anymail's test backend (no network: the CPU cost of the path);
- `postmark`: anymail's Postmark backend against bench/postmark_server.py (counting per recipient:
  bench/postmark_counted.py), `--latency-ms` per call;
- `smtp`: Django's SMTP backend against bench/smtp_sink.py (counting: bench/smtp_counted.py),
  `--smtp-delay-ms` before MAIL, RCPT and DATA.

Reported: mails/s end to end (first claim to last `sent_at`), the peak RSS (VmHWM) of every worker
process (main process and pool children), welcome p50/p99, and a check that every due subscriber got
exactly one mail: in the database and, for the Postmark stand-in and the SMTP sink, at the server.
`--compare` runs django-post-office (bench/post_office_bench.py) on the same mails and backend and
prints the ratio. Uses BENCH_DATABASE_URL and REDIS_URL (broker: `--broker`, default REDIS_URL).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import common

ESPS = ("test", "postmark", "smtp")
BULK_COMMAND = ["celery", "-A", "config", "worker", "-Q", "bulk,default", "-c", "2", "-n", "bulk@%h"]


def bulk_command(concurrency: int) -> list[str]:
    """The README's bulk worker command with `-c` set (deploy/cadence's BULK_CONCURRENCY)."""
    command = list(BULK_COMMAND)
    command[command.index("-c") + 1] = str(concurrency)
    return command


WELCOME_COMMAND = ["celery", "-A", "config", "worker", "-Q", "welcome", "-c", "2", "-n", "welcome@%h"]
RESULTS_LOG = common.BASE_DIR / "var" / "bench-send.jsonl"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port}")


def vm_hwm_mb(pid: int) -> float:
    """Return the peak resident memory (VmHWM) of process `pid` in MB, 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class PeakMemory:
    """Keep the VmHWM of every process in some process trees, read every second (pool children may be replaced)."""

    def __init__(self, roots: dict[str, int]) -> None:
        import psutil

        self.roots = {name: psutil.Process(pid) for name, pid in roots.items()}
        self.peaks: dict[str, dict[int, float]] = {name: {} for name in roots}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def read(self) -> None:
        import psutil

        for name, root in self.roots.items():
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
            for proc in procs:
                peak = vm_hwm_mb(proc.pid)
                self.peaks[name][proc.pid] = max(self.peaks[name].get(proc.pid, 0.0), peak)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self.read()

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.read()

    def report(self) -> dict[str, dict[str, float | list[float]]]:
        """Return per worker: the main process's peak and each pool child's, in MB."""
        out: dict[str, dict[str, float | list[float]]] = {}
        for name, root in self.roots.items():
            peaks = self.peaks[name]
            out[name] = {
                "main": round(peaks.get(root.pid, 0.0), 1),
                "children": sorted((round(v, 1) for pid, v in peaks.items() if pid != root.pid), reverse=True),
            }
        return out


@contextmanager
def stand_in(esp: str, *, latency_ms: float, smtp_delay_ms: float, workdir: Path) -> Iterator[dict[str, Any]]:
    """Start the ESP stand-in for `esp`; yield the environment the workers need and a `counts()` reader."""
    env: dict[str, str] = {}
    info: dict[str, Any] = {"env": env, "counts": lambda: None}
    if esp == "test":
        env["EMAIL_BACKEND"] = "bench.backends.EmailBackend"
        yield info
        return
    port = free_port()
    counts_file = workdir / f"{esp}-counts.json"
    if esp == "postmark":
        command = [
            sys.executable, "-m", "bench.postmark_counted", "--port", str(port), "--latency-ms", str(latency_ms),
            "--counts", str(counts_file),
        ]  # fmt: skip
        env.update(
            EMAIL_BACKEND="anymail.backends.postmark.EmailBackend",
            ANYMAIL_POSTMARK_SERVER_TOKEN="bench-server-token",
            ANYMAIL_POSTMARK_API_URL=f"http://127.0.0.1:{port}/",
        )
    else:
        command = [
            sys.executable, "-m", "bench.smtp_counted", "--port", str(port), "--latency-ms", str(smtp_delay_ms),
            "--counts", str(counts_file),
        ]  # fmt: skip
        env.update(EMAIL_URL=f"smtp://127.0.0.1:{port}")
    log = open(workdir / f"{esp}-server.log", "ab")  # noqa: SIM115  (open for the child's lifetime)
    server = subprocess.Popen(command, cwd=common.BASE_DIR, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port)
        info["port"] = port
        info["pid"] = server.pid

        def counts() -> dict[str, int] | None:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
            return json.loads(counts_file.read_text())["recipients"]

        info["counts"] = counts
        yield info
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait(timeout=30)
        log.close()


@contextmanager
def worker(command: list[str], *, env: dict[str, str], log: Path, name: str) -> Iterator[subprocess.Popen[bytes]]:
    """Run one production worker command in its own process group until the block ends."""
    out = open(log, "ab")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", *command, "--loglevel", "WARNING"],
        cwd=common.BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        yield process
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        except ProcessLookupError:
            pass
        out.close()


def wait_for_workers(names: list[str], timeout: float = 120.0) -> None:
    from config.celery import app

    deadline = time.monotonic() + timeout
    while len(app.control.ping(destination=names, timeout=1.0)) < len(names):
        if time.monotonic() > deadline:
            raise RuntimeError(f"workers {names} did not answer")


def confirm_welcomes(pending: list[Any], gap: float, confirmed_at: dict[Any, float]) -> None:
    from django.db import connection

    from preferences.services import Evidence, contact_confirm

    evidence = Evidence(ip_address="127.0.0.1", user_agent="bench", source="bench")
    try:
        for contact in pending:
            confirmed_at[contact.pk] = time.time()
            contact_confirm(contact=contact, evidence=evidence)
            time.sleep(gap)
    finally:
        connection.close()


def percentile(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, int(p * len(values)))] if values else float("nan")


def verify_counts(*, due: int, counts: dict[str, int]) -> dict[str, int]:
    """Compare the mails a stand-in server counted per bench recipient with the `due` subscribers."""
    bench_counts = {a: n for a, n in counts.items() if a.startswith("bench") and a.endswith("@example.com")}
    return {
        "server_recipients": len(bench_counts),
        "server_missing": due - len(bench_counts),
        "server_duplicates": sum(n - 1 for n in bench_counts.values() if n > 1),
    }


def verify(*, due: int, counts: dict[str, int] | None) -> dict[str, Any]:
    """Every due subscriber must have exactly one nurture delivery sent, and (at a server) one mail."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM messaging_delivery "
            "WHERE kind = 'nurture' AND status = 'sent' GROUP BY contact_id) per_contact"
        )
        contacts_sent, db_duplicates = cursor.fetchone()
        cursor.execute("SELECT status, count(*) FROM messaging_delivery WHERE kind = 'nurture' GROUP BY status")
        statuses = dict(cursor.fetchall())
    result: dict[str, Any] = {
        "db_contacts_with_mail": contacts_sent,
        "db_missing": due - contacts_sent,
        "db_duplicates": int(db_duplicates),
        "db_nurture_statuses": statuses,
    }
    if counts is not None:
        result.update(verify_counts(due=due, counts=counts))
    result["ok"] = (
        result["db_missing"] == 0
        and result["db_duplicates"] == 0
        and result.get("server_missing", 0) == 0
        and result.get("server_duplicates", 0) == 0
    )
    return result


def run(
    *,
    esp: str,
    contacts: int,
    welcomes: int,
    broker: str | None,
    latency_ms: float,
    smtp_delay_ms: float,
    timeout: float,
    stall_seconds: float = 60.0,
    generate: bool = True,
    bulk_concurrency: int = 2,
) -> dict[str, Any]:
    """Generate the data, run the workers and the tick, wait until every due mail is recorded; return figures."""
    from django.db import connection
    from django.db.models import Max
    from django.utils import timezone

    from messaging.models import Delivery
    from preferences.models import Contact

    workdir = Path(tempfile.mkdtemp(prefix="cadence-bench-send-"))
    figures: dict[str, Any] = {
        "benchmark": "send",
        "esp": esp,
        "bulk_concurrency": bulk_concurrency,
        "contacts": contacts,
        "broker": "amqp" if broker and broker.startswith("amqp") else "redis",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=common.BASE_DIR, capture_output=True, text=True
        ).stdout.strip(),
        "load_before": os.getloadavg(),
        "latency_ms": latency_ms if esp == "postmark" else None,
        "smtp_delay_ms": smtp_delay_ms if esp == "smtp" else None,
    }
    if generate:
        print(f"Generating {contacts:,} due contacts with COPY")
        common.generate(contacts=contacts, due=contacts)
    if broker:
        os.environ["CELERY_BROKER_URL"] = broker
    common.purge_queues("bulk", "welcome", "default")
    pending = [
        Contact.objects.create(email=f"welcome{n}-{time.time_ns()}@example.org", status=Contact.Status.PENDING)
        for n in range(welcomes)
    ]
    connection.close()

    with ExitStack() as stack:
        server = stack.enter_context(stand_in(esp, latency_ms=latency_ms, smtp_delay_ms=smtp_delay_ms, workdir=workdir))
        env = dict(os.environ)
        env.update(DATABASE_URL=common.bench_database_url(), LOG_LEVEL="WARNING", **server["env"])
        if broker:
            env["CELERY_BROKER_URL"] = broker
        bulk_cmd = bulk_command(bulk_concurrency)
        print(f"Workers: {' '.join(bulk_cmd)} and {' '.join(WELCOME_COMMAND)} (log in {workdir})")
        bulk = stack.enter_context(worker(bulk_cmd, env=env, log=workdir / "bulk.log", name="bulk"))
        welcome = stack.enter_context(worker(WELCOME_COMMAND, env=env, log=workdir / "welcome.log", name="welcome"))
        host = socket.gethostname()
        wait_for_workers([f"bulk@{host}", f"welcome@{host}"])
        memory = stack.enter_context(PeakMemory({"bulk": bulk.pid, "welcome": welcome.pid}))
        cpu_before = _cpu_seconds(server.get("pid"))

        started = timezone.now()
        t0 = time.monotonic()
        tick = subprocess.run(
            [sys.executable, "manage.py", "cadence_tick", "--max-batches", str(10**7), "--max-seconds", str(10**7)],
            cwd=common.BASE_DIR, env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        figures["tick"] = {"output": tick.stdout.strip(), "seconds_with_process_start": time.monotonic() - t0}
        print("  tick:", figures["tick"]["output"])

        confirmed_at: dict[Any, float] = {}
        confirmer = threading.Thread(target=confirm_welcomes, args=(pending, 0.1, confirmed_at), daemon=True)
        confirmer.start()
        nurture = Delivery.objects.filter(kind="nurture")
        waiting = nurture.filter(status__in=["queued", "sending"])
        last_report = 0.0
        last_left, last_change = -1, time.monotonic()
        while time.monotonic() - t0 < timeout:
            time.sleep(0.5)
            left = waiting.count()
            if left != last_left:
                last_left, last_change = left, time.monotonic()
            elif time.monotonic() - last_change > stall_seconds:
                # Nothing moved: the tasks are gone (a broker flushed under the run); the guard would
                # resend them later, this run reports what it has.
                print(f"  no progress for {stall_seconds:.0f} s with {left:,} waiting: stopping", flush=True)
                figures["stalled_with_waiting"] = left
                break
            if time.monotonic() - last_report > 10:
                print(f"  {time.monotonic() - t0:6.0f} s: {left:,} waiting", flush=True)
                last_report = time.monotonic()
            if left == 0:
                break
        confirmer.join(timeout=welcomes * 0.2 + 30)
        welcome_deadline = time.monotonic() + 30
        while time.monotonic() < welcome_deadline and (
            Delivery.objects.filter(kind="welcome", contact_id__in=list(confirmed_at), sent_at=None).exists()
        ):
            time.sleep(0.5)
        figures["stand_in_cpu_seconds"] = (
            None if cpu_before is None else _cpu_seconds(server.get("pid"), before=cpu_before)
        )
        figures["load_after"] = os.getloadavg()
        sent = nurture.filter(status="sent")
        count = sent.count()
        last = sent.aggregate(last=Max("sent_at"))["last"] or timezone.now()
        seconds = (last - started).total_seconds()
        figures.update(
            mails_sent=count, seconds=round(seconds, 2), mails_per_second=round(count / max(seconds, 1e-9), 1)
        )
        memory.__exit__(None, None, None)
        figures["peak_rss_mb"] = memory.report()
        latencies = sorted(
            d.sent_at.timestamp() - confirmed_at[d.contact_id]
            for d in Delivery.objects.filter(kind="welcome", contact_id__in=list(confirmed_at)).exclude(sent_at=None)
            if d.sent_at is not None
        )
        figures["welcome"] = {
            "asked": welcomes,
            "sent": len(latencies),
            "p50_s": round(percentile(latencies, 0.50), 3),
            "p99_s": round(percentile(latencies, 0.99), 3),
            "max_s": round(latencies[-1], 3) if latencies else None,
            "mean_s": round(statistics.fmean(latencies), 3) if latencies else None,
        }
        counts = server["counts"]()
        figures["verify"] = verify(due=contacts, counts=counts)
    common.purge_queues("bulk", "welcome", "default")
    figures["workdir"] = str(workdir)
    return figures


def _cpu_seconds(pid: int | None, before: float = 0.0) -> float | None:
    if pid is None:
        return None
    import psutil

    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return None
    return round(times.user + times.system - before, 2)


def record(figures: dict[str, Any]) -> None:
    RESULTS_LOG.parent.mkdir(exist_ok=True)
    with RESULTS_LOG.open("a") as log:
        log.write(json.dumps(figures, default=str) + "\n")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        prog="python -m bench send", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--esp", choices=ESPS, default="test")
    parser.add_argument("--contacts", type=int, default=20_000, help="due subscribers")
    parser.add_argument("--welcomes", type=int, default=100, help="welcomes timed while bulk is saturated")
    parser.add_argument("--broker", help="CELERY_BROKER_URL for the run (e.g. amqp://guest:guest@127.0.0.1:5672//)")
    parser.add_argument("--latency-ms", type=float, default=60.0, help="Postmark stand-in: delay per API call")
    parser.add_argument("--smtp-delay-ms", type=float, default=3.0, help="SMTP sink: delay per command")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait for every mail")
    parser.add_argument("--stall-seconds", type=float, default=60.0, help="stop when nothing moves this long")
    parser.add_argument("--compare", action="store_true", help="also run django-post-office and print the ratio")
    parser.add_argument("--post-office-processes", type=int, default=2)
    parser.add_argument("--bulk-concurrency", type=int, default=2, help="bulk worker processes (-c; the README runs 2)")
    args = parser.parse_args(argv)

    common.setup(migrate=True)
    figures = run(
        esp=args.esp,
        contacts=args.contacts,
        welcomes=args.welcomes,
        broker=args.broker,
        latency_ms=args.latency_ms,
        smtp_delay_ms=args.smtp_delay_ms,
        timeout=args.timeout,
        stall_seconds=args.stall_seconds,
        bulk_concurrency=args.bulk_concurrency,
    )
    if args.compare:
        figures["post_office"] = post_office(args, figures)
        ours, theirs = figures["mails_per_second"], figures["post_office"]["mails_per_second"]
        figures["ratio_ours_to_post_office"] = round(ours / theirs, 2) if theirs else None
    record(figures)
    print(json.dumps(figures, indent=2, default=str))
    if args.compare:
        print(
            f"ours {figures['mails_per_second']:,.0f} mails/s, post_office "
            f"{figures['post_office']['mails_per_second']:,.0f} mails/s: ratio {figures['ratio_ours_to_post_office']}"
        )
    if not figures["verify"]["ok"]:
        sys.exit(1)
    return figures


def post_office(args: argparse.Namespace, ours: dict[str, Any]) -> dict[str, Any]:
    """Run bench.post_office_bench in a process of its own (its own settings and database); return its figures."""
    command = [
        sys.executable, "-m", "bench.post_office_bench", "--esp", args.esp, "--contacts", str(args.contacts),
        "--latency-ms", str(args.latency_ms), "--smtp-delay-ms", str(args.smtp_delay_ms),
        "--processes", str(args.post_office_processes), "--json",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run(command, cwd=common.BASE_DIR, env=env, capture_output=True, text=True)
    if done.returncode:
        print(done.stdout, done.stderr, file=sys.stderr)
        raise RuntimeError("the django-post-office run failed")
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
