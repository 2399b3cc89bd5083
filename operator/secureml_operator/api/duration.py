"""Durations as the CRD accepts them: the Go-duration subset `1h30m`, `5m`, `60s`."""

from __future__ import annotations

import datetime
import math
import re

DURATION = r"^([0-9]+h)?([0-9]+m)?([0-9]+s)?$"


def parse_duration(value: str) -> datetime.timedelta:
    match = re.fullmatch(DURATION, value)
    if not match or not value:
        raise ValueError(f"{value!r} is not a duration like 60s, 5m or 1h")
    hours, minutes, seconds = (int(part[:-1]) if part else 0 for part in match.groups())
    return datetime.timedelta(hours=hours, minutes=minutes, seconds=seconds)


def format_duration(seconds: float) -> str:
    """Whole seconds as the CRD spells durations (`1h30m`, `90s` -> `1m30s`), rounded up."""
    total = max(0, math.ceil(seconds))
    hours, minutes, rest = total // 3600, total % 3600 // 60, total % 60
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "") + (f"{rest}s" if rest else "")
    return text or "0s"
