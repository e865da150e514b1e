"""`paymend operators password` and the demo operator `paymend serve --demo-key-file`
creates: the console log-ins of the command line."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from click.testing import CliRunner

from paymend.cli import main
from paymend.console.accounts import verify_password
from paymend.store import controls
from paymend.store.database import Store
from paymend.store.operators import with_password
from tests.console.conftest import log_in
from tests.test_cli import _free_port, _stop


def _serve(cwd: Path, env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    """`paymend serve --demo-key-file demo-key`, its output in serve.log (a failure to
    start shows it); a busy machine may take a while to import and hash."""
    log = (cwd / "serve.log").open("ab")
    args = ["serve", "--port", str(port), "--demo-key-file", "demo-key"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "paymend.cli", *args], cwd=cwd, env=env, stdout=log, stderr=log
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        time.sleep(0.1)  # polling a real server's socket until it listens
    proc.kill()
    raise AssertionError(f"paymend serve did not start:\n{(cwd / 'serve.log').read_text()}")


def test_the_password_command_has_help() -> None:
    result = CliRunner().invoke(main, ["operators", "password", "--help"])
    assert result.exit_code == 0 and "--stdin" in result.output and "--remove" in result.output


def test_an_operators_password_is_set_from_stdin_checked_and_removed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    env = {"PAYMEND_DATABASE_URL": url}
    runner = CliRunner()
    assert runner.invoke(main, ["db", "upgrade"], env=env).exit_code == 0
    assert runner.invoke(main, ["operators", "create", "ops-lin", "--role", "ops"], env=env)
    short = runner.invoke(
        main, ["operators", "password", "ops-lin", "--stdin"], input="short\n", env=env
    )
    assert short.exit_code == 1 and "12 to 1024 characters" in short.output
    done = runner.invoke(
        main, ["operators", "password", "ops-lin", "--stdin"], input="a long passphrase\n", env=env
    )
    assert done.exit_code == 0, done.output
    unknown = runner.invoke(
        main, ["operators", "password", "nobody", "--stdin"], input="a long passphrase\n", env=env
    )
    assert unknown.exit_code == 1 and "no operator 'nobody'" in unknown.output
    store = Store(url, inline=True)
    try:
        found = store.run_sync(lambda c: with_password(c, "ops-lin"))
        assert found is not None and found[1] is not None
        assert verify_password(found[1], "a long passphrase")
        entries = store.run_sync(lambda c: controls.audit_entries(c, 1))
        assert entries[0]["action"] == "operator.password.set"
        assert entries[0]["actor"].startswith("cli:")
        removed = runner.invoke(main, ["operators", "password", "ops-lin", "--remove"], env=env)
        assert removed.exit_code == 0
        found = store.run_sync(lambda c: with_password(c, "ops-lin"))
        assert found is not None and found[1] is None
    finally:
        store.close()


def test_the_quick_start_prints_a_demo_log_in_that_works_across_restarts(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "PAYMEND_DATABASE_URL": f"sqlite:///{tmp_path / 'paymend.db'}"}
    env.pop("PAYMEND_CONFIG", None)
    assert CliRunner().invoke(main, ["db", "upgrade"], env=env).exit_code == 0
    port = _free_port()
    login_file = tmp_path / "demo-key-console"
    for _ in range(2):  # the second start keeps the password the file holds
        proc = _serve(tmp_path, env, port)
        try:
            assert oct(login_file.stat().st_mode & 0o777) == "0o600"
            printed = (tmp_path / "serve.log").read_text()
            password = login_file.read_text().strip()
            assert f"operator 'demo', password {password}" in printed
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
                answer = log_in(client, "demo", password)
                assert answer.status_code == 303, answer.text
                assert client.get("/console/payments").status_code == 200  # admin
        finally:
            _stop(proc)
