"""Summaries of samples: percentiles, and the median and spread of a statistic over repeats."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear between closest ranks (numpy's default method)."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(samples: Sequence[float], scale: float = 1.0) -> dict[str, float]:
    """n, p50, p95, p99, mean, min, max of ``samples`` (each multiplied by ``scale``, e.g. 1000 for ms)."""
    values = [s * scale for s in samples]
    if not values:
        return {
            "n": 0,
            "p50": math.nan,
            "p95": math.nan,
            "p99": math.nan,
            "mean": math.nan,
            "min": math.nan,
            "max": math.nan,
        }
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "mean": statistics.fmean(values),
        "min": min(values),
        "max": max(values),
    }


def spread(values: Iterable[float]) -> dict[str, Any]:
    """Median, min and max of one statistic measured in several repeats (NaNs left out)."""
    found = [v for v in values if v is not None and not math.isnan(v)]
    if not found:
        return {"median": math.nan, "min": math.nan, "max": math.nan, "repeats": 0}
    return {"median": statistics.median(found), "min": min(found), "max": max(found), "repeats": len(found)}


def over_repeats(runs: Sequence[Mapping[str, float]], keys: Iterable[str]) -> dict[str, dict[str, Any]]:
    """For each key, the median and spread of ``run[key]`` over the repeats."""
    return {key: spread(run.get(key, math.nan) for run in runs) for key in keys}


def histogram_quantile(buckets: Sequence[tuple[float, float]], q: float) -> float:
    """Prometheus-style quantile estimate from cumulative (upper bound, count) buckets, sorted by bound."""
    if not buckets or buckets[-1][1] <= 0:
        return math.nan
    total = buckets[-1][1]
    rank = q * total
    previous_bound, previous_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return previous_bound
            width = count - previous_count
            fraction = (rank - previous_count) / width if width > 0 else 0.0
            return previous_bound + (bound - previous_bound) * fraction
        previous_bound, previous_count = bound, count
    return previous_bound


def json_ready(value: Any) -> Any:
    """JSON without NaN/Infinity (null instead), tuples as lists."""
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else round(value, 4)
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    return value
