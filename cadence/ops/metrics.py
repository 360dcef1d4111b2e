"""Prometheus metrics, read from PostgreSQL and Redis at scrape time by one custom collector."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from cadence.kinds import Kind
from cadence.ops import figures as ops
from messaging.intake import intake_figures
from messaging.models import Delivery, SendBrake

logger = logging.getLogger(__name__)


class OpsCollector(Collector):
    """Yield the ops figures; a source that fails is reported in `cadence_scrape_errors`, not raised."""

    def collect(self) -> Iterator[Metric]:
        errors = GaugeMetricFamily(
            "cadence_scrape_errors", "1 when a source could not be read during this scrape.", labels=["source"]
        )
        for source, collect in (
            ("queues", self._queues),
            ("deliveries", self._deliveries),
            ("promise", self._promise),
            ("tick", self._tick),
            ("welcome_latency", self._welcome_latency),
            ("webhook_events", self._webhook_events),
            ("event_intake", self._event_intake),
        ):
            try:
                yield from collect()
                errors.add_metric([source], 0)
            except Exception:
                logger.exception("metrics source failed", extra={"source": source})
                errors.add_metric([source], 1)
        yield errors

    def _queues(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "cadence_queue_depth", "Messages waiting in a Celery queue (all priority lists).", labels=["queue"]
        )
        for queue, n in ops.queue_depths().items():
            depth.add_metric([queue], n)
        yield depth
        yield GaugeMetricFamily(
            "cadence_queue_unacked", "Messages taken by a worker and not yet acknowledged.", value=ops.unacked_count()
        )

    def _deliveries(self) -> Iterator[Metric]:
        deliveries = GaugeMetricFamily(
            "cadence_deliveries", "Deliveries by status and kind.", labels=["status", "kind"]
        )
        counts = ops.deliveries_by_status_and_kind()
        for status in Delivery.Status.values:
            for kind in Kind.values:
                deliveries.add_metric([status, kind], counts.get((status, kind), 0))
        yield deliveries
        held = GaugeMetricFamily(
            "cadence_sends_braked",
            "Mails held per send stopped by the bounce and complaint brake (until resumed or cancelled).",
            labels=["send_key"],
        )
        for send_key, held_count in SendBrake.objects.filter(status=SendBrake.Status.HELD).values_list(
            "send_key", "held_count"
        ):
            held.add_metric([send_key], held_count)
        yield held
        # A gauge, not a counter: a retry from the ops page takes a failure away.
        errors = GaugeMetricFamily(
            "cadence_esp_errors",
            "Failed deliveries, and queued ones waiting after a transient ESP error, by error class.",
            labels=["error_class"],
        )
        found = ops.esp_errors()
        classes = ("transient", "recipient_refused", "permanent", "retries_exhausted", "render_error", "other")
        for error_class in classes:
            errors.add_metric([error_class], found.get(error_class, 0))
        yield errors

    def _promise(self) -> Iterator[Metric]:
        overdue = GaugeMetricFamily(
            "cadence_subscribers_overdue",
            "Subscribers the no-silence promise currently fails, by reason.",
            labels=["reason"],
        )
        for reason, n in ops.overdue_by_reason().items():
            overdue.add_metric([reason], n)
        yield overdue
        yield GaugeMetricFamily(
            "cadence_marketing_interval_breaches",
            "People who got two marketing mails inside one interval, outside the welcome series (last 7 days; "
            "expected 0).",
            value=ops.marketing_interval_breaches(),
        )
        yield GaugeMetricFamily(
            "cadence_tick_lag_seconds", "Age of the oldest due schedule (0 when none is due).", value=ops.tick_lag()
        )

    def _tick(self) -> Iterator[Metric]:
        age = ops.last_tick_age()
        yield GaugeMetricFamily(
            "cadence_last_tick_age_seconds",
            "Seconds since the tick last ran (NaN when it never did).",
            value=float("nan") if age is None else age,
        )

    def _welcome_latency(self) -> Iterator[Metric]:
        histogram = ops.welcome_latency()
        yield HistogramMetricFamily(
            "cadence_welcome_latency_seconds",
            "Confirmation to welcome sent, for welcomes sent in the last 24 hours.",
            buckets=histogram.cumulative(),
            sum_value=histogram.total,
        )

    def _webhook_events(self) -> Iterator[Metric]:
        counts = ops.webhook_events()
        if counts is None:  # the webhook event log is not installed
            return
        events = GaugeMetricFamily(
            "cadence_webhook_events",
            "ESP webhook events of the last 24 hours, by ESP and type.",
            labels=["esp", "type"],
        )
        for (esp, kind), n in sorted(counts.items()):
            events.add_metric([esp, kind], n)
        yield events

    def _event_intake(self) -> Iterator[Metric]:
        figures = intake_figures()
        yield GaugeMetricFamily(
            "cadence_event_intake_lag_seconds",
            "Age of the oldest ESP webhook post not processed yet (0 when none waits).",
            value=figures.lag_seconds,
        )
        yield GaugeMetricFamily(
            "cadence_event_posts_waiting", "ESP webhook posts stored and not processed yet.", value=figures.waiting
        )
        yield GaugeMetricFamily(
            "cadence_event_posts_quarantined",
            "ESP webhook posts that could not be parsed, kept for ops (admin: ESP event posts).",
            value=figures.quarantined,
        )
        yield CounterMetricFamily(
            "cadence_event_posts_accepted", "ESP webhook posts taken (rate(): posts/s).", value=figures.accepted_total
        )
        yield CounterMetricFamily(
            "cadence_event_posts_processed",
            "ESP webhook posts processed or quarantined (rate(): posts/s).",
            value=max(0, figures.accepted_total - figures.waiting),
        )
        yield CounterMetricFamily(
            "cadence_delivery_events_recorded", "ESP events recorded (rate(): events/s).", value=figures.events_total
        )


def registry() -> CollectorRegistry:
    """Return a registry holding only the ops collector (no process metrics of the web worker)."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(OpsCollector())
    return reg
