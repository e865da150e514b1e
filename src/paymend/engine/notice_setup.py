"""Customer notices as paymend.yaml configures them: the policy, and a channel for each
configured way of reaching customers (secrets from the environment)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from paymend.config import NotificationsConfig
from paymend.datafiles import DataFileError
from paymend.domain.clock import Clock
from paymend.engine.customer_notices import CustomerNotices
from paymend.engine.payments import PaymentService
from paymend.notify.channel import Channel
from paymend.notify.policy import ChannelName, load_policy
from paymend.notify.templates import Templates


def missing_secrets(
    config: NotificationsConfig, environ: Mapping[str, str] | None = None
) -> list[str]:
    """What each configured channel needs from the environment and is not set there, as
    `notifications.<channel>: <VARIABLE> is not set`: such a channel could never send,
    so paymend refuses to start with it and `paymend config check` names it."""
    env = os.environ if environ is None else environ
    needed: list[tuple[str, str]] = []
    if config.aliyun_sms is not None:
        from paymend.notify.aliyun_sms import ACCESS_KEYS

        needed += [("aliyun_sms", key) for key in ACCESS_KEYS]
    if config.tencent_sms is not None:
        from paymend.notify.tencent_sms import SECRET_KEYS

        needed += [("tencent_sms", key) for key in SECRET_KEYS]
    if config.wechat is not None:
        from paymend.notify.wechat_subscribe import SECRET_ENV

        needed.append(("wechat", SECRET_ENV))
    return [f"notifications.{where}: {key} is not set" for where, key in needed if not env.get(key)]


def build_customer_notices(
    config: NotificationsConfig,
    config_path: Path,
    service: PaymentService,
    clock: Clock,
    *,
    link_key: bytes | None = None,
    link_ttl_s: float = 30 * 86400.0,
    public_url: str | None = None,
) -> CustomerNotices | None:
    """None when no channel is configured: no notice is planned at all. A broken policy
    or template refuses to start (DataFileError names the file and line), and so does a
    link that cannot be made: a `status_url` with a `{token}` and no link key to sign
    it, or none at all (paymend's own status page) without the key and
    `customers.public_url`, since a notice has no request to take the server's URL from."""
    if not config.enabled:
        return None
    policy_path = config.policy_path(config_path)
    policy = load_policy(policy_path)
    if "{token}" in (policy.status_url or "") and link_key is None:
        raise DataFileError(
            str(policy_path or "notify/policy.yaml"),
            None,
            "status_url: {token} needs PAYMEND_LINK_KEY (the key customers' links are signed with)",
        )
    if policy.status_url is None and (link_key is None or public_url is None):
        raise DataFileError(
            str(config_path),
            None,
            "notifications: customers are sent their status page's link (/pay/{token}): it "
            "needs PAYMEND_LINK_KEY and customers.public_url (or the notification policy's "
            "own status_url)",
        )
    unset = missing_secrets(config)
    if unset:
        raise DataFileError(str(config_path), None, unset[0])
    templates = Templates()
    channels: dict[ChannelName, Channel] = {}
    if config.aliyun_sms is not None:
        from paymend.notify.aliyun_sms import AliyunSmsChannel, AliyunSmsSettings

        sign = policy.sms.sign_name if policy.sms else "paymend"
        env = AliyunSmsSettings.from_env(sign, config.aliyun_sms.endpoint)
        channels[ChannelName.SMS] = AliyunSmsChannel(
            AliyunSmsSettings(
                env.access_key_id,
                env.access_key_secret,
                sign,
                config.aliyun_sms.endpoint,
                config.aliyun_sms.protocol,
            )
        )
    if config.tencent_sms is not None:
        from paymend.notify.tencent_sms import TencentSmsChannel, TencentSmsSettings

        t = config.tencent_sms
        channels[ChannelName.SMS] = TencentSmsChannel(
            TencentSmsSettings.from_env(
                t.sdk_app_id,
                policy.sms.sign_name if policy.sms else "paymend",
                region=t.region,
                endpoint=t.endpoint,
                protocol=t.protocol,
            )
        )
    if config.wechat is not None:
        from paymend.notify.wechat_subscribe import (
            WechatSettings,
            WechatSubscribeChannel,
        )

        w = config.wechat
        if policy.wechat is None:
            raise DataFileError(
                str(config_path),
                None,
                "notifications.wechat: the notification policy has no wechat templates",
            )
        settings = WechatSettings.from_env(w.app_id, str(w.base_url), w.account)
        channels[ChannelName.WECHAT] = WechatSubscribeChannel(settings, clock)
    if config.email is not None:
        from paymend.notify.email_channel import EmailChannel

        channels[ChannelName.EMAIL] = EmailChannel(config.email)
    return CustomerNotices(
        service.store,
        clock,
        service.ids,
        vault=service.pii,
        messages=service.classifier.messages,
        policy=policy,
        templates=templates,
        channels=channels,
        checkout_deadline_s=service.settings.checkout_deadline_s,
        link_key=link_key,
        link_ttl_s=link_ttl_s,
        public_url=public_url,
    )
