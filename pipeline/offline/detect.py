"""``python -m pipeline detect``: the online metric anomaly detector over a CSV series.

Input ``timestamp,value`` (header required, rows in file order); output
``timestamp,value,anomaly_score`` with one row per input row, each score computed from that
row and earlier rows only (the same :class:`~pipeline.domain.detectors.SurpriseDetector`
the worker runs per (service, metric)).
"""

from __future__ import annotations

import csv
import math
from datetime import UTC, datetime
from pathlib import Path

from pipeline.domain.detectors import SurpriseDetector

PROGRESS_MIN_ROWS = 50_000


class DetectInputError(ValueError):
    """Bad input for ``detect``; the message is one actionable line."""


def _count_lines(path: Path) -> int:
    with path.open("rb") as fh:
        return sum(1 for _ in fh)


def run_detect(
    input_path: Path,
    output_path: Path,
    *,
    progress: bool = True,
    detector: SurpriseDetector | None = None,
) -> int:
    """Score every row of ``input_path`` into ``output_path``; return the number of rows."""
    input_path = Path(input_path)
    output_path = Path(output_path)
    if not input_path.is_file():
        raise DetectInputError(
            f"input file {input_path} does not exist (give a timestamp,value CSV)"
        )
    det = detector if detector is not None else SurpriseDetector()
    try:
        fh = input_path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise DetectInputError(f"cannot read {input_path}: {exc.strerror}") from None
    with fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise DetectInputError(f"{input_path} is empty: expected a 'timestamp,value' header")
        cols = [h.strip().lower() for h in header]
        if "timestamp" not in cols or "value" not in cols:
            raise DetectInputError(
                f"{input_path} line 1: header {','.join(header)!r} must name the columns "
                "'timestamp' and 'value'"
            )
        i_ts, i_val = cols.index("timestamp"), cols.index("value")
        width = max(i_ts, i_val) + 1
        total = _count_lines(input_path) - 1 if progress else 0
        show = progress and total >= PROGRESS_MIN_ROWS
        output_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = output_path.with_name(output_path.name + ".part")
        rows = 0
        try:
            with tmp.open("w", newline="", encoding="utf-8") as out:
                writer = csv.writer(out, lineterminator="\n")
                writer.writerow(["timestamp", "value", "anomaly_score"])
                score = det.score_learn
                if show:
                    from rich.progress import Progress

                    bar = Progress(transient=True)
                    task = bar.add_task(f"detect {input_path.name}", total=total)
                    bar.start()
                for lineno, row in enumerate(reader, start=2):
                    if not row:
                        raise DetectInputError(f"{input_path} line {lineno}: empty line")
                    if len(row) < width:
                        raise DetectInputError(
                            f"{input_path} line {lineno}: expected {width} columns, got {len(row)}"
                        )
                    raw = row[i_val].strip()
                    try:
                        value = float(raw)
                    except ValueError:
                        raise DetectInputError(
                            f"{input_path} line {lineno}: value {raw!r} is not a number"
                        ) from None
                    if not math.isfinite(value):
                        raise DetectInputError(
                            f"{input_path} line {lineno}: value {raw!r} is not a finite number"
                        )
                    s = score(value, "value", _epoch(row[i_ts], input_path, lineno))
                    writer.writerow([row[i_ts], raw, f"{s:.9f}"])
                    rows += 1
                    if show and rows % 10_000 == 0:
                        bar.update(task, completed=rows)
                if show:
                    bar.stop()
            tmp.replace(output_path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return rows


def _epoch(ts: str, path: Path, lineno: int) -> float:
    """ISO-8601 timestamp as epoch seconds; a timestamp without a zone is read as UTC."""
    try:
        parsed = datetime.fromisoformat(ts.strip())
    except ValueError:
        raise DetectInputError(
            f"{path} line {lineno}: timestamp {ts!r} is not ISO-8601 (e.g. 2014-04-01 00:00:00)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()
