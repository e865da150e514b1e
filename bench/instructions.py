"""Instructions per payment of paymend's app and the fair floor's, counted by callgrind.

CPU time on a shared machine moves by tens of per cent from run to run with what the
neighbours do; the number of instructions a payment takes does not. This runs
bench/payment_cpu.py once for each app under `valgrind --tool=callgrind`, counting only
while the measured requests run (paymend without its worker, on a clock paced at 1 ms a
request: see payment_cpu.py), and prints each app's instructions per payment and the
ratios floor / paymend, the benchmark's figure in a form that repeats to within about
half a per cent. The apps run one after another: two at a time, each one's store groups
its transactions into commits differently, and its count moves by a per cent or two.

    python bench/instructions.py [--requests 100] [--postgres] [--json]

Needs valgrind (`apt-get install valgrind`). About half a minute an app for 100
requests on SQLite, a minute on PostgreSQL. An instruction is not a unit of time: SQLite's
and the kernel's work (a commit's writes and system calls) weigh more in time than in
instructions, so the floor, whose cost holds more of them, looks cheaper here than in
CPU time. Compare counts with counts, one change at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from servers import DEFAULT_PG_URL

APPS = ("paymend", "floor", "floor-risk")
HERE = Path(__file__).resolve().parent
_TOTALS = re.compile(r"^totals:\s+(\d+)", re.MULTILINE)


def totals(profile: str) -> int:
    """The instructions a callgrind output file counted (its `totals:` line)."""
    found = _TOTALS.search(profile)
    if found is None:
        raise ValueError("not a callgrind output: it has no 'totals:' line")
    return int(found.group(1))


def count(app: str, requests: int, postgres: str | None, work: Path) -> int:
    """Instructions of `requests` payments through `app`, counted by callgrind."""
    out = work / f"{app}.callgrind"
    argv = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={out}",
        sys.executable,
        str(HERE / "payment_cpu.py"),
        "--requests",
        str(requests),
        "--only",
        app,
        "--no-worker",
    ]
    if postgres is not None:
        argv += ["--postgres", "--postgres-url", postgres]
    env = {**os.environ, "PAYMEND_CALLGRIND": "1"}
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not out.exists():
        raise RuntimeError(f"{app} under callgrind failed:\n{done.stderr[-2000:]}")
    return totals(out.read_text(errors="replace"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100, help="measured payments an app")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL, not SQLite")
    parser.add_argument("--postgres-url", default=DEFAULT_PG_URL)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if args.requests < 1:
        parser.error("--requests must be at least 1")
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not installed (apt-get install valgrind)")
    postgres = args.postgres_url if args.postgres else None
    with tempfile.TemporaryDirectory(prefix="paymend-instructions-") as tmp:
        work = Path(tmp)
        counted = {app: count(app, args.requests, postgres, work) for app in APPS}
    per = {app: n / args.requests for app, n in counted.items()}
    ratios = {f"{app}/paymend": per[app] / per["paymend"] for app in APPS[1:]}
    database = "postgresql" if postgres else "sqlite"
    if args.json:
        report = {"database": database, "requests": args.requests, "per_payment": per}
        print(json.dumps({**report, "ratios": ratios}))
        return 0
    print(f"instructions per payment, {database}, {args.requests} payments an app")
    for app in APPS:
        print(f"  {app:<10} {per[app] / 1e6:6.3f} M")
    for name, ratio in ratios.items():
        print(f"  {name} {ratio:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
