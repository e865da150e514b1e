"""Running a scenario through the real engine on a virtual-time event loop.

Arrivals follow the scenario's Poisson rate whatever the in-flight payments are doing;
each payment is its own task, so a provider that takes three seconds to time out holds
its payment for three simulated seconds while others arrive. The store is a real SQLite
file (inline on the loop, so virtual time stays honest), the worker runs its real jobs
beside the payments, and only the providers and the clock are simulated.
"""

from __future__ import annotations

import asyncio
import math
import random
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from paymend.domain.errors import PaymendError
from paymend.domain.ids import MerchantId
from paymend.domain.money import Money
from paymend.domain.payment import Customer, PaymentStatus
from paymend.engine.clock import LoopClock
from paymend.engine.commands import PayCommand
from paymend.engine.ids import IdFactory
from paymend.engine.payments import EngineSettings, PaymentService
from paymend.engine.playbooks import PlaybookRunner
from paymend.engine.virtual_time import run_virtual
from paymend.engine.worker import Worker, WorkerSettings
from paymend.health.breaker import Transition
from paymend.lab.provider import TRUTH_KEY, LabProvider
from paymend.lab.scenario import PAYER_TRUTHS, Scenario
from paymend.playbooks.model import DEFAULT_PATH, load_playbooks
from paymend.providers.base import Provider
from paymend.providers.simulator import Ledger
from paymend.store import merchants
from paymend.store.database import Store
from paymend.store.migrate import upgrade

MERCHANT = MerchantId("mer_lab")
AUTHENTICATION_DELAY_S = 20.0  # the simulated customer completes 3-D Secure
DRAIN_S = 900.0  # after the last arrival, let the worker finish for this long
CHECKOUT_DEADLINE_S = 3.0
POLICIES = ("default", "naive")


@dataclass(slots=True)
class Arrival:
    n: int
    t: float
    method: str
    region: str
    bank: str
    amount: int
    truth: str
    payment_id: str | None = None
    status: str | None = None
    latency_s: float | None = None
    error: str | None = None


@dataclass(slots=True)
class Run:
    scenario: Scenario
    policy: str
    arrivals: list[Arrival] = field(default_factory=list)
    providers: dict[str, LabProvider] = field(default_factory=dict)
    ledger: Ledger = field(default_factory=Ledger)
    db_path: Path | None = None
    wall_s: float = 0.0
    transitions: list[Transition] = field(default_factory=list)  # breakers, in order
    epoch_s: float = 0.0  # the simulated clock's start, to turn breaker times into offsets


def _pick(rng: random.Random, shares: dict[str, float]) -> str:
    names = list(shares)
    return rng.choices(names, [shares[n] for n in names])[0]


def _truth(rng: random.Random, scenario: Scenario, t: float) -> str:
    shares = {k: getattr(scenario.payers, k) for k in PAYER_TRUTHS}
    for fault in scenario.faults:
        if fault.kind == "payer" and fault.at <= t < fault.end:
            for k in PAYER_TRUTHS:
                value = getattr(fault, k)
                if value is not None:
                    shares[k] = value
    roll = rng.random()
    for k in PAYER_TRUTHS:
        if roll < shares[k]:
            return k
        roll -= shares[k]
    return "ok"


def run(scenario: Scenario, policy: str = "default", workdir: Path | None = None) -> Run:
    """Run `scenario` under `policy`; deterministic for the scenario's seed."""
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {', '.join(POLICIES)}")
    folder = Path(workdir or tempfile.mkdtemp(prefix="paymend-lab-"))
    db_path = folder / f"{scenario.name}-{policy}.db"
    db_path.unlink(missing_ok=True)
    url = f"sqlite:///{db_path}"
    upgrade(url)
    result = Run(scenario, policy, db_path=db_path)
    started = time.perf_counter()
    run_virtual(_run(scenario, policy, url, result))
    result.wall_s = time.perf_counter() - started
    return result


async def _run(scenario: Scenario, policy: str, url: str, result: Run) -> None:
    clock = LoopClock()
    store = Store(url, inline=True)
    for name, channel in scenario.channels.items():
        result.providers[name] = LabProvider(
            name, channel, scenario.faults, clock, scenario.seed, result.ledger
        )
    providers: dict[str, Provider] = dict(result.providers)
    service = PaymentService(
        store,
        providers,
        clock,
        EngineSettings(
            provider_timeout_s=10.0,
            routing=tuple(scenario.routing),
            costs={name: channel.cost_bps for name, channel in scenario.channels.items()},
            checkout_deadline_s=CHECKOUT_DEADLINE_S,
            seed=scenario.seed,
            policy=policy,
        ),
        IdFactory(seed=scenario.seed),
    )
    result.transitions = service.health.transitions
    result.epoch_s = clock.now().timestamp() - clock.monotonic()
    store.run_sync(lambda conn: merchants.create(conn, MERCHANT, "lab", clock.now()))
    stop = asyncio.Event()
    worker_task = None
    worker = None
    if policy != "naive":  # a checkout without paymend has no worker either
        runner = PlaybookRunner(service, load_playbooks(DEFAULT_PATH))
        worker = Worker(service, WorkerSettings(interval_s=1.0), playbooks=runner)
        worker_task = asyncio.create_task(worker.run(stop))
    rng = random.Random(scenario.seed)  # noqa: S311 - a simulation
    lo, hi = math.log(scenario.amount.min), math.log(scenario.amount.max)
    tasks: list[asyncio.Task[None]] = []
    t = 0.0
    n = 0
    while True:
        t += rng.expovariate(scenario.rate)
        if t >= scenario.duration:
            break
        await clock.sleep(t - clock.monotonic())
        arrival = Arrival(
            n,
            t,
            _pick(rng, scenario.methods),
            _pick(rng, scenario.regions),
            _pick(rng, scenario.banks),
            round(math.exp(rng.uniform(lo, hi))),
            _truth(rng, scenario, t),
        )
        n += 1
        result.arrivals.append(arrival)
        tasks.append(asyncio.create_task(_pay(service, scenario, clock, arrival)))
    await asyncio.gather(*tasks)
    if worker is not None:
        worker.playbooks = None  # arrivals are over: that traffic drop is the scenario's end
    await clock.sleep(DRAIN_S)
    stop.set()
    if worker_task is not None:
        await worker_task
    store.close()


async def _pay(service: PaymentService, scenario: Scenario, clock: LoopClock, a: Arrival) -> None:
    cmd = PayCommand(
        merchant_id=MERCHANT,
        order_id=f"order-{a.n}",
        amount=Money(a.amount, scenario.currency),
        method=a.method,
        bank=a.bank,
        region=a.region,
        customer=Customer(id=f"cust-{a.n}", locale="zh-CN"),
        metadata={TRUTH_KEY: a.truth},
    )
    start = clock.monotonic()
    try:
        view = await service.pay(cmd)
    except PaymendError as exc:
        a.error = exc.code
        a.payment_id = getattr(exc, "payment_id", None)
        return
    a.latency_s = clock.monotonic() - start
    a.payment_id = view.payment.id
    a.status = view.payment.status.value
    if view.payment.status is PaymentStatus.REQUIRES_ACTION:
        await clock.sleep(AUTHENTICATION_DELAY_S)
        try:
            await service.confirm(MERCHANT, view.payment.id)
        except PaymendError as exc:
            a.error = exc.code
