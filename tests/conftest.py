"""Shared fixtures: real SQLite files and a real PostgreSQL database, migrated by Alembic.

PostgreSQL tests run against PAYMEND_TEST_POSTGRES_URL (default: the local server). When
it cannot be reached they skip with the reason, except under CI=true, where they fail:
CI must exercise both databases.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import fastapi.dependencies.models as fastapi_models
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from paymend.store.migrate import upgrade
from paymend.store.tables import metadata

PG_URL = os.environ.get(
    "PAYMEND_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
IN_CI = os.environ.get("CI") == "true"


def _unavailable(what: str, error: Exception) -> None:
    reason = f"{what} not reachable ({type(error).__name__}: {str(error).splitlines()[0]})"
    if IN_CI:
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _forget_finished_apps() -> Iterator[None]:
    """FastAPI remembers the endpoints it has classified in module-level LRU caches
    (4,096 entries each, fastapi/dependencies/models.py), and with each endpoint the app
    a test built, its runtime and its database engine: some 9,000 objects a test, well
    over a million by the end of a test process, which made each of Python's full
    garbage collections take seconds. A process serving one app never notices; tests
    clear the caches after each test, keeping a worker's heap flat."""
    yield
    for cached in vars(fastapi_models).values():
        clear = getattr(cached, "cache_clear", None)
        if callable(clear):
            clear()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating once keeps tests fast)."""
    path = tmp_path_factory.mktemp("template") / "paymend.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "paymend.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def postgres_database() -> str:
    """A fresh database on the PostgreSQL server, migrated, for this test process."""
    return fresh_postgres_database("paymend_test")


_STALE = re.compile(r"^paymend_[a-z]+_(\d+)_\d+$")
_swept: list[bool] = []
_made = itertools.count()


def empty_postgres_database(prefix: str) -> str:
    """The URL of a new, empty database `<prefix>_<pid>_<n>` on the PostgreSQL server.

    Test databases are not dropped when their tests end: DROP DATABASE makes PostgreSQL
    write every dirty page to disk at once (an immediate checkpoint), which took up to
    30 s in the middle of the suite. Instead, the first database a test process makes
    drops those of test processes that have ended, while the server is quiet."""
    admin = sa.create_engine(make_url(PG_URL), isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{os.getpid()}_{next(_made)}"
    try:
        with admin.connect() as conn:
            if not _swept:
                _drop_stale(conn)
                _swept.append(True)
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
            # a test's database lives for one run: commits need not wait for the disk
            # (what each transaction sees is unchanged; only a crash of PostgreSQL itself
            # could lose the last commits, and no test crashes PostgreSQL)
            conn.exec_driver_sql(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    except sa.exc.OperationalError as error:
        _unavailable("PostgreSQL", error)
    finally:
        admin.dispose()
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


def _drop_stale(conn: sa.Connection) -> None:
    names = conn.exec_driver_sql("SELECT datname FROM pg_database").scalars().all()
    for name in names:
        found = _STALE.match(name)
        if found and not _alive(int(found.group(1))):
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's
    return True


def fresh_postgres_database(prefix: str) -> str:
    """The URL of a new database on the PostgreSQL server, migrated (a module's own,
    when its fixture outlives one test); see `empty_postgres_database`."""
    url = empty_postgres_database(prefix)
    upgrade(url)
    return url


@pytest.fixture
def postgres_url(postgres_database: str) -> Iterator[str]:
    """The session database, emptied before each test."""
    engine = sa.create_engine(postgres_database)
    with engine.begin() as conn:
        names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
        conn.exec_driver_sql(f"TRUNCATE {names} CASCADE")
    engine.dispose()
    yield postgres_database


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """Runs the test once on SQLite and once on PostgreSQL."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(name)
    return url


REDIS_URL = os.environ.get("PAYMEND_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis database for one test; its keys carry a unique prefix and are removed."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.exceptions.RedisError as error:
        client.close()
        _unavailable("Redis", error)
    yield REDIS_URL
    client.close()
