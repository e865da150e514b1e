"""The notification policy is data: the shipped one loads, and mistakes name their line."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from paymend.datafiles import DataFileError
from paymend.notify.policy import ChannelName, NoticeKind, load_policy

GOOD = """\
version: 1
channels: [sms, email]
failure_hold: 90s
status_url: "https://shop.example/p/{payment_id}"
support: "400-800-1234"
events:
  payment_failed: {}
  payment_held: {notify: false}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "notifications.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_policy_loads_and_tells_every_kind() -> None:
    policy = load_policy()
    assert policy.channels == [ChannelName.SMS, ChannelName.WECHAT, ChannelName.EMAIL]
    assert all(policy.rule(kind) is not None for kind in NoticeKind)
    assert policy.sms is not None and set(policy.sms.templates) == set(NoticeKind)


def test_a_merchant_policy_sets_channels_hold_and_which_events_notify(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, GOOD))
    assert policy.failure_hold == 90.0
    assert policy.channels_for(NoticeKind.PAYMENT_FAILED) == [ChannelName.SMS, ChannelName.EMAIL]
    assert policy.rule(NoticeKind.PAYMENT_HELD) is None  # turned off
    assert policy.rule(NoticeKind.REFUND_DONE) is None  # not listed


@pytest.mark.parametrize(
    ("change", "line", "words"),
    [
        (("channels: [sms, email]", "channels: [sms, pigeon]"), 2, "channels.1"),
        (("failure_hold: 90s", "failure_hold: soon"), 3, "not a duration"),
        (("{payment_id}", "{id}"), 4, "status_url"),
        (("  payment_held", "  payment_lost"), 8, "events.payment_lost"),
        (("version: 1", "version: 1\nsuport: x"), 2, "unknown key"),
        (("channels: [sms, email]", "channels: [sms, sms]"), 2, "listed twice"),
    ],
)
def test_a_mistake_refuses_to_load_and_names_its_line(
    tmp_path: Path, change: tuple[str, str], line: int, words: str
) -> None:
    path = write(tmp_path, GOOD.replace(*change))
    with pytest.raises(DataFileError) as caught:
        load_policy(path)
    assert caught.value.line == line, str(caught.value)
    assert str(path) in str(caught.value) and words in str(caught.value)


def test_quiet_hours_wait_until_their_end_in_the_customers_zone() -> None:
    hours = load_policy().quiet_hours
    assert hours is not None  # 22:00-08:00 Asia/Shanghai
    night = datetime(2026, 12, 1, 15, 30, tzinfo=UTC)  # 23:30 in Shanghai
    assert hours.wait_s(night) == 8.5 * 3600
    assert hours.wait_s(datetime(2026, 12, 1, 4, 0, tzinfo=UTC)) == 0.0  # noon there
    assert hours.wait_s(night, "Europe/London") == 0.0  # 15:30 in London
