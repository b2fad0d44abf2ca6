"""The quant line's paper claims: none yet. Its variants are measured for the trade-off
plane (compbench.tradeoff, docs/tradeoff.md); GPTQ's and AWQ's own claims (both beat
round-to-nearest at 4 bits) are read off that plane and docs/quant.md, not decided here."""

from __future__ import annotations


def claims(config: dict) -> list:
    return []
