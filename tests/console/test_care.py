"""Customer service's actions on a payment page over real HTTP: a status query at the
provider, a note, a link to pay another way and a notice sent again, each confirmed
where it reaches the customer, limited to the support role and on the timeline."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from paymend.config import PaymendConfig, Settings
from paymend.domain.status_links import verify
from paymend.engine.runtime import build_runtime
from paymend.store import controls, notices
from tests.api.conftest import running
from tests.console.conftest import CONSOLE_CONFIG, Console, form_token
from tests.console.test_pages import DECLINED, _pay, _text
from tests.helpers import ManualClock

# a channel that reaches customers, so notices are planned (nothing listens on port 9:
# what is checked here is what the console asks for, not the delivery)
NOTIFYING = {
    **CONSOLE_CONFIG,
    "notifications": {"email": "mailto://shop:pw@127.0.0.1:9"},
    "customers": {"public_url": "https://pay.shop.cn"},  # the shipped policy's signed link
}
LINK_KEY = "a-link-key-for-tests-only-0123456789"


@pytest.fixture
def notifying(sqlite_url: str, clock: ManualClock) -> Iterator[Console]:
    config = PaymendConfig.model_validate(NOTIFYING)
    runtime = build_runtime(
        Settings(database_url=sqlite_url, link_key=LINK_KEY), config, clock=clock
    )
    with running(runtime) as server:
        yield Console(server, clock)


def test_support_queries_notes_links_and_resends_from_the_payment_page(
    notifying: Console,
) -> None:
    console = notifying
    failed = _pay(console, DECLINED)
    store = console.server.runtime.store
    viewer = console.login(console.operator("vi-an", "viewer"))
    assert viewer.post(f"/console/payments/{failed['id']}/note", data={}).status_code == 403
    client = console.login(console.operator("cs-wang", "support"))
    url = f"/console/payments/{failed['id']}"
    first = client.get(url).text
    token = form_token(first, "csrf")
    assert f'action="{url}/link"' in first  # notices are configured: the link is offered

    asked = client.post(f"{url}/query", data={"csrf": token})
    assert asked.status_code == 303, asked.text
    assert "sim_a says: failed (DO_NOT_HONOR)" in _text(client.get(asked.headers["location"]))

    noted = client.post(
        f"{url}/note", data={"note": "customer called, wants WeChat Pay", "csrf": token}
    )
    assert noted.status_code == 303
    assert client.post(f"{url}/note", data={"note": " ", "csrf": token}).status_code == 400

    link = {"reason": "card declined twice", "csrf": token}
    assert client.post(f"{url}/link", data=link).status_code == 400  # not confirmed
    sent = client.post(f"{url}/link", data={**link, "confirm": "yes"})
    assert sent.status_code == 303, sent.text
    (intent,) = store.run_sync(lambda c: notices.for_payment(c, failed["id"]))
    assert intent.kind == "finish_link"
    link_url = intent.facts["link"]  # no checkout_url for the shop: paymend's own page
    assert link_url.startswith("https://pay.shop.cn/pay/")
    opened = verify(LINK_KEY.encode(), link_url.rsplit("/", 1)[1], console.clock.now())
    assert opened.payment_id == failed["id"]
    again = client.post(f"{url}/link", data={**link, "confirm": "yes"})
    assert again.status_code == 409  # one link per payment: send that notice again

    resend = {"notice": intent.id, "reason": "no SMS arrived", "confirm": "yes", "csrf": token}
    assert client.post(f"{url}/resend", data=resend).status_code == 409  # still going out
    store.run_sync(lambda c: notices.update(c, intent.id, console.clock.now(), status="failed"))
    assert client.post(f"{url}/resend", data=resend).status_code == 303
    resent = store.run_sync(lambda c: notices.get(c, intent.id))
    assert resent is not None and resent.status == "pending"

    page = client.get(url)
    entries = page.text.split('data-kind="audit"')[1:]
    assert len(entries) == 4 and "customer called, wants WeChat Pay" in _text(page)
    actions = [
        e["action"]
        for e in store.run_sync(
            lambda c: controls.audit_entries(c, 10, target=f"payment:{failed['id']}")
        )
        if e["action"] != "payment.lookup"
    ]
    assert actions == [
        "payment.notice_resend",
        "payment.finish_link",
        "payment.note",
        "payment.status_query",
    ]
    assert all(
        e["actor"] == "operator:cs-wang"
        for e in store.run_sync(
            lambda c: controls.audit_entries(c, 4, target=f"payment:{failed['id']}")
        )
        if e["action"] != "payment.lookup"
    )
