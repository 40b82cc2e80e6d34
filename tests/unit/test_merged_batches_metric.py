"""A merging consumer's batches taken into the one before (``ConsumerStats.merged``: feedback's
intake follower, one transaction for two) are on /metrics, as its applied events are: before,
only ``sixstep ops status`` showed them, and a merge that stopped happening (a release, a
setting) went unseen."""

from __future__ import annotations

from shared.runtime.lifecycle import Runtime
from shared.runtime.metrics import Metrics
from shared.settings import Settings

MERGED = "sixstep_consumer_merged_batches_total"
REFUSED = "sixstep_consumer_merges_refused_total"


def test_the_batches_a_consumer_merged_are_counted_on_metrics() -> None:
    metrics = Metrics("feedback")
    runtime = Runtime(Settings(roles="api"), "feedback", None, None, None, None,  # type: ignore[arg-type]
                      metrics)
    consumer = runtime.add_consumer("feedback-intake", object(),  # type: ignore[arg-type]
                                    ["sixstep.intake.*.*"])
    assert consumer.on_batch is not None
    labels = {"service": "feedback", "consumer": "feedback-intake"}
    consumer.stats.applied, consumer.stats.merged = 40, 3
    consumer.on_batch(consumer.stats)
    consumer.stats.applied, consumer.stats.merged = 52, 4
    consumer.stats.merges_refused = 2
    consumer.on_batch(consumer.stats)
    assert metrics.registry.get_sample_value(MERGED, labels) == 4
    assert metrics.registry.get_sample_value(REFUSED, labels) == 2
    assert metrics.registry.get_sample_value("sixstep_events_applied_total", labels) == 52
