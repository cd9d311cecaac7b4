"""What PostgreSQL's CPU costs to store the rows of one HL7 v2 message, in two store shapes.

Used by tools/bench/store_floor.sh, which feeds a fresh edge over MLLP and hands this script the
edge's SQLite store. The script replays what the edge stored (the message log, the resource
versions and their search index rows) into PostgreSQL, REPLAY messages over 8 connections, one
transaction a message, with prepared statements and binary parameters, and prints PostgreSQL's CPU
time a message (its processes' user and system time from /proc, so PostgreSQL must run on this
machine). The shapes:

- rows: the SQLite store's own tables and indexes, one row a search value; a message's rows of a
  table go in one INSERT ... SELECT FROM unnest(arrays), the cheapest way to send them.
- jsonb: one row a version, its search values as one JSONB document under a GIN index with
  fastupdate, which appends new entries to a pending list and merges them later in bulk.

Only the storing is measured: no parsing, mapping or searching. The replayed messages reuse the
stored ones with new ids and control ids. Everything is created in the schema concord_floor,
which is dropped at the end.
"""

import os
import sqlite3
import sys
import threading
import time

import psycopg
from psycopg.types.json import Jsonb

CONNECTIONS = 8
INDEX_TABLES = ["idx_string", "idx_token", "idx_reference", "idx_uri", "idx_date"]
INTEGER_COLUMNS = {"res_seq", "ord", "grp", "low", "high"}

# The message log and the resource versions, as the SQLite store has them; {search} is the jsonb
# shape's extra column.
COMMON_SCHEMA = """
CREATE TABLE message_log (seq BIGSERIAL PRIMARY KEY, sender TEXT NOT NULL, control_id TEXT NOT NULL,
  message_type TEXT NOT NULL, received_at BIGINT NOT NULL, raw BYTEA NOT NULL, status TEXT NOT NULL,
  UNIQUE (sender, control_id));
CREATE INDEX ON message_log (status, seq);
CREATE TABLE resource_version (seq BIGINT PRIMARY KEY, resource_type TEXT NOT NULL, id TEXT NOT NULL,
  version_id BIGINT NOT NULL, last_updated BIGINT NOT NULL, method TEXT NOT NULL, body TEXT,
  {search} superseded_seq BIGINT);
CREATE UNIQUE INDEX ON resource_version (resource_type, id, version_id);
CREATE INDEX ON resource_version (resource_type, seq) WHERE superseded_seq IS NULL;
CREATE INDEX ON resource_version (last_updated);
"""

ROWS_SCHEMA = COMMON_SCHEMA.format(search="") + """
CREATE TABLE idx_string (res_seq BIGINT NOT NULL, param TEXT NOT NULL, ord BIGINT NOT NULL,
  resource_type TEXT NOT NULL, grp BIGINT, normalized TEXT NOT NULL, exact TEXT NOT NULL,
  PRIMARY KEY (res_seq, param, ord));
CREATE INDEX ON idx_string (resource_type, param, normalized, res_seq);
CREATE TABLE idx_token (res_seq BIGINT NOT NULL, param TEXT NOT NULL, ord BIGINT NOT NULL,
  resource_type TEXT NOT NULL, grp BIGINT, system TEXT, code TEXT, text TEXT,
  PRIMARY KEY (res_seq, param, ord));
CREATE INDEX ON idx_token (resource_type, param, code, system, res_seq);
CREATE TABLE idx_date (res_seq BIGINT NOT NULL, param TEXT NOT NULL, ord BIGINT NOT NULL,
  resource_type TEXT NOT NULL, grp BIGINT, low BIGINT NOT NULL, high BIGINT NOT NULL,
  PRIMARY KEY (res_seq, param, ord));
CREATE INDEX ON idx_date (resource_type, param, low, high, res_seq);
CREATE TABLE idx_reference (res_seq BIGINT NOT NULL, param TEXT NOT NULL, ord BIGINT NOT NULL,
  resource_type TEXT NOT NULL, grp BIGINT, target_type TEXT, target_id TEXT, url TEXT,
  version TEXT, ident_system TEXT, ident_value TEXT, PRIMARY KEY (res_seq, param, ord));
CREATE INDEX ON idx_reference (resource_type, param, target_id, target_type, res_seq);
CREATE INDEX ON idx_reference (target_type, target_id);
CREATE TABLE idx_uri (res_seq BIGINT NOT NULL, param TEXT NOT NULL, ord BIGINT NOT NULL,
  resource_type TEXT NOT NULL, grp BIGINT, value TEXT NOT NULL, PRIMARY KEY (res_seq, param, ord));
CREATE INDEX ON idx_uri (resource_type, param, value, res_seq);
"""

JSONB_SCHEMA = COMMON_SCHEMA.format(search="search JSONB NOT NULL,") + """
CREATE INDEX ON resource_version USING gin (search jsonb_path_ops) WITH (fastupdate = on);
"""

LOG_INSERT = (
    "INSERT INTO message_log (sender, control_id, message_type, received_at, raw, status)"
    " VALUES (%s, %s, %s, %s, %s, 'applied')"
)


def read_store(path):
    """The edge's messages, their versions (in the order stored) and the versions' index rows."""
    store = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    messages = store.execute(
        "SELECT sender, control_id, message_type, received_at, raw FROM message_log ORDER BY seq"
    ).fetchall()
    versions = store.execute(
        "SELECT seq, resource_type, id, version_id, last_updated, method, body"
        " FROM resource_version ORDER BY seq"
    ).fetchall()
    if not messages or len(versions) % len(messages):
        sys.exit(f"{path}: expected the same number of versions for every message")
    tables = {}
    for table in INDEX_TABLES:
        columns = [r[1] for r in store.execute(f"PRAGMA table_info({table})")]
        rows = {}
        for row in store.execute(f"SELECT * FROM {table}"):
            rows.setdefault(row[0], []).append(row)
        tables[table] = (columns, rows)
    return messages, versions, tables


def statements(shape, messages, versions, tables, m):
    """The statements that store replayed message m: stored message m % len(messages), with its
    sequence numbers, ids and control id made new."""
    per_message = len(versions) // len(messages)
    base = m % len(messages)
    shift = (m - base) * per_message
    sender, control_id, message_type, received_at, raw = messages[base]
    raw = raw if isinstance(raw, bytes) else raw.encode()
    out = [(LOG_INSERT, (sender, f"{control_id}-{m}", message_type, received_at, raw))]
    mine = versions[base * per_message : (base + 1) * per_message]
    if shape == "rows":
        columns = list(zip(*[(s + shift, t, f"{i}-{m}", v, u, k, b) for s, t, i, v, u, k, b in mine]))
        out.append(
            (
                "INSERT INTO resource_version (seq, resource_type, id, version_id, last_updated,"
                " method, body) SELECT * FROM unnest(%s::bigint[], %s::text[], %s::text[],"
                " %s::bigint[], %s::bigint[], %s::text[], %s::text[])",
                [list(c) for c in columns],
            )
        )
        for table, (names, rows) in tables.items():
            own = [(r[0] + shift,) + tuple(r[1:]) for v in mine for r in rows.get(v[0], [])]
            if not own:
                continue
            casts = ", ".join(
                f"%s::{'bigint' if n in INTEGER_COLUMNS else 'text'}[]" for n in names
            )
            out.append(
                (
                    f"INSERT INTO {table} ({', '.join(names)}) SELECT * FROM unnest({casts})",
                    [list(c) for c in zip(*own)],
                )
            )
    else:
        for s, t, i, v, u, k, b in mine:
            search = {}
            for names, rows in tables.values():
                for row in rows.get(s, []):
                    values = dict(zip(names, row))
                    param = values["param"]
                    for key in ("res_seq", "param", "ord", "resource_type", "grp"):
                        values.pop(key)
                    search.setdefault(param, []).append(
                        {key: value for key, value in values.items() if value is not None}
                    )
            out.append(
                (
                    "INSERT INTO resource_version (seq, resource_type, id, version_id,"
                    " last_updated, method, body, search) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                    (s + shift, t, f"{i}-{m}", v, u, k, b, Jsonb(search)),
                )
            )
    return out


def postgres_cpu_ticks():
    """User and system time of every PostgreSQL process, with the children the postmaster has
    reaped (backends that ended), in clock ticks."""
    total = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        if "postgres" in name:
            fields = stat[stat.rindex(")") + 2 :].split()
            total += sum(int(x) for x in fields[11:15])
    return total


def replay(dsn, shape, store, count):
    messages, versions, tables = read_store(store)
    work = [[] for _ in range(CONNECTIONS)]
    for m in range(count):
        work[m % CONNECTIONS].append(statements(shape, messages, versions, tables, m))
    schema = ROWS_SCHEMA if shape == "rows" else JSONB_SCHEMA
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS concord_floor CASCADE")
        conn.execute("CREATE SCHEMA concord_floor")
        conn.execute("SET search_path TO concord_floor")
        conn.execute(schema)

    def run(items):
        with psycopg.connect(dsn, options="-c search_path=concord_floor") as conn:
            for message in items:
                with conn.cursor() as cur:
                    for sql, params in message:
                        cur.execute(sql, params, prepare=True)
                conn.commit()

    threads = [threading.Thread(target=run, args=(items,)) for items in work]
    # The schema's connection has ended: let the postmaster reap it first, so its time is not
    # counted as the replay's.
    time.sleep(0.5)
    before = postgres_cpu_ticks()
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    # The backends have ended; give the postmaster a moment to reap them into its child times.
    time.sleep(0.5)
    ticks = postgres_cpu_ticks() - before
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP SCHEMA concord_floor CASCADE")
    cpu_ms = ticks / os.sysconf("SC_CLK_TCK") / count * 1e3
    rows = sum(len(rows.get(v[0], [])) for _, rows in tables.values() for v in versions)
    print(
        f"{shape}: {count} messages ({len(versions) // len(messages)} versions and"
        f" {rows / len(messages):.0f} index values each) in {elapsed:.2f} s;"
        f" PostgreSQL CPU a message {cpu_ms:.2f} ms"
    )


def main():
    if len(sys.argv) != 5 or sys.argv[2] not in ("rows", "jsonb"):
        sys.exit("usage: store_floor.py DSN rows|jsonb EDGE_STORE.db MESSAGES")
    replay(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))


if __name__ == "__main__":
    main()
