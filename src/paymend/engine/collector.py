"""The cyclic garbage collector of a long-lived process: `paymend serve` and `paymend api`
(`spare_collector`), and a lab run (`lab/memory.py`, which undoes it when the run ends).

What start-up built (modules, configuration, the app, compiled statements) lives as long
as the process: collected once and frozen out of the collector's sight, so that a full
collection under load no longer walks it. A payment then makes thousands of short-lived
objects, most freed by their reference counts; with Python's default young-generation
threshold (700) a young collection ran every four payments or so, about 4 % of a
payment's CPU, and promoted the objects of the requests in flight to older generations.
At 50,000 it runs every few hundred payments and holds at most a few MB of cyclic
garbage between runs."""

from __future__ import annotations

import gc

GC_THRESHOLD = (50_000, 20, 100)


def freeze_start_up() -> None:
    """What was built so far lives as long as the process: out of the collector's sight."""
    gc.collect()
    gc.freeze()


def spare_collector() -> None:
    """Call once start-up is done, before serving."""
    freeze_start_up()
    gc.set_threshold(*GC_THRESHOLD)
