"""The channels of `paymend.yaml` (`providers:`): a tagged union on `type`, one model per
kind of channel, each validated with the line of any mistake. A simulated channel
(`type: simulator`) says its rates; a real provider's (`alipay`, `stripe`, `wechatpay`,
`adyen`) says where its API answers, its non-secret options and the names of the
credentials it needs, which come from the environment or the secrets file
(`config.channel_credentials`), never from here."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from paymend.datafiles import parse_duration
from paymend.domain.currencies import EXPONENTS

Duration = Annotated[float, BeforeValidator(parse_duration)]
Rate = Annotated[float, Field(ge=0.0, le=1.0)]
HttpUrl = Annotated[str, StringConstraints(pattern=r"^https?://[^\s/$.?#][^\s]*$")]


class Strict(BaseModel):
    """A section of paymend.yaml: an unknown key is a mistake, named with its line."""

    model_config = ConfigDict(extra="forbid")


class Latency(Strict):
    p50: float = Field(0.0, ge=0)
    p99: float = Field(0.0, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> Latency:
        if self.p99 and self.p99 < self.p50:
            raise ValueError("p99 must not be below p50")
        return self


class _Channel(Strict):
    """What every channel says: the methods, currencies and regions it takes."""

    methods: list[str] = Field(min_length=1)
    currencies: list[str] | None = None
    regions: list[str] | None = None

    @model_validator(mode="after")
    def _known_currencies(self) -> _Channel:
        unknown = [c for c in self.currencies or () if c not in EXPONENTS]
        if unknown:
            raise ValueError(f"unknown currency {', '.join(unknown)}")
        return self


class SimulatorChannel(_Channel):
    """A simulated channel: see `providers/simulator.py` for what each rate does."""

    type: Literal["simulator"]
    success_rate: Rate = 1.0
    declines: dict[str, Annotated[float, Field(gt=0)]] = Field(
        default_factory=lambda: {"DO_NOT_HONOR": 1.0}
    )
    authentication_rate: Rate = 0.0
    latency_ms: Latency = Latency()
    timeout_rate: Rate = 0.0
    charged_on_timeout: Rate = 0.0
    lost_response_rate: Rate = 0.0
    error_rate: Rate = 0.0
    outage: bool = False


class ConnectorChannel(_Channel):
    """A real provider's channel. `base_url` is where its API answers: the provider's
    production or sandbox host, or a local peer (the simulator's protocol face on
    127.0.0.1:PORT). `credentials` lists the secrets the connector needs, read from the
    environment or the secrets file, never from here. `options` are the connector's own
    settings that are not secret (an app id, a merchant account)."""

    CREDENTIALS: ClassVar[tuple[str, ...]] = ()
    BASE_URL: ClassVar[str] = ""

    base_url: HttpUrl | None = None
    timeout: Annotated[Duration, Field(gt=0)] | None = None  # per call; None: engine's
    options: dict[str, str | int | float | bool] = Field(default_factory=dict)

    def url(self) -> str:
        return self.base_url or self.BASE_URL


class AlipayChannel(ConnectorChannel):
    """Alipay open platform (providers/alipay/): RSA2 keys, `app_id`, the URL of this
    channel's notification endpoint as Alipay must call it (`notify_url`)."""

    CREDENTIALS = ("app_private_key", "alipay_public_key")
    BASE_URL = "https://openapi.alipay.com/gateway.do"

    type: Literal["alipay"]
    methods: list[str] = Field(default_factory=lambda: ["alipay"], min_length=1)
    currencies: list[str] | None = Field(default_factory=lambda: ["CNY"])
    app_id: str = Field(pattern=r"^\d{6,32}$")
    notify_url: HttpUrl | None = None
    # how a payment without a payment code is collected: a QR code the customer scans
    # (precreate), a desktop page (page.pay) or a mobile page (wap.pay)
    flow: Literal["qr", "page", "wap"] = "qr"
    return_url: HttpUrl | None = None
    subject: str = Field("paymend order", min_length=1, max_length=256)
    bill_days: int = Field(2, ge=1, le=31)  # daily bills `reconcile` reads, up to today


class StripeChannel(ConnectorChannel):
    """Stripe (providers/stripe/): cards through PaymentIntents. `return_url` is where a
    customer comes back from a redirect-based 3-D Secure page; without it redirect-based
    methods are turned off and 3-D Secure completes in Stripe.js. `settlement_days` is
    how far back `paymend reconcile` reads balance transactions."""

    CREDENTIALS = ("api_key", "webhook_secret")
    BASE_URL = "https://api.stripe.com"
    type: Literal["stripe"]
    methods: list[str] = Field(default_factory=lambda: ["card"], min_length=1)
    return_url: HttpUrl | None = None
    settlement_days: int = Field(3, ge=1, le=90)


class WechatpayChannel(ConnectorChannel):
    """WeChat Pay API v3, public-key mode (providers/wechatpay/): the merchant's API key
    (`mch_private_key`, its certificate's `mch_serial_no`), the APIv3 key that opens
    notifications, and the WeChat Pay public key with its id (`PUB_KEY_ID_…`)."""

    CREDENTIALS = ("mch_private_key", "api_v3_key", "wechatpay_public_key")
    BASE_URL = "https://api.mch.weixin.qq.com"

    type: Literal["wechatpay"]
    methods: list[str] = Field(default_factory=lambda: ["wechat_pay"], min_length=1)
    currencies: list[str] | None = Field(default_factory=lambda: ["CNY"])
    mchid: str = Field(pattern=r"^\d{6,32}$")
    appid: str = Field(pattern=r"^wx[0-9a-zA-Z]{6,30}$")
    mch_serial_no: str = Field(pattern=r"^[0-9A-Fa-f]{8,64}$")
    wechatpay_public_key_id: str = Field(pattern=r"^PUB_KEY_ID_[0-9A-Za-z_]{1,64}$")
    notify_url: HttpUrl | None = None
    # how a payment without a payment code is collected: a QR code (Native), inside
    # WeChat (JSAPI, the payer's openid in the payment's metadata), a mobile page (H5)
    flow: Literal["native", "jsapi", "h5"] = "native"
    description: str = Field("paymend order", min_length=1, max_length=127)
    store_id: str = Field("paymend", min_length=1, max_length=32)  # codepay's store
    bill_days: int = Field(2, ge=1, le=31)  # trade bills `reconcile` reads, up to today


class AdyenChannel(ConnectorChannel):
    """Adyen Checkout API v71 (providers/adyen/): the API key and the webhooks' HMAC key
    (hex, from the Customer Area), the merchant account, where the shopper comes back
    after a redirect (`return_url`), and where the Settlement details report is
    downloaded (`report_url`, read by `paymend reconcile`). Live accounts use their
    `https://<prefix>-checkout-live.adyenpayments.com/checkout` as `base_url`."""

    CREDENTIALS = ("api_key", "hmac_key")
    BASE_URL = "https://checkout-test.adyen.com"
    type: Literal["adyen"]
    methods: list[str] = Field(default_factory=lambda: ["card"], min_length=1)
    merchant_account: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,80}$")
    return_url: HttpUrl
    report_url: HttpUrl | None = None


Channel = Annotated[
    SimulatorChannel | AlipayChannel | StripeChannel | WechatpayChannel | AdyenChannel,
    Field(discriminator="type"),
]
