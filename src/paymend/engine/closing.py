"""Closing at the provider what a canceled payment left open.

An attempt waiting on the customer (a QR code, a redirect to the provider's page, a 3-D
Secure wait, a payment code the buyer is still confirming) is an order the provider would
still take money for. Before the cancel is recorded, each such attempt's provider closes
it (its `ClosesUnpaid` capability, providers/base.py), and its answer reads as a status
query's:

- closed, or never made: nothing was charged and nothing can be; the cancel records the
  attempt failed with the provider's code;
- the customer paid meanwhile (the provider refused the close, and its status query said
  paid): the attempt is settled as that success, exactly as a notification would settle
  it (engine/settlement.py), so the payment succeeds and the cancel is refused (409
  `payment_not_cancelable`): the charge is the customer's payment, never lost;
- unknown (no answer, an error): the cancel goes ahead as without the capability; a
  charge that lands later is a late success, refunded (engine/late_success.py).
"""

from __future__ import annotations

from collections.abc import Iterable

from paymend.domain.payment import Attempt, AttemptStatus
from paymend.engine.calls import Caller, CallOutcome
from paymend.engine.settlement import Settlement
from paymend.observability import get_logger

log = get_logger("paymend.engine")
# an attempt whose charge may still be payable: waiting on the customer (a QR code, a
# page, 3-D Secure), or unknown after its call (a payment code the buyer is still
# confirming on the phone: Alipay's 10003, WeChat Pay's USERPAYING)
OPEN = frozenset({AttemptStatus.REQUIRES_ACTION, AttemptStatus.UNKNOWN})


async def close_waiting(
    caller: Caller, settlement: Settlement, attempts: Iterable[Attempt], timeout_s: float
) -> dict[str, CallOutcome]:
    """Close each attempt waiting on the customer whose provider can; a charge found paid
    is settled at once. The outcomes that say nothing was charged, by attempt id."""
    closed: dict[str, CallOutcome] = {}
    for attempt in attempts:
        if attempt.status not in OPEN:
            continue
        if not caller.closes(attempt.provider):
            continue
        outcome = await caller.close(attempt, timeout_s)
        log.info(
            "provider_order_closed",
            attempt_id=attempt.id,
            provider=attempt.provider,
            status=outcome.status.value,
            raw_code=outcome.raw_code,
        )
        if outcome.status is AttemptStatus.SUCCEEDED:
            await settlement.settle_notified(attempt.id, outcome)
        elif outcome.status is AttemptStatus.FAILED:
            closed[attempt.id] = outcome
    return closed
