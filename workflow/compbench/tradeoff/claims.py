"""The trade-off plane states no paper claim (no single paper has this view, issue 17):
which method is on the front at a memory budget is read off its table and figure,
docs/tradeoff.md."""

from __future__ import annotations


def claims(config: dict) -> list:
    return []
