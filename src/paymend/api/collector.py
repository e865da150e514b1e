"""The cyclic garbage collector in a serving process (`paymend serve` and `paymend api`).

What start-up built (modules, configuration, the app, compiled statements) lives as long
as the process: collected once and frozen out of the collector's sight, so that a full
collection under load no longer walks it. A payment then makes thousands of short-lived
objects, most freed by their reference counts; with Python's default young-generation
threshold (700) a young collection ran every four payments or so, about 4 % of a
payment's CPU, and promoted the objects of the requests in flight to older generations.
At 50,000 it runs every few hundred payments and holds at most a few MB of cyclic
garbage between runs (the lab runs with the same thresholds, `lab/memory.py`)."""

from __future__ import annotations

import gc

GC_THRESHOLD = (50_000, 20, 100)


def spare_collector() -> None:
    """Call once start-up is done, before serving."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)
