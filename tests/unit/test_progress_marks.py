"""Progress marks on the merge topic carry their send time; the bench reads histograms."""

from __future__ import annotations

import msgspec

from benchmarks.streaming.metrics import histogram, parse_metrics
from pipeline.app.summaries import Progress, progress_decoder, progress_encoder


def test_mark_round_trips_with_its_send_time() -> None:
    mark = progress_decoder.decode(progress_encoder.encode(Progress(3, 1_700_000_000.5, 12.25)))
    assert (mark.partition, mark.event_time, mark.sent) == (3, 1_700_000_000.5, 12.25)


def test_mark_of_an_older_worker_has_no_send_time() -> None:
    old = msgspec.msgpack.encode([1, 42.0])  # the two-field mark of workers before the field
    assert progress_decoder.decode(old) == Progress(1, 42.0, 0.0)


def test_histogram_adds_up_workers() -> None:
    text = "\n".join(
        [
            'lag_bucket{le="0.1"} 2',
            'lag_bucket{le="1.0"} 4',
            'lag_bucket{le="+Inf"} 4',
            "lag_sum 1.2",
            "lag_count 4",
        ]
    )
    samples = parse_metrics(text) * 2  # two workers with the same figures
    h = histogram(samples, "lag")
    assert h["count"] == 8
    assert abs(h["mean"] - 0.3) < 1e-9
    assert h["p50"] == 0.1
    assert 0.1 < h["p90"] <= 1.0
    assert histogram(samples, "absent") == {}
