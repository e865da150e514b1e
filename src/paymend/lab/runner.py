"""Running a scenario through the real engine on a virtual-time event loop.

Arrivals follow the scenario's Poisson rate whatever the in-flight payments are doing;
each payment is its own task, so a provider that takes three seconds to time out holds
its payment for three simulated seconds while others arrive. The store is a real SQLite
database with paymend's migrated schema, held in memory unless the run could outgrow it
(store/throwaway.py; inline on the loop, so virtual time stays honest), the worker runs
its real jobs beside the payments, and only the providers and the clock are simulated.
What the figures need is read into memory at the end; the temporary folder the schema is
migrated in is removed whatever happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paymend.domain.errors import PaymendError
from paymend.domain.events import EventType
from paymend.domain.ids import MerchantId
from paymend.domain.money import Money
from paymend.domain.payment import Customer, PaymentStatus
from paymend.engine.clock import LoopClock
from paymend.engine.collector import freeze_start_up
from paymend.engine.commands import PayCommand
from paymend.engine.ids import IdFactory
from paymend.engine.job_registry import paymend_jobs
from paymend.engine.payments import PaymentService
from paymend.engine.playbooks import PlaybookRunner
from paymend.engine.reconcile import reconcile
from paymend.engine.runtime import build_payment_service
from paymend.engine.settings import EngineSettings, Policy
from paymend.engine.virtual_time import run_virtual
from paymend.engine.webhooks import WebhookSender
from paymend.engine.worker import Worker, WorkerSettings
from paymend.health.breaker import Transition
from paymend.lab.arrivals import Arrival, arrivals
from paymend.lab.faces import ConnectorChannel, connector_channel, gather, payment_code
from paymend.lab.fate import Fates
from paymend.lab.foresight import Foresight
from paymend.lab.fraud import Fraud
from paymend.lab.journeys import Context, Journeys
from paymend.lab.memory import Checkouts, collector_spared, outgrows_memory
from paymend.lab.naive import NaiveResult
from paymend.lab.notices import LabInbox, lab_notices, notice_figures, phone_of
from paymend.lab.oracle import Limits, Verdict
from paymend.lab.provider import ARRIVAL_KEY, TRUTH_KEY, LabProvider
from paymend.lab.records import Records, read_records
from paymend.lab.scenario import Scenario
from paymend.notify.policy import load_policy
from paymend.playbooks.model import DEFAULT_PATH, load_playbooks
from paymend.providers.base import Provider
from paymend.providers.simulator import Ledger
from paymend.store import merchants, outbox, run_records
from paymend.store.pii import DataKey, Vault
from paymend.store.throwaway import ThrowawayStore

MERCHANT = MerchantId("mer_lab")
AUTHENTICATION_DELAY_S = 20.0  # the simulated customer completes 3-D Secure
WATCH_EVERY_S = 5.0  # the shop hears of a 3-D Secure challenge within this
DRAIN_S = 900.0  # after the last arrival, let the worker finish for at most this long
DRAIN_CHECK_S = 10.0  # ...looking this often whether anything is left to finish
CHECKOUT_DEADLINE_S = 3.0
POLICIES = ("default", "naive")

__all__ = ["CHECKOUT_DEADLINE_S", "Arrival", "Progress", "Run", "run"]

Progress = Callable[[int, int, float], None]
"""Told after each checkout: payments answered, of which succeeded, simulated seconds."""


def settings_for(scenario: Scenario, policy: str) -> EngineSettings:
    return EngineSettings(
        provider_timeout_s=10.0,
        routing=tuple(scenario.routing),
        costs={name: channel.cost_bps for name, channel in scenario.channels.items()},
        checkout_deadline_s=CHECKOUT_DEADLINE_S,
        seed=scenario.seed,
        policy=Policy(policy),
    )


def limits_for(scenario: Scenario) -> Limits:
    """The engine's limits, as the oracle must keep them."""
    s = settings_for(scenario, "default")
    return Limits(max_attempts=s.max_attempts, settle_within_s=s.settle_within_s)


@dataclass(slots=True)
class Run:
    scenario: Scenario
    policy: str
    arrivals: list[Arrival] = field(default_factory=list)
    providers: dict[str, LabProvider] = field(default_factory=dict)
    ledger: Ledger = field(default_factory=Ledger)
    records: Records = field(default_factory=Records)
    wall_s: float = 0.0
    transitions: list[Transition] = field(default_factory=list)  # breakers, in order
    epoch_s: float = 0.0  # the simulated clock's start, to turn breaker times into offsets
    verdicts: list[Verdict] | None = None  # the oracle's, once asked (lab/metrics.py)
    naive: list[NaiveResult] | None = None  # the naive checkout's, likewise
    connectors: dict[str, ConnectorChannel] = field(default_factory=dict)  # lab/faces.py
    notices: dict[str, Any] = field(default_factory=dict)  # lab/notices.py, when asked
    fraud: Fraud | None = None  # lab/fraud.py: the attacks and the risk verdicts
    journeys: Journeys | None = None  # lab/journeys.py: what customers did after a failure


def run(
    scenario: Scenario,
    policy: str = "default",
    tmp_root: Path | None = None,
    progress: Progress | None = None,
) -> Run:
    """Run `scenario` under `policy`; deterministic for the scenario's seed. The schema is
    migrated in a temporary folder (under `tmp_root` if given), removed when the run
    ends, also when it fails."""
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {', '.join(POLICIES)}")
    result = Run(scenario, policy, fraud=Fraud(scenario), journeys=Journeys(scenario))
    started = time.perf_counter()
    # the oracle and the naive checkout, beside the run (lab/foresight.py)
    foresight = Foresight(scenario, limits_for(scenario), CHECKOUT_DEADLINE_S)
    try:
        with (
            tempfile.TemporaryDirectory(prefix="paymend-lab-", dir=tmp_root) as folder,
            collector_spared(),
        ):
            db_path = Path(folder) / "schema.db"
            run_virtual(_run(scenario, policy, db_path, result, progress))
        answers = foresight.answers(result.arrivals)
        if answers is not None:
            result.verdicts, result.naive = answers
    finally:
        foresight.close()
    result.wall_s = time.perf_counter() - started
    return result


async def _run(
    scenario: Scenario, policy: str, db_path: Path, result: Run, progress: Progress | None
) -> None:
    clock = LoopClock()
    store = ThrowawayStore(db_path, on_file=outgrows_memory(scenario))
    fraud = result.fraud or Fraud(scenario)
    journeys = result.journeys or Journeys(scenario)
    try:
        fates = Fates(scenario)
        settings = settings_for(scenario, policy)
        buyers: dict[int, Arrival] = {}  # connector channels find the payer by its code
        providers: dict[str, Provider] = {}
        for name, spec in scenario.channels.items():
            if spec.type == "simulator":
                lab = LabProvider(name, scenario, fates, clock, result.ledger)
                result.providers[name] = lab
                providers[name] = lab
                continue
            built = connector_channel(
                name, scenario, fates, clock, buyers, settings.provider_timeout_s
            )
            result.connectors[name] = built
            result.providers[name] = built.lab
            providers[name] = built.provider
        service = build_payment_service(
            store,
            providers,
            clock,
            settings,
            IdFactory(seed=scenario.seed),
            pii=Vault(DataKey.generate()) if scenario.notices else None,
            risk=fraud.gate(store, clock),
        )
        result.transitions = service.health.transitions
        result.epoch_s = clock.now().timestamp() - clock.monotonic()
        fraud.start = clock.now()  # the good customers' accounts were opened before it
        store.run_sync(lambda conn: merchants.create(conn, MERCHANT, "lab", clock.now()))
        stop = asyncio.Event()
        worker_task = None
        worker = None
        tally = _Tally(progress)

        async def failure_code(payment_id: str) -> str | None:
            return (await service.get(payment_id)).payment.failure_code

        async def pay_again(original: Arrival, follow_up: Arrival) -> None:
            buyers[follow_up.n] = follow_up
            await _pay(service, scenario, clock, follow_up, tally, fraud, journey, original)

        journey = _Journey(
            journeys, Context(clock, service.classifier.messages, failure_code, pay_again)
        )
        if policy != "naive":  # a checkout without paymend has no worker either
            runner = PlaybookRunner(service, load_playbooks(DEFAULT_PATH))
            inbox = LabInbox(clock, heard=journey.heard)
            notices = lab_notices(service, clock, inbox) if scenario.notices else None
            webhooks = WebhookSender(
                store, clock, service.ids, consumers=[notices.plan] if notices else ()
            )
            registry = paymend_jobs(service, webhooks, notices)
            worker = Worker(service, WorkerSettings(interval_s=1.0), webhooks, runner, registry)
            worker_task = asyncio.create_task(worker.run(stop))
        desk = asyncio.create_task(_three_d_secure(service, clock, stop, fraud))
        freeze_start_up()  # what set-up built lives for the run (`collector_spared` unfreezes)
        checkouts = Checkouts()
        for arrival in fraud.merged(arrivals(scenario)):
            await clock.sleep(arrival.t - clock.monotonic())
            (fraud.arrivals if fraud.is_attack(arrival) else result.arrivals).append(arrival)
            buyers[arrival.n] = arrival
            checkouts.start(_pay(service, scenario, clock, arrival, tally, fraud, journey))
        await checkouts.join()
        if worker is not None:
            worker.playbooks = None  # arrivals are over: that traffic drop is the scenario's end
        await journeys.settle()  # customers told at the checkout come back to pay
        await _drain(service, clock, worker)
        while await journeys.settle():  # ...and those a notice told during the drain
            await _drain(service, clock, worker)
        stop.set()
        await desk
        if worker_task is not None:
            await worker_task
        result.records = store.run_sync(lambda conn: read_records(conn, result.epoch_s))
        if fraud.active:
            store.run_sync(fraud.read)
        if scenario.notices and worker is not None:
            hold = load_policy().failure_hold
            n = len(result.arrivals)
            result.notices = store.run_sync(lambda conn: notice_figures(conn, n, hold))
        gather(result.ledger, list(result.connectors.values()), buyers)
    finally:
        for connector in result.connectors.values():
            connector.face.release()
        store.close()


async def _drain(service: PaymentService, clock: LoopClock, worker: Worker | None) -> None:
    """Let the worker finish what the arrivals left (status queries, retries, 3-D Secure
    confirmations) for up to `DRAIN_S`, and end sooner once nothing is owed: no job left,
    also none due later, no outcome open, no payment short of its end. Before ending it
    runs the reconciliation the worker would have run in the rest of the drain; should
    that find work, the drain goes on."""
    waited = 0.0
    while waited < DRAIN_S:
        step = min(DRAIN_CHECK_S, DRAIN_S - waited)
        await clock.sleep(step)
        waited += step
        if worker is not None and worker.running:
            continue
        if await service.store.run(run_records.unsettled):
            continue
        if worker is not None:
            await reconcile(service, fix=True)
            if await service.store.run(run_records.unsettled):
                continue
        return


@dataclass(frozen=True, slots=True)
class _Journey:
    """The run's customer journeys with what they need of it (lab/journeys.py)."""

    journeys: Journeys
    context: Context

    def answered(self, a: Arrival, failure_code: str | None) -> None:
        self.journeys.paid(a)
        self.journeys.answered(a, failure_code, self.context)

    def heard(self, dedupe_key: str) -> None:
        self.journeys.notice(dedupe_key, self.context)


@dataclass(slots=True)
class _Tally:
    progress: Progress | None
    done: int = 0
    succeeded: int = 0

    def answered(self, a: Arrival, now: float) -> None:
        self.done += 1
        self.succeeded += a.status == PaymentStatus.SUCCEEDED.value
        if self.progress is not None:
            self.progress(self.done, self.succeeded, now)


async def _pay(
    service: PaymentService,
    scenario: Scenario,
    clock: LoopClock,
    a: Arrival,
    tally: _Tally,
    fraud: Fraud,
    journey: _Journey,
    original: Arrival | None = None,
) -> None:
    """The checkout: one payment, as the shop's backend sends it. With connector channels
    the buyer shows a payment code (Alipay's and WeChat Pay's face-to-face payment). A
    customer paying again (lab/journeys.py) pays the `original` payment's order, as its
    customer."""
    wallet = any(c.type != "simulator" for c in scenario.channels.values())
    who = original or a
    cmd = PayCommand(
        merchant_id=MERCHANT,
        order_id=f"order-{who.n}",
        amount=Money(a.amount, scenario.currency),
        method=a.method,
        bank=a.bank,
        region=a.region,
        # a guest unless the scenario has fraud: each lab customer pays once, so there is
        # no earlier failure of theirs to look up (the repeat-failure query would scan
        # every payment of the hour); with fraud, the customer and their signals
        customer=Customer(
            fraud.customer_id(who), "zh-CN", phone=phone_of(who.n) if scenario.notices else None
        ),
        metadata={TRUTH_KEY: a.truth, ARRIVAL_KEY: str(a.n), **fraud.signals(who)},
        token=payment_code(a.n) if wallet else None,
    )
    start = clock.monotonic()
    try:
        view = await service.pay(cmd)
    except PaymendError as exc:
        a.error = exc.code
        a.payment_id = getattr(exc, "payment_id", None)
    else:
        a.latency_s = clock.monotonic() - start
        a.payment_id = view.payment.id
        a.status = view.payment.status.value
        journey.answered(a, view.payment.failure_code)
    if original is None:
        tally.answered(a, start)


async def _three_d_secure(
    service: PaymentService, clock: LoopClock, stop: asyncio.Event, fraud: Fraud
) -> None:
    """The simulated customers' side of 3-D Secure: the shop hears of each
    `payment.requires_action` (read from the outbox, as its webhook would bring it), and
    the customer completes the challenge `AUTHENTICATION_DELAY_S` later, whether the
    checkout or the worker was the one to learn the bank wants it. A fraudster cannot."""
    seen = 0
    completing: list[asyncio.Task[None]] = []
    while True:
        asked = await service.store.run(
            functools.partial(
                outbox.of_type_since, type=EventType.PAYMENT_REQUIRES_ACTION, seq=seen
            )
        )
        for seq, payment_id in asked:
            seen = seq
            done = _authenticate(service, clock, payment_id, fraud)
            completing.append(asyncio.create_task(done))
        if stop.is_set():
            break
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=WATCH_EVERY_S)
    await asyncio.gather(*completing)


ASKED = EventType.PAYMENT_REQUIRES_ACTION  # what the shop's desk follows


async def _authenticate(
    service: PaymentService, clock: LoopClock, payment_id: str, fraud: Fraud
) -> None:
    await clock.sleep(AUTHENTICATION_DELAY_S)
    if not fraud.authenticates(payment_id):
        return
    with contextlib.suppress(PaymendError):  # canceled or settled meanwhile: nothing to do
        await service.confirm(MERCHANT, payment_id)
