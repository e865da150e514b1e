"""The paymend command: every subcommand has help, and the ones a newcomer runs work."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from paymend.cli import main
from paymend.store import merchants
from paymend.store.database import Store


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
        ["config", "check"],
    ],
)
def test_every_command_has_help(args: list[str]) -> None:
    result = CliRunner().invoke(main, [*args, "--help"])
    assert result.exit_code == 0
    assert "Usage: " in result.output
    assert len(result.output.splitlines()) > 3


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
        found = store.run_sync(lambda c: merchants.by_api_key(c, key))
        assert found is not None and found.name == "Acme Shop"
        assert key not in str(
            store.run_sync(lambda c: c.execute(sa.text("SELECT * FROM merchants")).all())
        )
    finally:
        store.close()


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
