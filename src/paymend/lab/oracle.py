"""The oracle: the best any system could have done with the scenario's truth.

A payment is recoverable when its payer's truth allows success (or needs only 3-D
Secure, which the simulated customer completes) and at least one channel that takes its
method is touched by no fault for its bank, region and method at its arrival.
"""

from __future__ import annotations

from paymend.lab.runner import Arrival
from paymend.lab.scenario import Fault, Scenario

SUCCESSFUL_TRUTHS = frozenset({"ok", "needs_authentication"})


def hits(fault: Fault, channel: str, a: Arrival) -> bool:
    """Whether `fault` touches `channel` for this arrival at its arrival time."""
    return (
        fault.kind != "payer"
        and fault.at <= a.t < fault.end
        and fault.channel in (None, channel)
        and fault.method in (None, a.method)
        and fault.bank in (None, a.bank)
        and fault.region in (None, a.region)
    )


def recoverable(scenario: Scenario, a: Arrival) -> bool:
    if a.truth not in SUCCESSFUL_TRUTHS:
        return False
    return any(
        a.method in ch.methods and not any(hits(f, name, a) for f in scenario.faults)
        for name, ch in scenario.channels.items()
    )
