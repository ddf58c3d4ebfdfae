"""psycopg2 through pgguard: one scenario per run (argv[1]), connection from
the PG* environment variables. Prints each step, checks every result, and
ends with "PASS" (exit 0) or "FAIL: ..." (exit 1). See
internal/suites/drivers/psycopg2_test.go.

psycopg2 sends everything as simple Query messages, parameters interpolated
on the client. With autocommit off (its default) it sends BEGIN before the
first statement of each transaction, so DDL runs inside a transaction block.
"""
import sys

import psycopg2

step = "connect"
seq = 0  # makes every checked value unique


def log(s):
    global step
    step = s
    print(s, flush=True)


def want(ok, msg):
    if not ok:
        raise AssertionError(msg)


def one(cur, sql, args=None):
    cur.execute(sql, args)
    return cur.fetchall()


def refused(conn, sql, rule):
    """Runs sql and wants pgguard's refusal by rule."""
    cur = conn.cursor()
    try:
        cur.execute(sql)
    except psycopg2.Error as e:
        msg = e.diag.message_primary or ""
        want(e.pgcode == "42501", "SQLSTATE %s of %s" % (e.pgcode, e))
        want(msg.startswith("pgguard: %s:" % rule), "message %r" % msg)
        return
    raise AssertionError("no error: %s was not refused by %s" % (sql, rule))


def want_notice(conn, rule):
    got = list(conn.notices)
    del conn.notices[:]
    want(any(("pgguard: %s:" % rule) in n for n in got), "notices %r, want one from %s" % (got, rule))


def checks(conn, when):
    """The queries that reveal a desynchronised session. With autocommit off
    they run in a transaction, committed at the end."""
    global seq
    cur = conn.cursor()
    log("%s: SELECT 1" % when)
    want(one(cur, "SELECT 1") == [(1,)], "SELECT 1")
    seq += 1
    tok = "tok-%d" % seq
    log("%s: SELECT %%s" % when)
    got = one(cur, "SELECT %s::text", (tok,))
    want(got == [(tok,)], "SELECT %%s: %r, want %r" % (got, tok))
    # psycopg2 has no server-side prepared statements of its own: PREPARE
    # and EXECUTE are what applications use for them.
    log("%s: PREPARE" % when)
    cur.execute("DEALLOCATE ALL")
    cur.execute("PREPARE s1 (int) AS SELECT $1 * 2")
    for i in range(7):
        seq += 1
        log("%s: EXECUTE s1 run %d" % (when, i + 1))
        got = one(cur, "EXECUTE s1 (%s)", (seq,))
        want(got == [(2 * seq,)], "EXECUTE s1 (%d): %r" % (seq, got))
    seq += 1
    rows = 3 + seq % 5
    log("%s: multi-row SELECT (%d rows)" % (when, rows))
    got = one(cur, "SELECT g FROM generate_series(1, %s) g", (rows,))
    want(got == [(i,) for i in range(1, rows + 1)], "multi-row SELECT: %r" % got)
    if conn.autocommit:
        want(conn.info.transaction_status == psycopg2.extensions.TRANSACTION_STATUS_IDLE,
             "transaction status %d, want idle" % conn.info.transaction_status)
    else:
        conn.commit()


def allowed(conn):
    cur = conn.cursor()
    log("CREATE TABLE")
    cur.execute("CREATE TABLE IF NOT EXISTS t_allowed_%s (id bigint PRIMARY KEY, v text)" % mode)
    conn.commit()
    checks(conn, "after CREATE TABLE")
    log("CREATE INDEX on small")
    cur.execute("CREATE INDEX small_v_%s ON small (v)" % mode)
    conn.commit()
    checks(conn, "after CREATE INDEX on small")
    log("CREATE TABLE with an int primary key (warned)")
    del conn.notices[:]
    cur.execute("CREATE TABLE t_warned_%s (id int PRIMARY KEY)" % mode)
    want_notice(conn, "prefer-bigint")
    conn.commit()
    checks(conn, "after a warned CREATE TABLE")


def rewritten(conn):
    want(conn.autocommit, "rewritten needs autocommit: with it off the statement is in a transaction block")
    cur = conn.cursor()
    log("CREATE INDEX on big")
    del conn.notices[:]
    cur.execute("CREATE INDEX big_rw ON big (account)")
    want(cur.statusmessage == "CREATE INDEX", "command tag %r" % cur.statusmessage)
    want_notice(conn, "create-index")
    checks(conn, "after a rewritten CREATE INDEX")


def refused_scenario(conn):
    log("ALTER TABLE big ALTER COLUMN account TYPE bigint")
    refused(conn, "ALTER TABLE big ALTER COLUMN account TYPE bigint", "alter-column-type")
    if not conn.autocommit:
        conn.rollback()
    checks(conn, "after a refused ALTER")
    # With autocommit off psycopg2 has already sent BEGIN; with it on, the
    # script does.
    log("CREATE INDEX on big in a transaction")
    if conn.autocommit:
        conn.cursor().execute("BEGIN")
    refused(conn, "CREATE INDEX big_in_tx_%s ON big (note)" % mode, "create-index")
    want(conn.info.transaction_status == psycopg2.extensions.TRANSACTION_STATUS_INERROR,
         "transaction status %d, want in error" % conn.info.transaction_status)
    log("ROLLBACK")
    if conn.autocommit:
        conn.cursor().execute("ROLLBACK")
    else:
        conn.rollback()
    checks(conn, "after a refused CREATE INDEX in a transaction")


def multi(conn):
    cur = conn.cursor()
    log("CREATE TABLE IF NOT EXISTS t_multi (a int); SELECT 1")
    # psycopg2 returns the last statement's result.
    got = one(cur, "CREATE TABLE IF NOT EXISTS t_multi_%s (a int); SELECT 1" % mode)
    want(got == [(1,)], "multi-statement query: %r" % got)
    if not conn.autocommit:
        conn.commit()
    checks(conn, "after a multi-statement query")
    log("multi-statement query with a refused statement")
    refused(conn, "INSERT INTO t_multi_%s VALUES (43); ALTER TABLE big ALTER COLUMN account TYPE bigint" % mode, "alter-column-type")
    if not conn.autocommit:
        conn.rollback()
    got = one(cur, "SELECT count(*) FROM t_multi_%s WHERE a = 43" % mode)
    want(got == [(0,)], "a statement of the refused query ran")
    if not conn.autocommit:
        conn.commit()
    checks(conn, "after a refused multi-statement query")


SCENARIOS = {"allowed": allowed, "rewritten": rewritten, "refused": refused_scenario, "multi": multi}

if __name__ == "__main__":
    scenario, mode = sys.argv[1], sys.argv[2]  # mode: autocommit or transaction
    try:
        c = psycopg2.connect("")  # everything from PG* variables
        c.autocommit = mode == "autocommit"
        SCENARIOS[scenario](c)
        c.close()
    except Exception as e:  # noqa: BLE001 - any error fails the scenario
        print("FAIL: %s: %s: %s" % (step, type(e).__name__, str(e).strip()), flush=True)
        sys.exit(1)
    print("PASS")
