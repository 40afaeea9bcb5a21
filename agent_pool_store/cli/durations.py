"""``--idle-for`` and other durations on the command line: ``30d``, ``12h``, ``1d12h``, ``90``."""

from __future__ import annotations

import re
from datetime import timedelta

import click

UNITS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
"""Seconds per unit: weeks, days, hours, minutes, seconds."""

_PART = re.compile(r"(\d+(?:\.\d+)?)([wdhms])")


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``1d12h``, ``90m``, ``45s``, ``2w`` or plain seconds (``90``).

    ValueError for anything else.
    """
    text = text.strip().lower()
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return timedelta(seconds=float(text))
    if not text or _PART.sub("", text):
        raise ValueError(f"{text!r} is not a duration such as 30d, 12h, 1d12h, 90m or 45s")
    return timedelta(
        seconds=sum(float(number) * UNITS[unit] for number, unit in _PART.findall(text))
    )


def duration_option(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> timedelta | None:
    """A click ``callback`` turning an option's text into a :func:`parse_duration` value.

    (A callback rather than a ``ParamType``: ``ParamType`` is generic only in newer click.)
    """
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as error:
        raise click.BadParameter(str(error), ctx, param) from None
