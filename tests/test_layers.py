"""The layer rule of docs/ARCHITECTURE.md, held over the import graph of src/paymend.

Every import statement of every module is read with `ast` (imports inside functions
count: a lazy import is still a dependency). The rule:

- a room imports only the rooms listed for it in ALLOWED, which never names a room
  above it;
- the lower rooms import no SQL, HTTP, Redis or tracing library, except the I/O that is
  their job (OWN_IO);
- SQL is written in store/ only (SQL_ELSEWHERE lists what is left, each with why);
- the engine and the rooms below it read time only through the injected clock.
"""

from __future__ import annotations

import ast
import functools
import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

import paymend

ROOT = Path(paymend.__file__).parent

# room -> the rooms it may import. Shared modules at the top of the package count as
# rooms: datafiles (YAML data files, errors naming the line), observability (logging,
# metrics, tracing set-up), config (settings and the config file).
ALLOWED: dict[str, frozenset[str]] = {
    "domain": frozenset(),
    "datafiles": frozenset(),
    "failures": frozenset({"domain", "datafiles"}),
    "health": frozenset({"domain"}),
    "providers": frozenset({"domain"}),
    # notify loads its policy and checks its templates with datafiles (errors with lines)
    "notify": frozenset({"domain", "datafiles"}),
    "routing": frozenset({"domain", "health"}),
    "playbooks": frozenset({"domain", "health", "datafiles"}),
    "store": frozenset({"domain"}),
    # risk control: rules files are data (datafiles names a mistake's line)
    "risk": frozenset({"domain", "datafiles"}),
    "observability": frozenset({"domain"}),
    "config": frozenset({"domain", "datafiles", "playbooks"}),
    "engine": frozenset(
        {
            "domain",
            "datafiles",
            "failures",
            "health",
            "providers",
            "notify",
            "routing",
            "playbooks",
            "risk",
            "store",
            "observability",
            "config",
        }
    ),
    # api/app.py mounts the console and the customers' pages (the help page is theirs)
    "api": frozenset(
        {
            "domain",
            "failures",
            "engine",
            "store",
            "observability",
            "config",
            "console",
            "customers",
        }
    ),
    # the web console beside the ops API: it reads the health book's windows too
    "console": frozenset(
        {"domain", "failures", "health", "engine", "store", "observability", "config"}
    ),
    # the customers' pages: the console's form reader, locales and static files reused;
    # help articles and the FAQ are data files
    "customers": frozenset(
        {"domain", "datafiles", "failures", "engine", "store", "observability", "config", "console"}
    ),
    # the simulator's protocol faces: the simulated channels behind real providers' wire
    # protocols (HTTP servers of their own), reusing the connectors' signing and formats
    "sim": frozenset({"domain", "providers"}),
    # the naive checkout of the lab replays routing's static order; its customers' SMS
    # inbox is a notify channel (lab/notices.py), as its providers are simulated ones
    "lab": frozenset(
        {
            "domain",
            "notify",
            "datafiles",
            "failures",
            "health",
            "routing",
            "playbooks",
            "providers",
            "engine",
            "store",
            "sim",
        }
    ),
    "cli": frozenset(
        {
            "domain",
            "datafiles",
            "failures",
            "notify",
            "playbooks",
            "risk",
            "store",
            "observability",
            "config",
            "engine",
            "api",
            "console",
            "customers",
            "lab",
            "sim",
        }
    ),
}
LOWER = ("domain", "failures", "health", "routing", "playbooks", "providers", "notify", "risk")
SQL = frozenset({"sqlalchemy", "alembic", "sqlite3", "psycopg", "psycopg2"})
HTTP = frozenset({"httpx", "fastapi", "starlette", "uvicorn", "h11", "requests", "urllib3"})
IO = SQL | HTTP | frozenset({"redis", "opentelemetry", "socket"})
OWN_IO: dict[str, frozenset[str]] = {
    # the simulator's ledger is the fake provider's own file; real connectors speak HTTP
    "providers": frozenset({"sqlite3", "httpx"}),
    # a health book shared by every process lives in Redis (health/redis_book.py)
    "health": frozenset({"redis"}),
    # velocity counters shared by every process live in Redis (risk/redis_velocity.py)
    "risk": frozenset({"redis"}),
    # a webhook is an HTTPS request (notify/webhook_channel.py)
    "notify": frozenset({"httpx"}),
}
# modules outside store/ that still write SQL, each with why; the list only shrinks
SQL_ELSEWHERE: dict[str, str] = {}
CLOCKS = ("engine/clock.py", "engine/virtual_time.py")  # where time is read, for the rest
WALL_CLOCK_CALLS = frozenset({"now", "utcnow", "today", "sleep", "time", "perf_counter"})


_collected: list[bool] = []


@functools.cache
def parse(path: Path) -> ast.Module:
    """The module's syntax tree (parsed once), with the garbage collector held off: on
    CPython 3.11 a collection that runs an earlier test's finalizers in the middle of
    `ast.parse` can trip its recursion-depth check (SystemError "AST constructor
    recursion depth mismatch"), depending on which tests ran before."""
    if not _collected:
        gc.collect()  # earlier tests' garbage, once, before any parse
        _collected.append(True)
    gc.disable()
    try:
        return ast.parse(path.read_text(encoding="utf-8"))
    finally:
        gc.enable()


def modules() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*.py") if "migrations" not in p.parts)


def name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def room(path: Path) -> str:
    parts = path.relative_to(ROOT).parts
    return parts[0] if len(parts) > 1 else path.stem


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) of every import in the file, absolute."""
    for node in ast.walk(parse(path)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{name(path)}:{node.lineno}: a relative import"
            yield node.lineno, node.module or ""


def paymend_room(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "paymend" and len(parts) > 1 else None


def test_every_module_belongs_to_a_room_of_the_rule() -> None:
    rooms = {room(p) for p in modules()} - {"__init__"}
    assert rooms <= set(ALLOWED), f"rooms the rule does not know: {rooms - set(ALLOWED)}"


def test_the_rooms_form_layers() -> None:
    """ALLOWED has no cycle: the rooms can be stacked, each above all it imports."""
    placed: list[str] = []
    left = dict(ALLOWED)
    while left:
        ready = [r for r, below in left.items() if below <= set(placed)]
        assert ready, f"a cycle among {sorted(left)}"
        placed += sorted(ready)
        for r in ready:
            del left[r]


@pytest.mark.parametrize("path", modules(), ids=name)
def test_a_room_imports_only_the_rooms_below_it(path: Path) -> None:
    here = room(path)
    if here == "__init__":
        return
    wrong = [
        f"{name(path)}:{line}: imports {module}"
        for line, module in imports(path)
        if (other := paymend_room(module)) not in (None, here) and other not in ALLOWED[here]
    ]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("path", [p for p in modules() if room(p) in LOWER], ids=name)
def test_a_lower_room_does_no_io_but_its_own(path: Path) -> None:
    allowed = OWN_IO.get(room(path), frozenset())
    wrong = [
        f"{name(path)}:{line}: imports {module}"
        for line, module in imports(path)
        if module.split(".")[0] in IO - allowed
    ]
    assert not wrong, "\n".join(wrong)


def test_sql_is_written_in_the_store() -> None:
    writing = {
        name(p)
        for p in modules()
        if room(p) != "store"
        and any(m.split(".")[0] in SQL - OWN_IO.get(room(p), frozenset()) for _, m in imports(p))
    }
    assert writing <= set(SQL_ELSEWHERE), (
        f"SQL outside store/: {sorted(writing - set(SQL_ELSEWHERE))}"
    )
    assert set(SQL_ELSEWHERE) <= writing, "fixed at last: take it off SQL_ELSEWHERE"


def test_no_room_outside_the_store_reaches_into_its_tables() -> None:
    reaching = {
        name(p)
        for p in modules()
        if room(p) != "store"
        and any(
            m.startswith(("paymend.store.tables", "paymend.store.migrations"))
            for _, m in imports(p)
        )
    }
    assert reaching <= set(SQL_ELSEWHERE), sorted(reaching - set(SQL_ELSEWHERE))


@pytest.mark.parametrize(
    "path",
    [p for p in modules() if room(p) in (*LOWER, "engine") and name(p) not in CLOCKS],
    ids=name,
)
def test_time_comes_from_the_injected_clock(path: Path) -> None:
    """No wall clock and no sleep of its own: the lab's virtual time must reach all of it."""
    tree = parse(path)
    wrong = [
        f"{name(path)}:{line}: imports {module}"
        for line, module in imports(path)
        if module.split(".")[0] == "time"
    ]
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in WALL_CLOCK_CALLS
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in ("datetime", "date", "asyncio", "time")
        ):
            wrong.append(f"{name(path)}:{node.lineno}: {node.func.value.id}.{node.func.attr}()")
    assert not wrong, "\n".join(wrong)
