"""Settings from the environment and the `paymend.yaml` file of channels and routing.

Environment (secrets and deployment): `PAYMEND_DATABASE_URL`, `PAYMEND_CONFIG`,
`PAYMEND_LOG_LEVEL`, `PAYMEND_REDIS_URL`, `PAYMEND_DATA_KEY`, `PAYMEND_DATA_KEYS_OLD`,
and the HTTP server's bounds `PAYMEND_HTTP_…`. Everything about channels and policies
lives in the YAML file, validated on load with errors naming the line.

A channel is simulated (`type: simulator`) or a real provider's connector (`type: alipay`,
`stripe`, `wechatpay`, `adyen`): a tagged union on `type` (config/channels.py). A real
channel's credentials never sit in the YAML file: each comes from the environment
(`PAYMEND_SECRET_<CHANNEL>_<NAME>`) or from the secrets file `secrets_file:` names
(`<channel>: {<name>: value}`), read by `channel_credentials`, so `config check` and the
runtime read them alike and a missing one is named before anything starts.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    SecretStr,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from paymend.config.channels import Channel, ConnectorChannel, Duration, HttpUrl, Rate
from paymend.config.channels import Strict as _Strict
from paymend.datafiles import DataFileError, load_model, parse_duration, read_yaml

Seconds = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]
# a bank or region name ops controls may carry (engine/controls.py VALUE_SHAPE)
ScopeName = Annotated[str, StringConstraints(pattern=r"^\w(?:[\w .,&'()/+-]{0,62}[\w.)])?$")]
PACKAGED_CONFIG = Path(__file__).parent.parent / "paymend.yaml"


LINK_KEY_MIN = 32  # characters of PAYMEND_LINK_KEY
_DATABASE_URL = re.compile(r"^[A-Za-z][A-Za-z0-9]*(\+[A-Za-z0-9_]+)?://")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAYMEND_", extra="ignore")

    database_url: str = "sqlite:///paymend.db"
    config: str | None = None
    log_level: str = "INFO"
    redis_url: str | None = None
    # risk control (docs/risk.md): the rules file (unset: the shipped one; "off": none)
    # and a rules version run beside it in shadow mode
    risk_rules: str | None = None
    risk_shadow_rules: str | None = None
    # no longer used: operators have their own keys (`paymend operators create`); read
    # only to warn a deployment that still sets it
    admin_key: str | None = None
    # base64 of 32 bytes: seals customer email and phone (store/pii.py); unset: not stored
    data_key: SecretStr | None = None
    data_keys_old: SecretStr | None = None  # comma-separated earlier keys: open, never seal
    # signs customers' status links (/pay/{token}, domain/status_links.py); unset: no
    # link is made (status_url is null) and none opens
    link_key: SecretStr | None = None
    # The HTTP server's bounds on slow and greedy clients (api/server.py). A checkout's
    # backend sends a few hundred bytes at once, so a request head or body that takes
    # seconds is a stalled or hostile client; keep-alive outlasts load balancers' 60 s.
    http_header_timeout: Seconds = 10.0  # the request line and headers, from the first byte
    http_body_timeout: Seconds = 10.0  # the whole body, once the head is in
    http_keep_alive: Seconds = 75.0  # an idle connection between requests
    http_max_connections: int = Field(1000, ge=1)  # open connections; past it: 503
    http_max_header_bytes: int = Field(16 * 1024, ge=1024, le=1024 * 1024)  # past it: 431

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, url: str) -> str:
        # the shape SQLAlchemy's URLs have, `<dialect>[+<driver>]://…`: whether the
        # server is there is the store's to find out (cli/base.py `migrated_database`)
        if not _DATABASE_URL.match(url):
            raise ValueError(
                "not a database URL (sqlite:///paymend.db, or postgresql+psycopg://user@host/db)"
            )
        return url

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, url: str | None) -> str | None:
        if url and not url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("a redis://, rediss:// or unix:// URL")
        return url

    @field_validator("link_key")
    @classmethod
    def _link_key(cls, key: SecretStr | None) -> SecretStr | None:
        # whoever can guess the key can sign a link to any payment's status page
        if key is not None and len(key.get_secret_value()) < LINK_KEY_MIN:
            raise ValueError(
                f"at least {LINK_KEY_MIN} characters (make one with "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
            )
        return key

    def config_path(self) -> Path:
        if self.config:
            return Path(self.config)
        local = Path("paymend.yaml")
        return local if local.exists() else PACKAGED_CONFIG


class EngineConfig(_Strict):
    provider_timeout: Duration = 10.0
    checkout_deadline: Duration = 3.0
    # retries and failover end this long after a payment is made, and with them any
    # order the customer could still pay at the provider (a cashier page, a QR code)
    settle_within: Duration = 300.0

    @field_validator("settle_within")
    @classmethod
    def _after_the_checkout(cls, value: float, info: ValidationInfo) -> float:
        if value <= info.data.get("checkout_deadline", 0.0):
            raise ValueError("must be longer than the checkout deadline")
        if value > 86400:
            raise ValueError("must be at most 1 day (24h)")
        return value


class WorkerConfig(_Strict):
    interval: Duration = 1.0
    # an attempt left pending this long is settled even if its owner seems alive (one
    # whose owner is known dead is settled at once: `instances`)
    orphaned_pending_after: Duration = 60.0
    concurrency: int = Field(16, ge=1, le=256)  # jobs and orphaned attempts at once
    stop_grace: Duration = 1.0  # on SIGTERM, running jobs get this long, then are cancelled


class InstancesConfig(_Strict):
    """Each paymend process registers itself and beats; what a dead one owned (pending
    attempts, jobs, idempotency claims) is taken over (engine/liveness.py)."""

    heartbeat: Annotated[Duration, Field(gt=0)] = 1.0
    # a process whose heartbeat is older is dead (on the same machine a vanished pid
    # tells at once)
    dead_after: Duration = 5.0

    @field_validator("dead_after")
    @classmethod
    def _beats_before_dying(cls, value: float, info: ValidationInfo) -> float:
        if value < 2 * info.data.get("heartbeat", 0.0):
            raise ValueError("must be at least twice the heartbeat")
        return value


class IdempotencyConfig(_Strict):
    # a request still in progress after this is taken for dead even if its process lives
    # (hung): the next request with its key recovers it. Above any checkout deadline.
    claim_expires_after: Duration = 120.0

    @field_validator("claim_expires_after")
    @classmethod
    def _above_deadlines(cls, value: float) -> float:
        if value <= 60:
            raise ValueError("must be above the longest checkout deadline (60s)")
        return value


class SimulatorConfig(_Strict):
    ledger: str | None = None  # a SQLite file for the simulators' ledger; None: in memory


class AliyunSmsConfig(_Strict):
    """Keys from PAYMEND_ALIYUN_SMS_ACCESS_KEY_ID and _SECRET; the sign name is the
    policy's (`sms.sign_name`)."""

    endpoint: str = "dysmsapi.aliyuncs.com"
    protocol: Literal["https", "http"] = "https"  # http only for a local test endpoint


class TencentSmsConfig(_Strict):
    """Keys from PAYMEND_TENCENT_SMS_SECRET_ID and _SECRET_KEY; the sign name is the
    policy's (`sms.sign_name`), the template ids its `sms.templates`."""

    sdk_app_id: str = Field(min_length=1)
    region: str = "ap-guangzhou"
    endpoint: str = "sms.tencentcloudapi.com"
    protocol: Literal["https", "http"] = "https"  # http only for a local test endpoint


class WechatConfig(_Strict):
    """Subscription messages under the shop's app (its secret from
    PAYMEND_WECHAT_APP_SECRET); the templates are the policy's (`wechat.templates`)."""

    app_id: str = Field(pattern=r"^wx[0-9a-f]{16}$")
    account: Literal["official_account", "mini_program"] = "official_account"
    base_url: HttpUrl = "https://api.weixin.qq.com"  # a local server for tests


class NotificationsConfig(_Strict):
    """Customer notices (docs/notifications.md): off unless a channel is configured."""

    # the notification policy file, relative to this one; None: the shipped policy
    policy: str | None = None
    aliyun_sms: AliyunSmsConfig | None = None
    tencent_sms: TencentSmsConfig | None = None
    wechat: WechatConfig | None = None
    # an apprise mailto:// or mailtos:// URL without its password (PAYMEND_SMTP_PASSWORD)
    email: str | None = Field(None, pattern=r"^mailtos?://")

    @property
    def enabled(self) -> bool:
        configured = (self.aliyun_sms, self.tencent_sms, self.wechat, self.email)
        return any(c is not None for c in configured)

    @model_validator(mode="after")
    def _one_sms_provider(self) -> NotificationsConfig:
        if self.aliyun_sms is not None and self.tencent_sms is not None:
            raise ValueError("one SMS provider: aliyun_sms or tencent_sms, not both")
        return self

    def policy_path(self, config_path: Path) -> Path | None:
        return None if self.policy is None else config_path.parent / self.policy


class OpsAlertsConfig(_Strict):
    """Paging on-call ops about incidents (docs/notifications.md): off unless `routes`
    names the routes file, relative to this one."""

    routes: str | None = None

    def routes_path(self, config_path: Path) -> Path | None:
        return None if self.routes is None else config_path.parent / self.routes


class ConsoleConfig(_Strict):
    """The web console (docs/console.md): its health badges and its sessions."""

    # a channel's success rate above `healthy` is healthy, above `degraded` degraded,
    # else failing (the industry's status pages use 98% and 95%)
    healthy: Rate = 0.98
    degraded: Rate = 0.95
    session_idle: Seconds = 1800.0  # a session unused this long ends
    session_max: Seconds = 43200.0  # and every session ends this long after log-in

    @model_validator(mode="after")
    def _ordered(self) -> ConsoleConfig:
        if self.degraded > self.healthy:
            raise ValueError("console.degraded must not be above console.healthy")
        return self


class CustomersConfig(_Strict):
    """The customers' pages (docs/customers.md): status links, pay-again, help and FAQ."""

    # where customers reach this server (links in notifications and in status_url);
    # unset: the URL the merchant's request came to
    public_url: str | None = Field(None, pattern=r"^https?://[^\s{}]+$")
    link_ttl: Seconds = 30 * 86400.0  # a status link works this long after it is made
    # the merchant's checkout, to pay the order again with another method; `{order_id}`
    # is filled in (a merchant's own `checkout_url` setting comes first)
    checkout_url: str | None = Field(None, pattern=r"^https?://\S*\{order_id\}\S*$")
    # data files, relative to this one: the FAQ, and the merchant's text per help article
    faq: str | None = None
    help_extra: str | None = None

    def path(self, config_path: Path, name: str | None) -> Path | None:
        return None if name is None else config_path.parent / name


# a channel's name is part of URLs (/v1/providers/{channel}/notifications) and env names
ChannelName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]


class PaymendConfig(_Strict):
    seed: int = 0
    simulator: SimulatorConfig = SimulatorConfig()
    providers: dict[ChannelName, Channel] = Field(min_length=1)
    # secrets of real channels, `<channel>: {<name>: value}`, relative to this file
    secrets_file: str | None = None
    routing: list[str] = Field(min_length=1)
    engine: EngineConfig = EngineConfig()
    worker: WorkerConfig = WorkerConfig()
    instances: InstancesConfig = InstancesConfig()
    idempotency: IdempotencyConfig = IdempotencyConfig()
    notifications: NotificationsConfig = NotificationsConfig()
    ops_alerts: OpsAlertsConfig = OpsAlertsConfig()

    console: ConsoleConfig = ConsoleConfig()
    customers: CustomersConfig = CustomersConfig()
    # the emergency playbooks file, relative to this one; None: the shipped playbooks
    playbooks: str | None = None
    # the banks and regions ops controls may name (a typo is refused rather than pausing
    # nothing); unset: any name of a sound shape. Channels' `regions` count as known too.
    banks: list[ScopeName] | None = None
    regions: list[ScopeName] | None = None

    def playbooks_path(self, config_path: Path) -> Path:
        from paymend.playbooks.model import DEFAULT_PATH

        return DEFAULT_PATH if self.playbooks is None else config_path.parent / self.playbooks

    def known_regions(self) -> frozenset[str] | None:
        """Regions named here or by a channel; None when none is named anywhere."""
        named = [
            *(self.regions or ()),
            *(r for ch in self.providers.values() for r in ch.regions or ()),
        ]
        declared = self.regions is not None or any(ch.regions for ch in self.providers.values())
        return frozenset(named) if declared else None

    @model_validator(mode="after")
    def _routing_names_providers(self) -> PaymendConfig:
        unknown = [r for r in self.routing if r not in self.providers]
        if unknown:
            raise ValueError(f"routing names unknown provider(s): {', '.join(unknown)}")
        return self


def load_config(path: str | Path) -> PaymendConfig:
    return load_model(PaymendConfig, path)


@dataclass(frozen=True, slots=True)
class Credential:
    """One secret of a channel: where it was found (never its value, which is only in
    `value`, a SecretStr that prints masked)."""

    name: str
    env: str  # the environment variable that would hold it
    source: str | None  # "environment", "secrets file" or None: missing
    value: SecretStr | None


def secret_env_name(channel: str, name: str) -> str:
    return f"PAYMEND_SECRET_{channel}_{name}".upper()


def channel_credentials(
    config: PaymendConfig,
    config_path: str | Path,
    environ: Mapping[str, str] | None = None,
) -> dict[str, list[Credential]]:
    """The credentials each real channel needs, from the environment first, then the
    secrets file; a missing one has `source` None (`config check` names it, the runtime
    refuses to build the channel). A secrets file that cannot be read raises
    DataFileError naming it."""
    env = os.environ if environ is None else environ
    secrets: dict[str, Any] = {}
    if config.secrets_file is not None:
        path = Path(config_path).parent / config.secrets_file
        data, _ = read_yaml(path)
        if not isinstance(data, dict):
            raise DataFileError(str(path), 1, "expected `<channel>: {<name>: value}`")
        secrets = data
    found: dict[str, list[Credential]] = {}
    for channel, ch in config.providers.items():
        if not isinstance(ch, ConnectorChannel):
            continue
        listed = secrets.get(channel) or {}
        creds = []
        for name in ch.CREDENTIALS:
            var = secret_env_name(channel, name)
            if env.get(var):
                creds.append(Credential(name, var, "environment", SecretStr(env[var])))
            elif isinstance(listed, dict) and listed.get(name):
                creds.append(Credential(name, var, "secrets file", SecretStr(str(listed[name]))))
            else:
                creds.append(Credential(name, var, None, None))
        found[channel] = creds
    return found


def mask(secret: SecretStr | None) -> str:
    """How a secret is shown: whether it is set and its length, never a character of it."""
    if secret is None:
        return "missing"
    return f"set ({len(secret.get_secret_value())} chars)"
