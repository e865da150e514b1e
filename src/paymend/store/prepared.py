"""The payment path's writes, compiled once per dialect and run on the driver's cursor.

A payment writes the same handful of rows every time (payment, attempt, events, its
Idempotency-Key, its risk decision). Through `Connection.execute` each of those
statements costs SQLAlchemy's whole execution context, tens of microseconds of Python
that only repeats what it did for the last payment: look the compiled form up in the
cache, run the execution events, build a result object for a statement that returns no
rows. `Prepared` keeps SQLAlchemy's compiled SQL and its type processing (the same bind
processors `execute` would apply: UTC datetimes, JSON) and hands the values to the
DB-API cursor of the connection's transaction, so the row written is the row `execute`
would have written, in the same transaction.

Writes belong here, and reads of the payment path (`first`, `all`): each value of a row
but NULL goes through its column's result processor, as a SQLAlchemy result would
convert it (a SELECT's own columns, or those a text statement declares with
`.columns()`; a column of no declared type comes as the driver returns it). Rows are
plain tuples. A statement whose columns have Python-side defaults is refused when first
run (nothing here would compute them); paymend's tables have none.
Errors come out as SQLAlchemy's (`exc.IntegrityError`, `exc.OperationalError`, ...),
parameters hidden, as `Connection.execute` raises them.

Inside `deferring(conn)` (store/deferred.py) the writes nobody waits on (`write`,
`write_rows`) wait on PostgreSQL to go to the server together.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paymend.store.deferred import QUEUE, Waiting, Written, flush
from paymend.store.driver import driver_error

__all__ = ["ROWS_AT_ONCE", "Prepared"]

_Processor = Callable[[Any], Any]
ROWS_AT_ONCE = 16  # `run_rows` for a few rows; more go through the driver's loop
T = TypeVar("T")


@dataclass(slots=True)
class _Form:
    """A statement compiled for one dialect and one set of parameter names."""

    sql: str
    names: tuple[str, ...] | None  # positional order (qmark, numeric); None: named style
    processors: tuple[tuple[str, _Processor], ...]  # the names that need converting
    fixed: tuple[tuple[str, Any], ...]  # values bound in the statement itself
    types: tuple[Any, ...]  # a read's declared column types, in order
    dialect: sa.Dialect
    # a read's columns that need converting, worked out at its first answer: a result
    # processor may ask for the driver's type of the column (PostgreSQL's numerics)
    results: tuple[tuple[int, _Processor], ...] | None = None
    # positional: each parameter in order with its processor (None: bound as given)
    plan: tuple[tuple[str, _Processor | None], ...] | None = None

    def __post_init__(self) -> None:
        if self.names is not None:
            convert = dict(self.processors)
            self.plan = tuple((name, convert.get(name)) for name in self.names)

    def converter(self, cursor: Any) -> _Form:
        """This form, its result processors worked out at its first answer from the
        cursor's description (read only then: psycopg builds a Column object for each
        column at every read of `description`)."""
        if self.results is None:
            description = cursor.description
            found = []
            for i, type_ in enumerate(self.types):
                coltype = description[i][1] if description and i < len(description) else None
                process = type_.dialect_impl(self.dialect).result_processor(self.dialect, coltype)
                if process is not None:
                    found.append((i, process))
            self.results = tuple(found)
        return self

    def row(self, raw: Sequence[Any]) -> tuple[Any, ...]:
        """A read's row, converted (after `converter`)."""
        if not self.results:
            return tuple(raw)
        values = list(raw)
        for i, process in self.results:
            value = values[i]
            if value is not None:  # NULL is None through every processor paymend reads
                values[i] = process(value)
        return tuple(values)

    def values(self, params: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        """The driver's parameters for one row."""
        if self.plan is not None and not self.fixed:  # positional: one pass, no copy
            return [
                params[name] if process is None else process(params.get(name))
                for name, process in self.plan
            ]
        if self.fixed:
            params = {**dict(self.fixed), **params}
        if self.processors:
            params = dict(params)
            for name, process in self.processors:
                # None too, as `execute` does: a JSON column's None is the JSON null
                params[name] = process(params.get(name))
        if self.names is None:
            return params if isinstance(params, dict) else dict(params)
        return [params[n] for n in self.names]


class Prepared:
    """An INSERT, UPDATE or DELETE (or a SELECT: `first`, `all`) run with parameter
    dicts like `conn.execute(statement, params)`, for a fraction of its cost. Built once,
    as a module-level constant beside the statement it runs."""

    __slots__ = ("_forms", "statement")

    def __init__(self, statement: sa.Executable) -> None:
        self.statement = statement
        # (dialect, parameter names) and, for `run_rows`, the number of rows
        self._forms: dict[tuple[Any, ...], _Form] = {}

    def run(self, conn: Connection, params: Mapping[str, Any]) -> int:
        """Run for one row; the number of rows it matched."""
        return self._execute(conn, self._form(conn, params), params)

    def run_many(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> int:
        """Run for each of `rows` (all with the same keys) in one driver call."""
        if not rows:
            return 0
        form = self._form(conn, rows[0])
        values = [form.values(r) for r in rows]

        def many(cursor: Any) -> int:
            cursor.executemany(form.sql, values)
            return int(cursor.rowcount)

        return self._call(conn, form, many)

    def run_rows(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> int:
        """An INSERT of `rows` (all with the same keys) as one statement with a VALUES
        list, rows in order. Where `run_many` hands the rows to the driver's loop (on
        psycopg, a pipeline of one statement per row, about 50 microseconds more for
        two rows than one statement), this is one statement for a few rows; past
        ROWS_AT_ONCE it is `run_many`, so that a statement is not compiled for every
        length a caller may come with."""
        if len(rows) < 2:
            return self.run(conn, rows[0]) if rows else 0
        if len(rows) > ROWS_AT_ONCE:
            return self.run_many(conn, rows)
        form, params = self._rows(conn, rows)
        return self._execute(conn, form, params)

    def write(
        self, conn: Connection, params: Mapping[str, Any], then: Written | None = None
    ) -> None:
        """`run`, for a write whose row count nobody needs before the transaction's next
        answer: inside `deferring` on PostgreSQL it waits to go with the others (see
        store/deferred.py); `then`, if given, is told its row count once it ran (it may raise:
        a version check)."""
        waiting: list[Waiting] | None = getattr(conn, QUEUE, None)
        form = self._form(conn, params)
        if waiting is None:
            count = self._execute(conn, form, params)
            if then is not None:
                then(count)
            return
        waiting.append(Waiting(form.sql, form.values(params), then))

    def write_rows(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """`run_rows`, waiting as `write` does."""
        waiting: list[Waiting] | None = getattr(conn, QUEUE, None)
        if waiting is None or not 0 < len(rows) <= ROWS_AT_ONCE:
            self.run_rows(conn, rows)
        elif len(rows) == 1:
            self.write(conn, rows[0])
        else:
            form, params = self._rows(conn, rows)
            waiting.append(Waiting(form.sql, form.values(params), None))

    def _rows(
        self, conn: Connection, rows: Sequence[Mapping[str, Any]]
    ) -> tuple[_Form, dict[str, Any]]:
        keys = tuple(rows[0])
        shape = (conn.dialect.name, keys, len(rows))
        form = self._forms.get(shape)
        if form is None:
            form = self._forms[shape] = _compile_rows(self.statement, conn.dialect, keys, len(rows))
        return form, {f"{k}_r{i}": row[k] for i, row in enumerate(rows) for k in keys}

    def first(self, conn: Connection, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """A SELECT's first row, converted (see the module), or None."""
        form = self._form(conn, params)

        def fetch(cursor: Any) -> tuple[Any, ...] | None:
            cursor.execute(form.sql, form.values(params))
            row = cursor.fetchone()
            return None if row is None else form.converter(cursor).row(row)

        return self._call(conn, form, fetch)

    def all(self, conn: Connection, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """A SELECT's rows, converted (see the module)."""
        form = self._form(conn, params)

        def fetch(cursor: Any) -> list[tuple[Any, ...]]:
            cursor.execute(form.sql, form.values(params))
            rows = cursor.fetchall()
            convert = form.converter(cursor)
            return [convert.row(r) for r in rows]

        return self._call(conn, form, fetch)

    def _execute(self, conn: Connection, form: _Form, params: Mapping[str, Any]) -> int:
        """`form` run once with `params`; the number of rows it matched."""

        def one(cursor: Any) -> int:
            cursor.execute(form.sql, form.values(params))
            return int(cursor.rowcount)

        return self._call(conn, form, one)

    def _call(self, conn: Connection, form: _Form, call: Callable[[Any], T]) -> T:
        waiting = getattr(conn, QUEUE, None)
        if waiting:  # this one answers at once: the writes before it go first
            flush(conn, waiting)
        # the driver's connection: sqlite3's and psycopg's are DB-API connections
        # themselves, and `dbapi_connection` is an attribute where `driver_connection`
        # is two properties deep to the same object (a statement's every run reads it)
        raw = conn.connection.dbapi_connection
        assert raw is not None
        cursor = raw.cursor()
        try:
            return call(cursor)
        except conn.dialect.loaded_dbapi.Error as error:
            raise driver_error(conn, form.sql, error) from error
        finally:
            cursor.close()

    def _form(self, conn: Connection, params: Mapping[str, Any]) -> _Form:
        dialect = conn.dialect
        key = (dialect.name, tuple(params))
        form = self._forms.get(key)
        if form is None:
            form = self._forms[key] = _compile(self.statement, dialect, key[1])
        return form


def _compile_rows(statement: Any, dialect: sa.Dialect, keys: tuple[str, ...], n: int) -> _Form:
    """`statement`, an INSERT, with a VALUES list of `n` rows: row i's `k` is `k_ri`."""
    if not isinstance(statement, sa.Insert):
        raise TypeError(f"{statement!r} is not an INSERT: several rows need run_many()")
    columns = statement.table.c
    many = statement.values(
        [
            {k: sa.bindparam(f"{k}_r{i}", type_=columns[k].type, required=True) for k in keys}
            for i in range(n)
        ]
    )
    return _compile(many, dialect, tuple(f"{k}_r{i}" for i in range(n) for k in keys))


def _compile(statement: Any, dialect: sa.Dialect, keys: tuple[str, ...]) -> _Form:
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))
    if getattr(compiled, "insert_prefetch", None) or getattr(compiled, "update_prefetch", None):
        raise TypeError(f"{statement!r} has Python-side column defaults: run it with execute()")
    if compiled.escaped_bind_names or compiled.post_compile_params:
        raise TypeError(f"{statement!r} has escaped or expanding parameters: use execute()")
    processors: list[tuple[str, _Processor]] = []
    fixed: list[tuple[str, Any]] = []
    for bind, name in compiled.bind_names.items():
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            processors.append((name, process))
        if name not in keys:
            if bind.required or bind.callable is not None:
                raise TypeError(f"parameter {name!r} of {statement!r} not given")
            fixed.append((name, bind.value))
    sql = compiled.string
    names = tuple(compiled.positiontup or ()) if compiled.positional else None
    types = tuple(c.type for c in getattr(statement, "selected_columns", ()))
    return _Form(sql, names, tuple(processors), tuple(fixed), types, dialect)
