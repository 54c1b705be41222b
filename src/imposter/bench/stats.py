"""Means and 95% intervals for the report: small pure functions, no scipy.

Images of one pair share its inputs and its fine-tune, so they are not independent samples; the
report therefore averages each pair's images first and takes Student's t-interval over the pair means
(with balanced seeds their mean is the mean over all images, the paper's number).
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def t_coverage(t: float, df: int) -> float:
    """P(|T| <= t) for Student's t with ``df`` degrees of freedom (Abramowitz & Stegun 26.7.3-4)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    theta = math.atan(abs(t) / math.sqrt(df))
    sin, cos2 = math.sin(theta), math.cos(theta) ** 2
    if df % 2 == 0:  # sin(theta) * (1 + 1/2 cos^2 + 1*3/(2*4) cos^4 + ... up to cos^(df-2))
        term = total = 1.0
        for j in range(1, df // 2):
            term *= cos2 * (2 * j - 1) / (2 * j)
            total += term
        return sin * total
    # 2/pi * (theta + sin * cos * (1 + 2/3 cos^2 + 2*4/(3*5) cos^4 + ... up to cos^(df-3)))
    term = total = 1.0
    for j in range(1, (df - 1) // 2):
        term *= cos2 * (2 * j) / (2 * j + 1)
        total += term
    tail = sin * math.sqrt(cos2) * total if df > 1 else 0.0
    return 2 / math.pi * (theta + tail)


def t_quantile(confidence: float, df: int) -> float:
    """The t with P(|T| <= t) = ``confidence``: the multiplier of a two-sided t-interval (bisection)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    low, high = 0.0, 1.0
    while t_coverage(high, df) < confidence:
        low, high = high, 2 * high
    for _ in range(100):
        middle = (low + high) / 2
        low, high = (middle, high) if t_coverage(middle, df) < confidence else (low, middle)
    return (low + high) / 2


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float | None]:
    """Mean and half-width of its t-interval; the half-width is None for fewer than two values."""
    if not values:
        raise ValueError("mean_interval needs at least one value")
    count = len(values)
    mean = math.fsum(values) / count
    if count < 2:
        return mean, None
    variance = math.fsum((v - mean) ** 2 for v in values) / (count - 1)
    return mean, t_quantile(confidence, count - 1) * math.sqrt(variance / count)
