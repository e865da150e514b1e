"""The benchmarks of record still start: each answers `--help` and refuses a bad argument
with a message, and the order of turns they share gives every contender its share."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

from http_load import arrival_offsets  # noqa: E402 - bench/ is a folder of scripts
from instructions import totals  # noqa: E402
from servers import BackendCpu  # noqa: E402
from turns import in_turns, share_out  # noqa: E402

SCRIPTS = sorted(p.name for p in BENCH.glob("*.py") if "argparse" in p.read_text())
REFUSED = [  # a script, arguments it refuses, and what its message must name
    ("engine.py", ["--rounds", "0"], "--rounds"),
    ("http_load.py", ["--requests", "0"], "--requests"),
    ("http_load.py", ["--rate", "0"], "--rate"),
    ("handoff.py", ["--rounds", "0"], "--rounds"),
    ("instructions.py", ["--requests", "0"], "--requests"),
    ("risk_history.py", ["--reads", "0"], "--reads"),
    ("redis_velocity.py", ["--reads", "0"], "--reads"),
]

# one process runs every script as `python bench/X.py ARGS` would, and reports each
_RUN_ALL = """
import contextlib, io, json, runpy, sys
sys.path.insert(0, sys.argv[1])
out = {}
for script, args in json.loads(sys.argv[2]):
    sys.argv = [script, *args]
    text, err = io.StringIO(), io.StringIO()
    code = None
    with contextlib.redirect_stdout(text), contextlib.redirect_stderr(err):
        try:
            runpy.run_path(sys.path[0] + "/" + script, run_name="__main__")
        except SystemExit as done:
            code = done.code
    out[script + " " + " ".join(args)] = [code, text.getvalue(), err.getvalue()]
print(json.dumps(out))
"""


def test_every_benchmark_answers_help_and_refuses_a_bad_argument() -> None:
    runs = [(s, ["--help"]) for s in SCRIPTS] + [(s, a) for s, a, _ in REFUSED]
    done = subprocess.run(
        [sys.executable, "-c", _RUN_ALL, str(BENCH), json.dumps(runs)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    results = json.loads(done.stdout.splitlines()[-1])
    assert len(SCRIPTS) >= 10
    for script in SCRIPTS:
        code, text, _ = results[f"{script} --help"]
        assert code == 0, script
        assert text.startswith("usage: "), script
    for script, args, named in REFUSED:
        code, _, err = results[f"{script} {' '.join(args)}"]
        assert code == 2, script
        assert named in err and "error" in err, err


@given(st.integers(0, 10_000), st.integers(1, 50))
def test_shares_differ_by_at_most_one_and_add_up(total: int, parts: int) -> None:
    shares = share_out(total, parts)
    assert sum(shares) == total and len(shares) == parts
    assert max(shares) - min(shares) <= 1
    assert shares == sorted(shares, reverse=True)


@given(st.integers(1, 6), st.integers(1, 5_000), st.integers(1, 10))
def test_every_contender_takes_the_whole_load_and_each_goes_first_in_turn(
    contenders: int, total: int, rounds: int
) -> None:
    turns = list(in_turns(contenders, total, rounds))
    for k in range(contenders):
        assert sum(share for _, c, share in turns if c == k) == total
    firsts = [c for i, (_, c, _) in enumerate(turns) if i % contenders == 0]
    assert firsts == [r % contenders for r in range(rounds)]


@given(st.floats(1, 5_000), st.text(max_size=8))
def test_an_open_load_arrives_at_its_rate_the_same_for_every_server(rate: float, seed: str) -> None:
    """bench/http_load.py --rate: every server is offered the same Poisson arrivals."""
    offsets = arrival_offsets(rate, 2_000, seed)
    assert offsets == arrival_offsets(rate, 2_000, seed)
    assert all(0 < a < b for a, b in itertools.pairwise(offsets))
    # the mean of 2,000 exponential gaps: 1 / rate, give or take 2.2 % (one standard error)
    assert abs(offsets[-1] / 2_000 * rate - 1) < 0.12


@pytest.mark.postgres
def test_the_database_cpu_reading_counts_its_backends_work(postgres_url: str) -> None:
    """bench/http_load.py's database CPU: the CPU of the backends connected to the
    database grows by the work a query makes one of them do."""
    reading = BackendCpu(postgres_url)
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            before = reading()
            conn.execute(sa.text("SELECT count(*) FROM generate_series(1, 3000000)")).one()
            after = reading()
    finally:
        engine.dispose()
        reading.engine.dispose()
    assert before is not None and after is not None
    assert after - before >= 0.05, (before, after)


def test_the_instruction_count_is_read_from_callgrinds_totals_line() -> None:
    profile = "version: 1\ncreator: callgrind-3.19.0\nevents: Ir\nsummary: 0\n\nfn=(1) main\n"
    assert totals(profile + "totals: 482817469\n") == 482_817_469
    with pytest.raises(ValueError, match="totals"):
        totals(profile)
