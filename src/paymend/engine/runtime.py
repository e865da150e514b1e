"""Everything one paymend process needs, built from settings and the config file."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from paymend.config import PaymendConfig, Settings, load_config
from paymend.domain.clock import Clock
from paymend.domain.errors import Unavailable
from paymend.engine.access import AccessService
from paymend.engine.attempts import AttemptLoop
from paymend.engine.budget import RetryBudget
from paymend.engine.calls import Caller
from paymend.engine.channels import build_channels
from paymend.engine.clock import SystemClock
from paymend.engine.controls import ControlService, KnownScopes
from paymend.engine.creation import Creation
from paymend.engine.customer_notices import CustomerNotices
from paymend.engine.ids import IdFactory
from paymend.engine.incidents import IncidentService
from paymend.engine.job_registry import paymend_jobs
from paymend.engine.late_success import LateSuccess
from paymend.engine.liveness import LivenessSettings, Owner, Presence
from paymend.engine.notice_setup import build_customer_notices
from paymend.engine.ops_alerts import OpsAlerts
from paymend.engine.payments import PaymentService
from paymend.engine.playbooks import PlaybookRunner
from paymend.engine.recording import Recorder
from paymend.engine.refunds import RefundService
from paymend.engine.risk_gate import RiskGate, build_risk
from paymend.engine.settings import EngineSettings, Policy
from paymend.engine.settlement import Settlement
from paymend.engine.silences import SilenceService
from paymend.engine.webhooks import WebhookSender
from paymend.engine.worker import Worker, WorkerSettings
from paymend.failures.classify import Classifier, default_classifier
from paymend.health.book import Health, HealthBook
from paymend.health.redis_book import RedisHealthBook
from paymend.notify.ops_routes import load_routes
from paymend.observability import get_logger
from paymend.playbooks.model import load_playbooks
from paymend.providers.base import HoldsConnections, Provider
from paymend.providers.simulator import SimulatedProvider
from paymend.routing.failover import Router
from paymend.routing.ranking import RoutingRules
from paymend.store.database import Store
from paymend.store.pii import Vault

log = get_logger("paymend.runtime")


@dataclass
class Runtime:
    settings: Settings
    config: PaymendConfig
    store: Store
    clock: Clock
    providers: dict[str, Provider]
    service: PaymentService
    worker: Worker
    incidents: IncidentService
    presence: Presence
    simulators: dict[str, SimulatedProvider] = field(default_factory=dict)
    notices: CustomerNotices | None = None  # None: no channel reaches customers

    @property
    def access(self) -> AccessService:
        """Operators, merchants and their keys (engine/access.py)."""
        return AccessService(self.store, self.clock, self.service.ids)

    @property
    def silences(self) -> SilenceService:
        """Silences of ops pages (engine/silences.py)."""
        return SilenceService(self.store, self.clock, self.service.ids)

    @property
    def known(self) -> KnownScopes:
        """What ops controls may name: the configured channels and their methods, and
        the banks and regions the configuration lists (any, when it lists none)."""
        banks = self.config.banks
        return KnownScopes(
            frozenset(self.providers),
            None if banks is None else frozenset(banks),
            self.config.known_regions(),
            frozenset(self.service.methods()),
        )

    @contextlib.asynccontextmanager
    async def alive(self) -> AsyncIterator[None]:
        """While the block runs, this process is a registered instance that beats: it owns
        what it starts (pending attempts, jobs, idempotency claims), and predecessors
        found dead are released. With the database out of reach at start, the beats
        register later. On exit, after the work inside stopped, the instance is marked
        stopped: what it still owns is free for the others at once; then the connectors'
        HTTP connections are closed."""
        await self.presence.try_start()
        done = asyncio.Event()
        beats = asyncio.create_task(self.presence.run(done))
        try:
            yield
        finally:
            done.set()
            await beats
            try:
                await self.presence.stop()
            except Unavailable as exc:
                log.warning("instance_not_marked_stopped", code=exc.code)
            await self.close_connections()

    async def close_connections(self) -> None:
        """Close the connectors' HTTP connections of the running loop (the stop of the
        server's or the worker's loop): nothing is left open for the loop's end to cut."""
        for name, provider in self.providers.items():
            if isinstance(provider, HoldsConnections):
                try:
                    await provider.aclose()
                except Exception as exc:  # noqa: BLE001 - one channel's close never stops the rest
                    log.warning("connections_not_closed", channel=name, error=type(exc).__name__)

    def close(self) -> None:
        self.store.close()


def data_vault(settings: Settings) -> Vault:
    """The customer data keys of the environment (store/pii.py); a malformed key raises
    DataKeyError naming the variable, so paymend refuses to start rather than guess."""
    current, old = settings.data_key, settings.data_keys_old
    return Vault.from_settings(
        current.get_secret_value() if current else None,
        old.get_secret_value() if old else None,
    )


def build_payment_service(
    store: Store,
    providers: Mapping[str, Provider],
    clock: Clock,
    settings: EngineSettings,
    ids: IdFactory | None = None,
    classifier: Classifier | None = None,
    health: Health | None = None,
    pii: Vault | None = None,
    budget: RetryBudget | None = None,
    risk: RiskGate | None = None,
) -> PaymentService:
    """The payment engine with its parts, each built once and handed to those that use
    it. One random generator serves routing's exploration and the backoff jitter, in
    that order of draws, so one seed gives one run (the lab's figures)."""
    ids = ids or IdFactory(clock=clock)
    classifier = classifier or default_classifier()
    health = health or HealthBook()
    pii = pii or Vault(None)
    rng = random.Random(settings.seed)  # noqa: S311 - routing and jitter, not secrets
    owner = Owner()
    rules = settings.rules or RoutingRules(settings.routing or tuple(providers))
    router = Router(
        rules,
        {name: p.capabilities for name, p in providers.items()},
        settings.costs,
        health,
        rng,
        breakers=settings.policy is not Policy.NAIVE,
    )
    caller = Caller(providers, clock)
    refunds = RefundService(store, providers, clock, ids)
    controls = ControlService(store, clock, ids)
    late = LateSuccess(store, clock, ids, refunds)
    recorder = Recorder(store, clock, ids, health, late, owner)
    attempts = AttemptLoop(
        settings,
        store,
        clock,
        ids,
        caller,
        classifier,
        health,
        router,
        budget or RetryBudget(),
        recorder,
        rng,
    )
    settlement = Settlement(
        settings, store, clock, controls, router, caller, attempts, recorder, late
    )
    return PaymentService(
        store,
        clock,
        settings,
        ids,
        providers=providers,
        health=health,
        classifier=classifier,
        pii=pii,
        controls=controls,
        refunds=refunds,
        router=router,
        caller=caller,
        creation=Creation(store, ids, pii, owner),
        attempts=attempts,
        settlement=settlement,
        owner=owner,
        risk=risk,
    )


def build_runtime(
    settings: Settings,
    config: PaymendConfig | None = None,
    *,
    clock: Clock | None = None,
    store: Store | None = None,
    role: str = "serve",
    config_path: str | Path | None = None,
) -> Runtime:
    """`role`: what this process runs (serve, api, worker), as its instance shows it.
    `config_path`: where a given `config` was read (its secrets file is beside it)."""
    config = config or load_config(settings.config_path())
    clock = clock or SystemClock()
    store = store or Store(settings.database_url)
    providers, sims = build_channels(config, config_path or settings.config_path(), clock)
    health = RedisHealthBook.from_url(settings.redis_url) if settings.redis_url else HealthBook()
    pii = data_vault(settings)
    service = build_payment_service(
        store,
        providers,
        clock,
        EngineSettings(
            provider_timeout_s=config.engine.provider_timeout,
            routing=tuple(config.routing),
            checkout_deadline_s=config.engine.checkout_deadline,
            settle_within_s=config.engine.settle_within,
        ),
        IdFactory(),
        health=health,
        pii=pii,
        risk=build_risk(
            store, clock, settings.risk_rules, settings.risk_shadow_rules, settings.redis_url
        ),
    )
    playbooks = load_playbooks(config.playbooks_path(settings.config_path()))
    path = Path(config_path or settings.config_path())
    link_key = settings.link_key.get_secret_value().encode() if settings.link_key else None
    notices = build_customer_notices(
        config.notifications,
        path,
        service,
        clock,
        link_key=link_key,
        link_ttl_s=config.customers.link_ttl,
        public_url=config.customers.public_url,
    )
    webhooks = WebhookSender(store, clock, service.ids, consumers=[notices.plan] if notices else ())
    routes_path = config.ops_alerts.routes_path(path)
    pager = (
        None
        if routes_path is None
        else OpsAlerts(store, clock, service.ids, load_routes(routes_path))
    )
    worker = Worker(
        service,
        WorkerSettings(
            interval_s=config.worker.interval,
            pending_after_s=config.worker.orphaned_pending_after,
            concurrency=config.worker.concurrency,
            stop_grace_s=config.worker.stop_grace,
            dead_after_s=config.instances.dead_after,
        ),
        webhooks,
        PlaybookRunner(service, playbooks),
        paymend_jobs(service, webhooks, notices, pager),
        ops_alerts=pager,
    )
    incidents = IncidentService(store, clock, service.ids)
    presence = Presence(
        store,
        clock,
        role,
        LivenessSettings(config.instances.heartbeat, config.instances.dead_after),
        on_start=lambda instance_id: setattr(service, "owner", instance_id),
        on_beat=health.flush,  # an idle process's last health records reach Redis too
    )
    return Runtime(
        settings,
        config,
        store,
        clock,
        providers,
        service,
        worker,
        incidents,
        presence,
        sims,
        notices,
    )
