"""Skips that say what they skip and how to enable it, so a run can sum them up in one line.

Every skip in the suite goes through `skip_because(group, reason, enable)` (or, for a
`skipif` marker, `skip_reason(...)`): the reason is written as "<group>: <reason>; enable:
<command>", which `skip_summary` reads back from pytest's reports.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, NoReturn

import pytest

_FORMAT = re.compile(r"^(?P<group>[^:;]+): (?P<reason>.+); enable: (?P<enable>.+)$")
_OTHER = "other skips"


def skip_reason(group: str, reason: str, enable: str) -> str:
    """The reason text of a skip: `group` names what is skipped, `enable` what runs it."""
    return f"{group}: {reason}; enable: {enable}"


def skip_because(group: str, reason: str, enable: str) -> NoReturn:
    __tracebackhide__ = True  # the SKIPPED line points at the caller, not at this helper
    pytest.skip(skip_reason(group, reason, enable))


def skip_summary(skipped: Iterable[Any]) -> str | None:
    """One line naming each skipped group and what enables it, or None when nothing skipped.

    `skipped` are the reports pytest files under "skipped" (`longrepr` is a tuple whose last
    item is "Skipped: <reason>").
    """
    groups: dict[str, dict[str, None]] = {}
    counts: dict[str, int] = {}
    for report in skipped:
        message = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else ""
        match = _FORMAT.match(message.removeprefix("Skipped: "))
        if match:
            group, detail = match["group"], f"{match['reason']}: {match['enable']}"
        else:
            group, detail = _OTHER, "see the SKIPPED lines above"
        groups.setdefault(group, {})[detail] = None
        counts[group] = counts.get(group, 0) + 1
    if not groups:
        return None
    parts = []
    # Unlabelled skips last, after the groups that say what enables them.
    for group, details in sorted(groups.items(), key=lambda item: item[0] == _OTHER):
        parts.append(f"{group} ×{counts[group]} ({'; '.join(details)})")
    return "skipped: " + " · ".join(parts)
