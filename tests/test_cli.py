"""The paymend command: every subcommand has help, and the ones a newcomer runs work."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import importlib
import json
import os
import subprocess
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from paymend.cli import main
from paymend.cli.base import COMMANDS
from paymend.engine.clock import SystemClock
from paymend.failures.classify import default_classifier
from paymend.store import controls, keys, merchants, operators
from paymend.store.database import Store
from tests import ports
from tests.helpers import WAIT_S


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["serve"],
        ["api"],
        ["worker"],
        ["db"],
        ["db", "upgrade"],
        ["merchants"],
        ["merchants", "create"],
        ["merchants", "keys"],
        ["merchants", "keys", "list"],
        ["merchants", "keys", "rotate"],
        ["merchants", "keys", "revoke"],
        ["operators"],
        ["operators", "create"],
        ["operators", "list"],
        ["operators", "rotate"],
        ["operators", "revoke"],
        ["operators", "role"],
        ["config", "check"],
        ["silences"],
        ["silences", "add"],
        ["silences", "list"],
        ["silences", "end"],
        ["risk"],
        ["risk", "check"],
        ["risk", "backtest"],
        ["feedback"],
        ["feedback", "report"],
    ],
)
def test_every_command_has_help(args: list[str]) -> None:
    result = CliRunner().invoke(main, [*args, "--help"])
    assert result.exit_code == 0
    assert "Usage: " in result.output
    assert len(result.output.splitlines()) > 3


def test_the_listing_says_what_each_command_says_of_itself() -> None:
    """`paymend --help` lists the commands without importing them (COMMANDS): each entry
    names the module that registers the command and repeats its help's first line."""
    for name, (module, first_line) in COMMANDS.items():
        importlib.import_module(module)
        command = main.commands[name]
        assert command.callback is not None
        assert command.callback.__module__.startswith(module), name
        assert command.get_short_help_str(10_000) == first_line, name
    assert set(main.commands) == set(COMMANDS)  # every module imported: none left out


def test_help_and_version_load_neither_the_engine_nor_the_database() -> None:
    script = (
        "import sys\n"
        "from paymend.cli import main\n"
        "for args in (['--help'], ['--version']):\n"
        "    try:\n"
        "        main(args)\n"
        "    except SystemExit as done:\n"
        "        assert done.code == 0, done.code\n"
        "heavy = {'sqlalchemy', 'pydantic', 'fastapi', 'paymend.engine', 'paymend.store'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert "Commands:" in done.stdout and "merchants" in done.stdout
    assert done.stdout.rstrip().splitlines()[-1] == "[]"


def test_db_upgrade_then_merchant_create_prints_a_working_key(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    env = {"PAYMEND_DATABASE_URL": url}
    runner = CliRunner()
    upgraded = runner.invoke(main, ["db", "upgrade"], env=env)
    assert upgraded.exit_code == 0, upgraded.output
    created = runner.invoke(main, ["merchants", "create", "Acme Shop"], env=env)
    assert created.exit_code == 0, created.output
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("sk_")
    store = Store(url, inline=True)
    try:
        found = store.run_sync(lambda c: merchants.by_api_key(c, key, SystemClock().now()))
        assert found is not None and found.name == "Acme Shop"
        for table in ("merchants", "merchant_keys", "audit_log"):
            rows = store.run_sync(partial(_all_rows, table=table))
            assert rows and key not in str(rows)
    finally:
        store.close()


def _all_rows(conn: sa.Connection, table: str) -> list[Any]:
    return list(conn.execute(sa.text(f"SELECT * FROM {table}")).all())


def test_operators_are_created_rotated_revoked_and_audited(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    env = {"PAYMEND_DATABASE_URL": url}
    runner = CliRunner()
    assert runner.invoke(main, ["db", "upgrade"], env=env).exit_code == 0

    def run(*args: str) -> Result:
        return runner.invoke(main, list(args), env=env)

    created = run("operators", "create", "ops-lin", "--role", "ops")
    assert created.exit_code == 0, created.output
    first = created.stdout.strip().splitlines()[-1]
    assert first.startswith("opk_")
    assert "operator:ops-lin" in created.stderr
    store = Store(url, inline=True)
    try:

        def who(key: str) -> str | None:
            now = SystemClock().now()
            found = store.run_sync(lambda c: operators.authenticate(c, keys.hash_key(key), now))
            return f"{found[0].name} ({found[0].role.value})" if found else None

        assert who(first) == "ops-lin (ops)"
        rotated = run("operators", "rotate", "ops-lin", "--overlap", "0", "--reason", "yearly")
        assert rotated.exit_code == 0, rotated.output
        second = rotated.stdout.strip().splitlines()[-1]
        assert who(second) == "ops-lin (ops)" and who(first) is None  # no overlap: gone now
        assert run("operators", "role", "ops-lin", "viewer").exit_code == 0
        assert who(second) == "ops-lin (viewer)"
        listed = run("operators", "list", "--json")
        (line,) = [json.loads(x) for x in listed.stdout.splitlines()]
        assert [k["status"] for k in line["keys"]] == ["expired", "active"]
        assert first not in listed.output and second not in listed.output
        revoked = run("operators", "revoke", "ops-lin", "--all", "--reason", "left the team")
        assert revoked.exit_code == 0 and who(second) is None
        audit = store.run_sync(lambda c: controls.audit_entries(c))
        assert [e["action"] for e in audit] == [
            "operator.key.revoke",
            "operator.role",
            "operator.key.rotate",
            "operator.create",
        ]
        assert {e["actor"] for e in audit} == {f"cli:{getpass.getuser()}"}
        assert first not in str(audit) and second not in str(audit)
    finally:
        store.close()
    refusals = [
        (run("operators", "create", "ops-lin", "--role", "ops"), "an operator named 'ops-lin'"),
        (run("operators", "create", "Ops Lin", "--role", "ops"), "lower-case"),
        (run("operators", "create", "x", "--role", "root"), "'root' is not one of"),
        (run("operators", "revoke", "ops-lin"), "give KEY_ID or --all"),
        (run("operators", "rotate", "nobody"), "no operator 'nobody'"),
        (run("operators", "rotate", "ops-lin", "--overlap", "soon"), "not a duration"),
    ]
    for result, words in refusals:
        assert result.exit_code != 0 and words in result.output, result.output


def test_merchant_names_are_unique_and_keys_rotate_from_the_cli(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    env = {"PAYMEND_DATABASE_URL": url}
    runner = CliRunner()
    assert runner.invoke(main, ["db", "upgrade"], env=env).exit_code == 0

    def run(*args: str) -> Result:
        return runner.invoke(main, list(args), env=env)

    first = run("merchants", "create", "Acme Shop").stdout.strip().splitlines()[-1]
    twice = run("merchants", "create", "Acme Shop")
    assert twice.exit_code == 1 and "a merchant named 'Acme Shop' exists" in twice.output
    rotated = run("merchants", "keys", "rotate", "Acme Shop", "--overlap", "1h")
    assert rotated.exit_code == 0, rotated.output
    second = rotated.stdout.strip().splitlines()[-1]
    assert second.startswith("sk_") and "keeps working until" in rotated.stderr
    listed = run("merchants", "keys", "list", "Acme Shop", "--json")
    old, new = [json.loads(x) for x in listed.stdout.splitlines()]
    assert (old["status"], new["status"]) == ("active", "active")
    assert old["expires_at"] is not None and new["expires_at"] is None
    assert old["hint"].endswith(first[-4:]) and new["hint"].endswith(second[-4:])
    revoked = run("merchants", "keys", "revoke", "Acme Shop", old["id"])
    assert revoked.exit_code == 0 and old["id"] in revoked.output
    store = Store(url, inline=True)
    try:
        now = SystemClock().now()
        assert store.run_sync(lambda c: merchants.by_api_key(c, first, now)) is None
        assert store.run_sync(lambda c: merchants.by_api_key(c, second, now)) is not None
        audit = [e["action"] for e in store.run_sync(controls.audit_entries)]
        assert audit == ["merchant.key.revoke", "merchant.key.rotate", "merchant.create"]
    finally:
        store.close()
    unknown = run("merchants", "keys", "list", "Nobody")
    assert unknown.exit_code == 1 and "no merchant 'Nobody'" in unknown.output


def test_config_check_names_the_line_of_a_mistake(tmp_path: Path) -> None:
    path = tmp_path / "paymend.yaml"
    path.write_text(
        "providers:\n  sim_a:\n    type: simulator\n    methods: [card]\n"
        "    speed: 3\nrouting: [sim_a]\n"
    )
    result = CliRunner().invoke(main, ["config", "check", str(path)])
    assert result.exit_code == 1
    assert f"{path}:5: providers.sim_a.speed: unknown key" in result.output


def test_a_bad_database_url_fails_with_a_message(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["db", "upgrade"],
        env={"PAYMEND_DATABASE_URL": "postgresql+psycopg://u:secret@127.0.0.1:1/x"},
    )
    assert result.exit_code == 1
    assert "migration failed" in result.output
    assert "secret" not in result.output


def test_explain_code_in_both_languages_and_as_json() -> None:
    runner = CliRunner()
    zh = runner.invoke(
        main, ["explain-code", "alipay", "ACQ.BUYER_BALANCE_NOT_ENOUGH", "--locale", "zh-CN"]
    )
    assert zh.exit_code == 0 and "insufficient_funds" in zh.output and "余额" in zh.output
    out = runner.invoke(main, ["explain-code", "card", "05", "--json"])
    info = json.loads(out.output)
    assert info["code"] == "generic_decline" and info["retry_same_channel"] is False
    assert set(info) >= {
        "provider",
        "raw_code",
        "code",
        "kind",
        "category",
        "action",
        "retry_same_channel",
        "customer_message",
        "source",
    }
    assert set(info["customer_message"]) == {"title", "detail", "suggestions"}


def test_explain_code_reads_every_mapped_code_from_stdin() -> None:
    classifier = default_classifier()
    pairs = [(name, code) for name, pmap in classifier.maps.items() for (_, code) in pmap.codes]
    assert any(" " in code for _, code in pairs)  # Adyen's refusal reasons by name
    text = "\n".join(f"{p} {c}" for p, c in pairs) + "\n"
    result = CliRunner().invoke(main, ["explain-code", "--stdin", "--json"], input=text)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(line["provider"], line["raw_code"]) for line in lines] == pairs
    assert all(line["code"] for line in lines)
    assert sum(line["code"] == "unrecognized_response" for line in lines) == 0


def test_explain_code_reports_a_bad_line_on_its_line_and_goes_on() -> None:
    text = "stripe do_not_honor\noops\n\n# a comment\npaypal X\nadyen Issuer Unavailable\ncard 94\n"
    result = CliRunner().invoke(main, ["explain-code", "--stdin", "--json"], input=text)
    assert result.exit_code == 1
    explained = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(e["provider"], e["raw_code"], e["code"]) for e in explained] == [
        ("stripe", "do_not_honor", "generic_decline"),
        ("adyen", "Issuer Unavailable", "issuer_unavailable"),
        ("card", "94", "duplicate_transaction"),
    ]
    errors = result.stderr.splitlines()
    assert errors[0].startswith("<stdin>:2: expected 'PROVIDER CODE'")
    assert errors[1].startswith("<stdin>:5: unknown provider 'paypal' (known: adyen, alipay,")
    assert errors[2] == "2 lines could not be explained"
    text_mode = CliRunner().invoke(main, ["explain-code", "--stdin"], input="paypal X\ncard 05\n")
    assert text_mode.exit_code == 1 and "<stdin>:1: unknown provider 'paypal'" in text_mode.stderr
    assert "card 05 -> generic_decline" in text_mode.stdout
    good = CliRunner().invoke(main, ["explain-code", "--stdin"], input="card 05\n\n")
    assert good.exit_code == 0 and not good.stderr
    unknown = CliRunner().invoke(main, ["explain-code", "paypal", "X"])
    assert unknown.exit_code == 1 and "unknown provider 'paypal'" in unknown.output


def test_explain_code_lists_codes_no_map_knows(tmp_path: Path) -> None:
    from paymend.domain.money import Money
    from paymend.engine.clock import LoopClock
    from paymend.engine.commands import PayCommand
    from paymend.engine.virtual_time import run_virtual
    from paymend.store.migrate import upgrade
    from tests.helpers import make_merchant, service, simulator

    url = f"sqlite:///{tmp_path / 'u.db'}"
    upgrade(url)
    store = Store(url, inline=True)
    mid, _ = make_merchant(store)

    async def pay() -> None:
        clock = LoopClock()
        svc = service(store, {"sim_a": simulator(clock=clock)}, clock)
        await svc.pay(PayCommand(mid, "o", Money(100, "CNY"), "card", token="sim_error_brand_new"))

    run_virtual(pay())
    store.close()
    result = CliRunner().invoke(
        main, ["explain-code", "--unmapped", "--json"], env={"PAYMEND_DATABASE_URL": url}
    )
    assert result.exit_code == 0, result.output
    (row,) = [json.loads(line) for line in result.output.splitlines()]
    assert (row["provider"], row["raw_code"]) == ("sim_a", "BRAND_NEW")


def test_reconcile_reads_the_simulators_ledger_from_another_process(tmp_path: Path) -> None:
    from paymend.config import Settings, load_config
    from paymend.domain.money import Money
    from paymend.engine.commands import PayCommand
    from paymend.engine.runtime import build_runtime
    from paymend.store.migrate import upgrade
    from tests.helpers import make_merchant

    url = f"sqlite:///{tmp_path / 'r.db'}"
    upgrade(url)
    config_path = tmp_path / "paymend.yaml"
    config_path.write_text(
        "simulator: {ledger: " + str(tmp_path / "sim.db") + "}\n"
        "providers:\n  sim_a: {type: simulator, methods: [card]}\nrouting: [sim_a]\n"
    )
    env = {"PAYMEND_DATABASE_URL": url, "PAYMEND_CONFIG": str(config_path)}
    runtime = build_runtime(Settings(database_url=url), load_config(config_path))
    mid, _ = make_merchant(runtime.store)

    async def pay() -> None:
        for i in range(3):
            await runtime.service.pay(PayCommand(mid, f"o-{i}", Money(100 + i, "CNY"), "card"))

    asyncio.run(pay())
    runtime.close()
    clean = CliRunner().invoke(main, ["reconcile", "--json"], env=env)
    assert clean.exit_code == 0, clean.output
    report = json.loads(clean.stdout)
    assert report["ok"] and report["charges_compared"] == 3
    # the store loses a success the provider did settle: reconciliation says so
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE attempts SET status = 'failed'"
                " WHERE id IN (SELECT id FROM attempts LIMIT 1)"
            )
        )
    engine.dispose()
    broken = CliRunner().invoke(main, ["reconcile", "--json"], env=env)
    assert broken.exit_code == 1
    (mismatch,) = json.loads(broken.stdout)["mismatches"]
    assert mismatch["kind"] == "charged_not_recorded"


@pytest.mark.parametrize(
    ("option", "value", "words"),
    [
        ("--webhook-url", "ftp://shop.example/hooks", "an http(s) URL"),
        ("--checkout-deadline", "soon", "not a duration"),
        ("--checkout-deadline", "5m", "between 100ms and 60s"),
        ("--compensation-cap-percent", "-5", "not in the range"),
    ],
)
def test_merchant_options_are_checked_and_nothing_is_written(
    tmp_path: Path, option: str, value: str, words: str
) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    env = {"PAYMEND_DATABASE_URL": url}
    assert CliRunner().invoke(main, ["db", "upgrade"], env=env).exit_code == 0
    result = CliRunner().invoke(main, ["merchants", "create", "Shop", option, value], env=env)
    assert result.exit_code == 2
    assert words in result.output and option in result.output
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM merchants")).scalar_one() == 0
    engine.dispose()


def test_merchant_settings_reach_the_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    env = {"PAYMEND_DATABASE_URL": url}
    CliRunner().invoke(main, ["db", "upgrade"], env=env)
    result = CliRunner().invoke(
        main,
        [
            "merchants",
            "create",
            "Shop",
            "--support-contact",
            "400-800-1234",
            "--webhook-url",
            "https://shop.example/hooks",
            "--checkout-deadline",
            "5s",
            "--compensation-cap-percent",
            "20",
        ],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert "webhook signing secret: whsec_" in result.output
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        settings = json.loads(conn.execute(sa.text("SELECT settings FROM merchants")).scalar_one())
    engine.dispose()
    assert settings["support_contact"] == "400-800-1234"
    assert settings["webhook_url"] == "https://shop.example/hooks"
    assert settings["checkout_deadline_s"] == 5.0
    assert settings["compensation_cap_percent"] == 20
    assert settings["webhook_secret"].startswith("whsec_")


def test_config_check_names_the_line_of_a_playbook_mistake(tmp_path: Path) -> None:
    (tmp_path / "plays.yaml").write_text(
        "playbooks:\n"
        "  - name: x-down\n"
        "    description: d\n"
        "    severity: major\n"
        "    when: {signal: circuit_open, scope: channel}\n"
        "    do: [page_everyone]\n"
    )
    path = tmp_path / "paymend.yaml"
    path.write_text(
        "providers:\n  sim_a:\n    type: simulator\n    methods: [card]\n"
        "routing: [sim_a]\nplaybooks: plays.yaml\n"
    )
    result = CliRunner().invoke(main, ["config", "check", str(path)])
    assert result.exit_code == 1
    assert f"{tmp_path / 'plays.yaml'}:6: playbooks.0.do.0" in result.output


def _serve(cwd: Path, env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    args = ["serve", "--port", str(port), "--demo-key-file", "demo-key"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "paymend.cli", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        time.sleep(0.05)  # polling a real server's socket until it listens
    proc.kill()
    raise AssertionError("paymend serve did not start")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def test_the_quick_start_demo_merchant_survives_a_lost_key_file(tmp_path: Path) -> None:
    env = {**os.environ, "PAYMEND_DATABASE_URL": f"sqlite:///{tmp_path / 'paymend.db'}"}
    env.pop("PAYMEND_CONFIG", None)
    assert CliRunner().invoke(main, ["db", "upgrade"], env=env).exit_code == 0
    port = _free_port()

    def pays(key: str) -> int:
        response = httpx.get(
            f"http://127.0.0.1:{port}/v1/payments",
            params={"order_id": "o"},
            headers={"Authorization": f"Bearer {key}"},
            timeout=WAIT_S,
        )
        return response.status_code

    proc = _serve(tmp_path, env, port)
    try:
        first = (tmp_path / "demo-key").read_text().strip()
        assert pays(first) == 200
    finally:
        _stop(proc)
    (tmp_path / "demo-key").unlink()  # the merchant 'demo' exists; its name is taken
    proc = _serve(tmp_path, env, port)
    try:
        second = (tmp_path / "demo-key").read_text().strip()
        assert second != first and pays(second) == 200
        assert pays(first) == 200  # the lost key runs out after the usual overlap
    finally:
        _stop(proc)


def _free_port() -> int:
    return ports.free_port()


def test_a_bad_http_setting_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMEND_HTTP_BODY_TIMEOUT", "soon")
    monkeypatch.setenv("PAYMEND_HTTP_MAX_CONNECTIONS", "0")
    result = CliRunner().invoke(main, ["api"])
    assert result.exit_code == 1
    assert "PAYMEND_HTTP_BODY_TIMEOUT" in result.output and "not a duration" in result.output
    assert "PAYMEND_HTTP_MAX_CONNECTIONS" in result.output


def test_a_redis_url_or_link_key_that_cannot_work_names_its_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PAYMEND_REDIS_URL", "127.0.0.1:6379")  # no scheme
    monkeypatch.setenv("PAYMEND_LINK_KEY", "short")  # anyone could guess it
    result = CliRunner().invoke(main, ["api"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "PAYMEND_REDIS_URL: a redis://, rediss:// or unix:// URL" in result.output
    assert "PAYMEND_LINK_KEY: at least 32 characters" in result.output


def test_a_database_not_migrated_to_this_version_says_what_to_run(tmp_path: Path) -> None:
    """Every command on the store stops before touching it, with what to do, when the
    database was never migrated (the file is not even made) or is a migration behind."""
    from alembic.script import ScriptDirectory

    from paymend.store.migrate import alembic_config, upgrade

    db = tmp_path / "paymend.db"
    env = {"PAYMEND_DATABASE_URL": f"sqlite:///{db}"}
    commands = (["merchants", "create", "shop"], ["silences", "list"], ["feedback", "report"])
    for args in commands:
        result = CliRunner().invoke(main, args, env=env)
        assert result.exit_code == 1, args
        assert "no paymend schema: run `paymend db upgrade`" in result.output, args
    assert not db.exists()
    script = ScriptDirectory.from_config(alembic_config(env["PAYMEND_DATABASE_URL"]))
    head = script.get_current_head()
    assert head is not None
    before = script.get_revision(head).down_revision
    assert isinstance(before, str)
    upgrade(env["PAYMEND_DATABASE_URL"], before)
    result = CliRunner().invoke(main, ["merchants", "create", "shop"], env=env)
    assert result.exit_code == 1
    assert f"at revision {before}, this paymend needs {head}: run `paymend db upgrade`" in (
        result.output
    )
    assert CliRunner().invoke(main, ["db", "upgrade"], env=env).exit_code == 0
    created = CliRunner().invoke(main, ["merchants", "create", "shop"], env=env)
    assert created.exit_code == 0, created.output


def test_a_database_url_that_cannot_work_says_why_without_its_password() -> None:
    garbage = CliRunner().invoke(main, ["worker"], env={"PAYMEND_DATABASE_URL": "paymend.db"})
    assert garbage.exit_code == 1 and "Traceback" not in garbage.output
    assert "PAYMEND_DATABASE_URL: not a database URL" in garbage.output
    nobody = "postgresql+psycopg://paymend:s3cret@127.0.0.1:1/paymend"  # nothing listens
    absent = CliRunner().invoke(
        main, ["merchants", "create", "shop"], env={"PAYMEND_DATABASE_URL": nobody}
    )
    assert absent.exit_code == 1 and "cannot open the database" in absent.output
    assert "Connection refused" in absent.output and "s3cret" not in absent.output
