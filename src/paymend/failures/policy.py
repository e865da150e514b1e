"""decide(failure, context) -> Decision: what to do after a failed or unknown attempt.

The rules come from how card networks and wallets want failures handled:

- an unknown outcome (timeout, lost response, provider error) is queried first: the
  money may have moved, and retrying before knowing can charge twice;
- authentication_required asks for 3-D Secure instead of failing;
- invalid requests are our bug: never retried, ops are alerted;
- Mastercard MAC 03 and 21 (and Stripe's do_not_try_again) forbid any new try of the
  card; MAC 24-30 set the earliest next try;
- Visa category 1 codes are never reattempted; categories 2-4 at most 15 times per
  card in 30 days;
- an expired credential is refreshed once, then the channel is retried once;
- rate limiting prefers another channel, and backs off when there is none;
- technical failures fail over to the next channel, or retry the same one with
  exponential backoff within the catalogue's limits and the checkout's deadline;
- business declines go back to the customer with what to do.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from paymend.domain.failure import Action, Advice, Decision, Failure, Kind

VISA_REATTEMPT_LIMIT = 15  # per card, per 30 days, categories 2-4
MAC_NEVER = frozenset({"MAC03", "MAC21"})


@dataclass(frozen=True, slots=True)
class PriorAttempt:
    channel: str
    code: str | None  # its unified failure code, None if it succeeded or is pending


@dataclass(frozen=True, slots=True)
class DecisionContext:
    channel: str  # the channel of the attempt that just failed
    attempts: Sequence[PriorAttempt] = ()  # this payment's attempts, the failed one included
    channels_left: Sequence[str] = ()  # eligible channels not yet tried, best first
    card_reattempts_30d: int = 0  # earlier tries of this card in the last 30 days
    remaining_s: float = math.inf  # time left before the checkout's deadline
    credentials_refreshed: bool = False  # this channel's credentials were refreshed already
    status_known: bool = False  # a status query confirmed no money moved
    jitter: Callable[[float], float] = field(default=float)  # full jitter: cap -> U(0, cap)


def backoff(failure: Failure, retries_done: int) -> float:
    """Exponential backoff cap for the next same-channel retry."""
    return min(failure.retry_cap_s, failure.retry_base_s * 2.0**retries_done)


def decide(failure: Failure, ctx: DecisionContext) -> Decision:
    # 1. never act on an unknown outcome before asking the provider
    if failure.action is Action.QUERY_STATUS and not ctx.status_known:
        return Decision(
            Action.QUERY_STATUS,
            f"{failure.code}: the outcome is unknown and money may have moved; "
            "ask the provider before anything else",
            alert_ops=failure.alert_ops,
        )
    # 2. the bank wants the customer to authenticate
    if failure.action is Action.AUTHENTICATE or failure.advice is Advice.AUTHENTICATE:
        return Decision(Action.AUTHENTICATE, f"{failure.code}: ask the customer for 3-D Secure")
    # 3. our own bug: retrying cannot help
    if failure.code == "invalid_request":
        return Decision(
            Action.DO_NOT_RETRY,
            "the provider rejected the request as malformed: never retried, ops alerted",
            alert_ops=True,
        )
    # 4. network advice that forbids any new try of this card
    if failure.advice in (Advice.NEVER_RETRY, Advice.STOP_RECURRING) or (
        failure.advice_code in MAC_NEVER
    ):
        return Decision(
            Action.DO_NOT_RETRY,
            f"{failure.advice_code}: the network forbids trying this card again",
        )
    # 5. Visa reattempt rules
    if failure.visa_category == 1:
        return Decision(
            Action.DO_NOT_RETRY,
            f"Visa category 1 ({failure.raw_code}): the issuer will never approve",
        )
    if failure.visa_category in (2, 3, 4) and ctx.card_reattempts_30d >= VISA_REATTEMPT_LIMIT:
        return Decision(
            Action.DO_NOT_RETRY,
            f"Visa category {failure.visa_category}: this card was tried "
            f"{ctx.card_reattempts_30d} times in 30 days (limit {VISA_REATTEMPT_LIMIT})",
        )
    # 6. the network sets the earliest next try (MAC 24-30)
    if failure.retry_after_s:
        if failure.retry_after_s <= ctx.remaining_s:
            return Decision(
                Action.RETRY_LATER,
                f"{failure.advice_code}: the network allows the next try after "
                f"{_human(failure.retry_after_s)}",
                after_s=failure.retry_after_s,
                channel=ctx.channel,
            )
        return Decision(
            Action.CUSTOMER_ACTION,
            f"{failure.advice_code}: no new try of this card before "
            f"{_human(failure.retry_after_s)}; the customer can use another method now",
        )
    # 7. credentials: refresh once, then one retry on the same channel
    if failure.action is Action.REFRESH_CREDENTIALS:
        if not ctx.credentials_refreshed:
            return Decision(
                Action.REFRESH_CREDENTIALS,
                f"{failure.code}: refresh {ctx.channel}'s credentials, then retry once",
                channel=ctx.channel,
                alert_ops=True,
            )
        return _elsewhere(failure, ctx, "credentials still rejected after a refresh", alert=True)
    # 8. rate limited: another channel first, then back off
    if failure.code == "rate_limited":
        if ctx.channels_left:
            return _failover(ctx, "rate limited: another channel instead of adding load")
        return _retry(failure, ctx) or _give_up(failure, Action.DO_NOT_RETRY, ctx)
    # 9. technical failures and business failures another channel may not share
    if failure.kind is Kind.TECHNICAL or failure.action in (Action.FAILOVER, Action.RETRY_LATER):
        if failure.action is Action.RETRY_LATER:
            retry = _retry(failure, ctx)
            if retry is not None:
                return retry
        if failure.failover and ctx.channels_left:
            return _failover(ctx, f"{failure.code} on {ctx.channel}")
        fallback = Action.CUSTOMER_ACTION if failure.kind is Kind.BUSINESS else Action.DO_NOT_RETRY
        return _retry(failure, ctx) or _give_up(failure, fallback, ctx)
    # 10. business declines: the customer decides what to do
    if failure.action is Action.CUSTOMER_ACTION:
        return Decision(
            Action.CUSTOMER_ACTION, f"{failure.code}: the customer must act; retrying cannot help"
        )
    return Decision(Action.DO_NOT_RETRY, f"{failure.code}: not retried")


def _failover(ctx: DecisionContext, why: str) -> Decision:
    return Decision(
        Action.FAILOVER, f"{why}: fail over to {ctx.channels_left[0]}", channel=ctx.channels_left[0]
    )


def _elsewhere(failure: Failure, ctx: DecisionContext, why: str, *, alert: bool) -> Decision:
    if failure.failover and ctx.channels_left:
        d = _failover(ctx, why)
        return Decision(d.action, d.reason, channel=d.channel, alert_ops=alert)
    return Decision(Action.DO_NOT_RETRY, f"{why}; no other channel", alert_ops=alert)


def _retry(failure: Failure, ctx: DecisionContext) -> Decision | None:
    """A same-channel retry with backoff, if the catalogue and the deadline allow one."""
    same = sum(1 for a in ctx.attempts if a.channel == ctx.channel and a.code == failure.code)
    done = max(same - 1, 0)
    if done >= failure.retry_max:
        return None
    wait = ctx.jitter(backoff(failure, done))
    if wait > ctx.remaining_s:
        return None
    return Decision(
        Action.RETRY_LATER,
        f"{failure.code}: retry {done + 1} of {failure.retry_max} on {ctx.channel} "
        f"after {_human(wait)}",
        after_s=wait,
        channel=ctx.channel,
    )


def _give_up(failure: Failure, action: Action, ctx: DecisionContext) -> Decision:
    why = (
        f"{failure.code}: no retry left on {ctx.channel} and no other channel"
        if failure.retry_max or failure.failover
        else f"{failure.code}: not retried"
    )
    return Decision(action, why, alert_ops=failure.alert_ops)


def _human(seconds: float) -> str:
    if seconds >= 86400 and seconds % 86400 == 0:
        return f"{seconds / 86400:g}d"
    if seconds >= 3600:
        return f"{seconds / 3600:g}h"
    if seconds >= 60:
        return f"{seconds / 60:g}m"
    return f"{seconds:.3g}s"
