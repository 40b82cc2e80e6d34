"""The Prometheus metrics of one service: requests, events stored, published and applied, group
commit batches, consumer lag (messages and the oldest unapplied event's age), the relay's
backlog (events and age), scheduler backlog, parked rules, the calendar's days left. The
HTTP layer counts requests into them (``shared.http.metrics``)."""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from shared.eventstore.group_commit import GroupCommitter
from shared.kernel.privacy.redaction import FAILURES as SCRUBBER_FAILURES


class ScrubberFailures(Collector):
    """``sixstep_scrubber_failures_total{service,outcome}``: texts the free-text scrubber failed
    on in this process (``outcome="refused"``: a caller's, answered 422 to be said otherwise;
    ``"replaced"``: a log line's, a dead letter's or an export's, blanked whole). Read from the
    scrubber's own counts at each scrape (it sits below the runtime and knows no registry)."""

    def __init__(self, service: str) -> None:
        self.service = service

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "sixstep_scrubber_failures", "Texts the free-text scrubber failed on (a defect of "
            "its rules): refused (a caller's, 422) or replaced whole (logs, dead letters, "
            "exports)", labels=["service", "outcome"])
        for outcome, count in sorted(SCRUBBER_FAILURES.items()):
            family.add_metric([self.service, outcome], count)
        yield family


class Metrics:
    """Prometheus metrics of one service, on its own registry (tests run several in one process)."""

    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(ScrubberFailures(service))
        self.requests = Counter("sixstep_http_requests_total", "HTTP requests",
                                ["service", "method", "route", "status"], registry=self.registry)
        self.latency = Histogram("sixstep_http_request_seconds", "HTTP request latency",
                                 ["service", "route"], registry=self.registry,
                                 buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
        self.appended = Counter("sixstep_events_appended_total", "Events stored",
                                ["service"], registry=self.registry)
        self.batches = Histogram("sixstep_group_commit_batch_size", "Commands per commit",
                                 ["service"], registry=self.registry,
                                 buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512))
        self.commit_seconds = Histogram(
            "sixstep_group_commit_seconds", "Seconds from a write handed to group commit until "
            "its batch is committed (or the write refused)", ["service"], registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
        self.occurred_ahead = Histogram(
            "sixstep_occurred_at_ahead_seconds", "Seconds a command's sender's clock lay "
            "ahead of the service's, by its sent_at, else by its occurred_at (a counter's "
            "clock running fast, at most OCCURRED_AT_MAX_FUTURE_S): the post is dated by the "
            "service's clock, the error kept only here", ["service"], registry=self.registry,
            buckets=(1, 5, 15, 30, 60, 120, 180, 240, 300))
        self.occurred_behind = Histogram(
            "sixstep_occurred_at_behind_seconds", "Seconds a command's sender's clock lay "
            "behind the service's, by its sent_at against the request's arrival (more than "
            "5 s, at most OCCURRED_AT_MAX_FUTURE_S): a counter's clock running slow; its "
            "occurred_at was moved later by as much, the error kept only here",
            ["service"], registry=self.registry, buckets=(5, 15, 30, 60, 120, 180, 240, 300))
        self.clock_refused = Counter(
            "sixstep_writes_refused_for_clock_total", "Writes refused for their sender's "
            "clock: a sent_at more than OCCURRED_AT_MAX_FUTURE_S ahead (clock=fast) or behind "
            "(clock=slow) of the service's, nothing recorded (the histograms of how far ahead "
            "or behind see only the posts recorded)", ["service", "clock"],
            registry=self.registry)
        self.published = Counter("sixstep_events_published_total", "Events on the stream",
                                 ["service"], registry=self.registry)
        self.consumed = Counter("sixstep_events_applied_total", "Events applied by consumers",
                                ["service", "consumer"], registry=self.registry)
        self.dead_letters = Counter("sixstep_dead_letters_total", "Events dead-lettered",
                                    ["service", "consumer"], registry=self.registry)
        self.merged = Counter(
            "sixstep_consumer_merged_batches_total", "Batches a merging consumer took into the "
            "one before while that one waited (feedback's intake follower: shared/bus/consumer/"
            "batch.py, ``_more``): one transaction for two batches; counted when taken, also "
            "one handed back when the batch it joined then failed",
            ["service", "consumer"], registry=self.registry)
        self.merges_refused = Counter(
            "sixstep_consumer_merges_refused_total", "Batches a merging consumer read ahead "
            "and could not take into the one before (the handler refused them: follow-up's "
            "rules when a lock was not free at once, a statement's time, an error): handed "
            "back and applied as the next batch; a rise against merged batches says merging "
            "stopped paying (replicas meeting on the same rows)",
            ["service", "consumer"], registry=self.registry)
        self.lag = Gauge("sixstep_consumer_lag", "Events on the stream not yet applied",
                         ["service", "consumer"], registry=self.registry)
        self.oldest_unapplied_age = Gauge(
            "sixstep_consumer_oldest_unapplied_age_seconds", "Seconds the oldest event a "
            "consumer has not yet applied has been on the stream (0 when it is caught up)",
            ["service", "consumer"], registry=self.registry)
        self.stream_refused = Gauge(
            "sixstep_consumer_stream_refused", "1 while a consumer applies nothing because "
            "the stream is not the one its tracking rows were written against (made anew, or "
            "restored from an older backup): rebuild its read model",
            ["service", "consumer"], registry=self.registry)
        self.store_timeouts = Counter(
            "sixstep_consumer_store_timeouts_total", "Batches a consumer gave back because a "
            "statement ran out of time (DB_STATEMENT_TIMEOUT_S: a lock another session holds, "
            "a hung backend); tried again with back-off, nothing dead-lettered for it",
            ["service", "consumer"], registry=self.registry)
        self.relay_unpublished = Gauge(
            "sixstep_relay_unpublished_events", "Events stored and not yet published to the "
            "stream by the relay", ["service"], registry=self.registry)
        self.relay_unpublished_age = Gauge(
            "sixstep_relay_unpublished_age_seconds", "Seconds the oldest stored event not yet "
            "on the stream has waited for the relay (0 when it is caught up)",
            ["service"], registry=self.registry)
        self.relay_connections_lost = Counter(
            "sixstep_relay_connections_lost_total", "Times the relay's own NATS connection "
            "closed or could not be opened (it publishes again on a new one, from the "
            "service's last event on the stream)", ["service"], registry=self.registry)
        self.relay_out_of_order = Counter(
            "sixstep_relay_out_of_order_total", "Events of the service the relay saw stand "
            "on the stream out of store order (a stream that refused an event and stored a "
            "later one: see shared/eventstore/outbox.py)", ["service"], registry=self.registry)
        self.period_failures = Counter(
            "sixstep_period_failures_total", "Closes and revisions of a center's month that a "
            "database error stopped (a lock timeout, a constraint): the month waits for the "
            "next tick, the others go on; ``periods.month_failed`` in the log names it",
            ["service", "step"], registry=self.registry)
        self.scheduler_backlog = Gauge(
            "sixstep_scheduler_backlog", "Due work a scheduler has not yet turned into events",
            ["service", "scheduler"], registry=self.registry)
        self.leading = Gauge(
            "sixstep_leading", "1 while this replica leads the singleton loop (holds its "
            "advisory lock: shared/leadership.py; the relay too), 0 while it stands by",
            ["service", "loop"], registry=self.registry)
        self.parked_rules = Gauge(
            "sixstep_parked_rules", "Rules waiting for a day the working-day calendar does not "
            "cover (GET /parked-rules)", ["service"], registry=self.registry)
        self.calendar_days_left = Gauge(
            "sixstep_calendar_official_days_left", "Days until the official holiday schedules "
            "end (the earliest over the centers); after it dates are provisional",
            ["service"], registry=self.registry)
        self.calendar_replan_pending = Gauge(
            "sixstep_calendar_replan_pending", "Items whose re-planning after a calendar change "
            "failed at the last try (0: none), in this process or (in a worker, "
            "calendar-replan) in any: the service runs it again by itself, backing off",
            ["service"], registry=self.registry)
        self.refused_out_of_reach = Counter(
            "sixstep_refused_out_of_reach_total", "Requests refused 403 because a list or a "
            "body named another center; ``access.refused_out_of_reach`` in the log names the "
            "caller (an id of another center's, answered 404 as for none, is counted only "
            "with the ids nobody has, in sixstep_not_found_by_id_total: this page takes no "
            "token)", ["service", "what", "reason"], registry=self.registry)
        self.not_found_by_id = Counter(
            "sixstep_not_found_by_id_total", "Requests answered 404 not_found for an id: "
            "nobody's, or out of the caller's reach (another center's), alike; the log's "
            "``access.refused_out_of_reach`` says which were another center's",
            ["service", "route"], registry=self.registry)
        self.service = service
        #: ``answered``'s labelled children by (method, route, status): the registry's own
        #: ``labels()`` (a lock, a tuple of strings checked, a dict) on every request was
        #: half of counting it. As many as the registry holds (httptools knows ~40 methods).
        self._answered: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def answered(self, method: str, route: str, status: int, seconds: float) -> None:
        """One HTTP request answered ``status`` after ``seconds``, counted and timed by its
        route's path pattern (``requests`` and ``latency``)."""
        key = (method, route, status)
        children = self._answered.get(key)
        if children is None:
            children = (self.requests.labels(self.service, method, route, str(status)),
                        self.latency.labels(self.service, route))
            self._answered[key] = children
        children[0].inc()
        children[1].observe(seconds)


def time_writes(committer: GroupCommitter, observe: Callable[[float], None]) -> None:
    """Time every write through ``committer`` from ``submit`` to its answer (the queue, the
    batch and the commit) into ``observe``: the group-commit latency a caller sees."""
    submit: Callable[..., Awaitable[Any]] = committer.submit

    @functools.wraps(submit)
    async def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return await submit(*args, **kwargs)
        finally:
            observe(time.perf_counter() - start)

    committer.submit = timed  # type: ignore[method-assign]
