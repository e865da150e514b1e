"""`paymend silences` sets, lists and ends silences of ops pages, audit-logged as cli:."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa
from click.testing import CliRunner, Result

from paymend.cli import main
from paymend.store.tables import audit_log


def test_silences_are_added_listed_and_ended_from_the_command_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    env = {"PAYMEND_DATABASE_URL": url}
    runner = CliRunner()
    assert runner.invoke(main, ["db", "upgrade"], env=env).exit_code == 0

    def run(*args: str) -> Result:
        return runner.invoke(main, list(args), env=env)

    added = run("silences", "add", "--playbook", "bank-down", "--for", "2h", "--reason", "drill")
    assert added.exit_code == 0, added.output
    silence = json.loads(added.stdout)
    assert silence["playbook"] == "bank-down" and silence["created_by"].startswith("cli:")
    assert [json.loads(line)["id"] for line in run("silences", "list").stdout.splitlines()] == [
        silence["id"]
    ]
    nothing = run("silences", "add", "--for", "2h", "--reason", "everything")
    assert nothing.exit_code != 0 and "at least one of" in nothing.output
    both = run("silences", "add", "--bank", "CMB", "--reason", "x")
    assert both.exit_code != 0 and "--for and --until" in both.output
    ended = run("silences", "end", silence["id"], "--reason", "drill over")
    assert ended.exit_code == 0 and json.loads(ended.stdout)["ended_at"]
    assert run("silences", "list").stdout == ""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        actions = [r.action for r in conn.execute(sa.select(audit_log.c.action))]
    engine.dispose()
    assert actions == ["ops_alerts.silence", "ops_alerts.silence.end"]
