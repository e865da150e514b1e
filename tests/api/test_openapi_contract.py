"""The OpenAPI document tells the truth: schemathesis reads `/openapi.json` from a real
server, on SQLite and PostgreSQL, and sends it requests made from the document (its
examples, boundary values, generated data, valid and invalid, and sequences of calls
along the document's links), with a real merchant key and a real admin operator key.

Every answer must be documented: no 5xx, a documented status and content type, a body of
the documented schema and headers as documented; data the document calls valid is taken,
data it calls invalid refused; a 405 names the methods a path takes; an operation that
needs a key refuses a request without one. The run is bounded and derandomized: the same
requests every time. On SQLite every phase runs; on PostgreSQL, whose answers differ
only where the store does, the boundary values of each parameter are left out.

The merchant API and the ops API run against two servers: an operator's pause of every
channel would otherwise turn the merchant's payments into 503s, which are right then.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from paymend.config import PaymendConfig, Settings
from paymend.engine.runtime import build_runtime
from paymend.store import incidents
from paymend.store.pii import DataKey
from tests.api.conftest import CONFIG, Server, running
from tests.api.test_incidents_api import open_incident
from tests.api.test_payments_api import BODY
from tests.helpers import NOW, WAIT_S, make_operator

HOOKS = Path(__file__).parent / "contract" / "hooks.py"

# Bounded: each operation gets a few generated examples besides the document's own
# examples and boundary values; stateful sequences follow the links a few steps deep.
# Responses are not mined for test data, nor are links guessed: the run only uses the
# keys it is given, and never learns the name of its own operator or merchant (whose
# keys it could otherwise rotate away in the middle of the run).
SETTINGS = """
seed = 20261124
workers = 1
hooks = "{hooks}"
cache.enabled = false  # no failures of earlier runs replayed: each run is the same

[generation]
max-examples = {examples}
deterministic = true
database = "none"

[phases.examples]
extra-data-sources.responses = false
[phases.coverage]
enabled = {coverage}
extra-data-sources.responses = false
[phases.fuzzing]
extra-data-sources.responses = false
[phases.stateful]
max-steps = 10
inference.algorithms = []
generation.max-examples = {scenarios}

[checks]
enabled = true
{checks}

[auth.openapi.{scheme}]
bearer = "${{PAYMEND_CONTRACT_KEY}}"
"""

# What the document cannot say, as paymend checks it against its data: an unknown
# `starting_after` is 400 (a cursor must be an id of the list); a refund above what is
# left to refund, and compensations above the shop's cap, are 400 too; feedback that
# says nothing (no rating, reason or text) is refused with 400. Generated values rarely
# fit, so these operations are not held to "valid data is accepted" for a 400.
MERCHANT_CHECKS = """
[[operations]]
include-operation-id = [
    "list_payments", "list_events", "create_refund", "create_compensation", "give_feedback"
]
checks.positive_data_acceptance.expected-statuses = ["2xx", 400, 401, 404, 409]
# a provider's notification to a channel this server does not have (the contract run
# configures simulated channels only, which take none): 404, whatever the body
[[operations]]
include-operation-id = ["provider_notification"]
checks.positive_data_acceptance.expected-statuses = ["2xx", 400, 404, 409]
"""
# A silence ends within the next 30 days, a control within the next 7: times the
# document cannot place relative to now, so generated times are mostly refused with 400.
OPS_CHECKS = """
[[operations]]
include-operation-id = ["add_silence", "add_control", "preview_control"]
checks.positive_data_acceptance.expected-statuses = ["2xx", 400, 401]
# Releasing a held payment while a control (set earlier in the same run) pauses every
# channel of its method answers 503 `payment_method_unavailable`, as documented.
[[operations]]
include-operation-id = ["release_payment"]
checks.not_a_server_error.expected-statuses = ["1xx", "2xx", "3xx", "4xx", 503]
"""
EXAMPLES = 5  # generated per operation and phase, beside the document's own and its bounds
SCENARIOS = 40  # sequences of calls along the links
# On PostgreSQL the run checks what the store answers, not again what every request's
# parsing does: no boundary values of each parameter (the coverage phase, ~1,500 requests
# answered before any query), fewer generated examples and sequences.
PG_EXAMPLES, PG_SCENARIOS = 2, 20
MERCHANT_PATHS = (
    "^/(v1/(payments|events|failure-codes|providers|customers|feedback)|help/|healthz|metrics)"
)
OPS_PATHS = "^/v1/ops/"


def schemathesis(
    server: Server, key: str, scheme: str, paths: str, checks: str, tmp_path: Path
) -> tuple[int, str, float]:
    """Run the schemathesis command against `server` for the operations whose path
    matches `paths`; (exit status, output, seconds)."""
    config = tmp_path / f"{scheme}.toml"
    full = server.runtime.settings.database_url.startswith("sqlite")
    config.write_text(
        SETTINGS.format(
            hooks=HOOKS,
            examples=EXAMPLES if full else PG_EXAMPLES,
            scenarios=SCENARIOS if full else PG_SCENARIOS,
            coverage="true" if full else "false",
            checks=checks,
            scheme=scheme,
        )
    )
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(config),
        "--no-color",
        "run",
        f"{server.url}/openapi.json",
        "--include-path-regex",
        paths,
    ]
    env = {**os.environ, "PAYMEND_CONTRACT_KEY": key}
    start = time.monotonic()
    done = subprocess.run(
        command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    return done.returncode, done.stdout + done.stderr, time.monotonic() - start


@pytest.fixture
def contract_server(db_url: str) -> Iterator[Server]:
    """The API tests' server, with a data key, so payments can be searched by the
    customer's email and phone as the document says."""
    settings = Settings(database_url=db_url, data_key=DataKey.generate().encoded())
    runtime = build_runtime(settings, PaymendConfig.model_validate(CONFIG))
    with running(runtime) as server:
        yield server


def tomorrow() -> str:
    """An end time within the 7 days a control may last (the server's clock is the wall's)."""
    return (datetime.now(UTC) + timedelta(days=1)).isoformat()


def something_to_look_at(server: Server, admin: str) -> None:
    """What operators work on, so the ops API's lists are not empty and its links lead
    somewhere: a held payment (under a hold set through the API) and incidents, one
    resolved."""
    ops = {"Authorization": f"Bearer {admin}"}
    hold = {"kind": "hold", "scope": "bank", "value": "CMB", "amount_above": 1000}
    hold |= {"currency": "CNY", "reason": "contract test", "ends_at": tomorrow()}
    assert (
        httpx.post(
            f"{server.url}/v1/ops/controls", json=hold, headers=ops, timeout=WAIT_S
        ).status_code
        == 201
    )
    with server.client() as merchant:
        held = merchant.post("/v1/payments", json={**BODY, "amount": 5000, "bank": "CMB"})
        assert held.json()["status"] == "held", held.text
    store = server.runtime.store
    open_incident(store, "inc_resolved", "Timeouts for CMB cards", "CMB", 0)
    store.run_sync(lambda c: incidents.resolve(c, "inc_resolved", NOW, "recovered"))
    open_incident(store, "inc_open", "Declines at ICBC", "ICBC", 1)


def test_the_merchant_api_answers_as_its_document_says(
    contract_server: Server, tmp_path: Path
) -> None:
    status, output, seconds = schemathesis(
        contract_server,
        contract_server.key,
        "MerchantKey",
        MERCHANT_PATHS,
        MERCHANT_CHECKS,
        tmp_path,
    )
    print(f"schemathesis, merchant API: {seconds:.1f}s\n{output[-3000:]}")
    assert status == 0, output


def test_the_ops_api_answers_as_its_document_says(contract_server: Server, tmp_path: Path) -> None:
    admin = make_operator(contract_server.runtime.store, "contract-admin", "admin")
    something_to_look_at(contract_server, admin)
    status, output, seconds = schemathesis(
        contract_server, admin, "OperatorKey", OPS_PATHS, OPS_CHECKS, tmp_path
    )
    print(f"schemathesis, ops API: {seconds:.1f}s\n{output[-3000:]}")
    assert status == 0, output


def test_the_two_runs_test_every_operation(contract_server: Server) -> None:
    document = httpx.get(f"{contract_server.url}/openapi.json", timeout=WAIT_S).json()
    for path in document["paths"]:
        runs = [r for r in (MERCHANT_PATHS, OPS_PATHS) if re.match(r, path)]
        assert len(runs) == 1, path
