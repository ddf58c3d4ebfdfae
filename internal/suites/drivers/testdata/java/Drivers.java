// pgjdbc through pgguard: one scenario per run (args[0]), connection from the
// PG* environment variables. Prints each step, checks every result, and ends
// with "PASS" (exit 0) or "FAIL: ..." (exit 1). See
// internal/suites/drivers/java_test.go.
//
// pgjdbc sends everything with the extended protocol (preferQueryMode=extended,
// its default): a Statement's SQL goes as an unnamed Parse/Bind/Execute/Sync, a
// multi-statement string as one Parse/Bind/Execute per statement before one
// Sync, and a PreparedStatement becomes a named server-side statement from its
// fifth execution (prepareThreshold=5).
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.SQLWarning;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;

import org.postgresql.core.BaseConnection;
import org.postgresql.core.TransactionState;
import org.postgresql.util.PSQLException;

public class Drivers {
    static String step = "connect";
    static Connection conn;
    // A counter makes every checked value unique, so that a result left over
    // from an earlier query can never pass for the expected one.
    static int seq = 0;

    static void log(String s) {
        step = s;
        System.out.println(s);
        System.out.flush();
    }

    static void fail(String msg) {
        throw new AssertionError(msg);
    }

    static void want(boolean ok, String msg) {
        if (!ok) {
            fail(msg);
        }
    }

    static Connection connect(String mode) throws SQLException {
        String url = "jdbc:postgresql://" + System.getenv("PGHOST") + ":" + System.getenv("PGPORT") + "/" + System.getenv("PGDATABASE");
        Properties p = new Properties();
        p.setProperty("user", System.getenv("PGUSER"));
        p.setProperty("password", System.getenv("PGPASSWORD"));
        p.setProperty("sslmode", "disable");
        p.setProperty("ApplicationName", "pgguard-drivers-test");
        p.setProperty("preferQueryMode", mode);
        // socketTimeout turns a hang (a ReadyForQuery that never comes) into
        // an error naming the step, before the test's process timeout.
        p.setProperty("socketTimeout", "20");
        p.setProperty("connectTimeout", "10");
        return DriverManager.getConnection(url, p);
    }

    // refused runs sql and wants pgguard's refusal by rule.
    interface SQLRunnable {
        void run() throws SQLException;
    }

    static void refused(String rule, SQLRunnable r) {
        try {
            r.run();
        } catch (PSQLException e) {
            String msg = e.getServerErrorMessage() == null ? e.getMessage() : e.getServerErrorMessage().getMessage();
            want("42501".equals(e.getSQLState()), "SQLSTATE " + e.getSQLState() + " of " + e.getMessage());
            want(msg.startsWith("pgguard: " + rule + ":"), "message " + msg);
            return;
        } catch (SQLException e) {
            fail("want pgguard's refusal by " + rule + ", got " + e);
        }
        fail("no error: the statement was not refused by " + rule);
    }

    static void wantWarning(SQLWarning w, String rule) {
        List<String> got = new ArrayList<>();
        for (; w != null; w = w.getNextWarning()) {
            got.add(w.getMessage());
            if (w.getMessage().startsWith("pgguard: " + rule + ":")) {
                return;
            }
        }
        fail("warnings " + got + ", want one from " + rule);
    }

    static List<Integer> ints(ResultSet rs) throws SQLException {
        List<Integer> out = new ArrayList<>();
        while (rs.next()) {
            out.add(rs.getInt(1));
        }
        rs.close();
        return out;
    }

    // checks runs the queries that reveal a desynchronised session.
    static void checks(String when) throws SQLException {
        log(when + ": SELECT 1 (Statement)");
        try (Statement st = conn.createStatement()) {
            want(ints(st.executeQuery("SELECT 1")).equals(List.of(1)), "SELECT 1");
        }
        String tok = "tok-" + (++seq);
        log(when + ": SELECT ? (PreparedStatement)");
        try (PreparedStatement ps = conn.prepareStatement("SELECT ?::text")) {
            ps.setString(1, tok);
            ResultSet rs = ps.executeQuery();
            want(rs.next() && tok.equals(rs.getString(1)) && !rs.next(), "SELECT ? did not return " + tok);
        }
        // Past prepareThreshold (5) pgjdbc switches to a named statement.
        try (PreparedStatement ps = conn.prepareStatement("SELECT ?::int * 2")) {
            for (int i = 1; i <= 8; i++) {
                int n = ++seq;
                log(when + ": prepared SELECT run " + i);
                ps.setInt(1, n);
                want(ints(ps.executeQuery()).equals(List.of(2 * n)), "prepared SELECT " + n + " * 2");
            }
        }
        int rows = 3 + (++seq % 5);
        log(when + ": multi-row SELECT (PreparedStatement, " + rows + " rows)");
        try (PreparedStatement ps = conn.prepareStatement("SELECT g FROM generate_series(1, ?) g")) {
            ps.setInt(1, rows);
            List<Integer> want = new ArrayList<>();
            for (int i = 1; i <= rows; i++) {
                want.add(i);
            }
            List<Integer> got = ints(ps.executeQuery());
            want(got.equals(want), "multi-row SELECT: " + got);
        }
        log(when + ": multi-row SELECT (Statement)");
        try (Statement st = conn.createStatement()) {
            ResultSet rs = st.executeQuery("SELECT 'r' || g FROM generate_series(1, 4) g");
            List<String> got = new ArrayList<>();
            while (rs.next()) {
                got.add(rs.getString(1));
            }
            want(got.equals(List.of("r1", "r2", "r3", "r4")), "multi-row SELECT: " + got);
        }
        if (conn.getAutoCommit()) {
            TransactionState ts = conn.unwrap(BaseConnection.class).getTransactionState();
            want(ts == TransactionState.IDLE, "transaction state " + ts + ", want IDLE");
        }
    }

    static void allowed() throws SQLException {
        try (Statement st = conn.createStatement()) {
            log("CREATE TABLE (Statement)");
            st.execute("CREATE TABLE IF NOT EXISTS t_allowed (id bigint PRIMARY KEY, v text)");
        }
        checks("after CREATE TABLE");
        log("CREATE INDEX on small (PreparedStatement)");
        try (PreparedStatement ps = conn.prepareStatement("CREATE INDEX small_v_ps ON small (v)")) {
            ps.executeUpdate();
        }
        checks("after CREATE INDEX on small");
        try (Statement st = conn.createStatement()) {
            log("CREATE TABLE with an int primary key (warned)");
            st.execute("CREATE TABLE t_warned (id int PRIMARY KEY)");
            wantWarning(st.getWarnings(), "prefer-bigint");
        }
        checks("after a warned CREATE TABLE");
    }

    static void rewritten() throws SQLException {
        try (Statement st = conn.createStatement()) {
            log("CREATE INDEX on big (Statement)");
            st.execute("CREATE INDEX big_rw_stmt ON big (account)");
            wantWarning(st.getWarnings(), "create-index");
        }
        checks("after rewritten CREATE INDEX (Statement)");
        log("CREATE INDEX on big (PreparedStatement)");
        try (PreparedStatement ps = conn.prepareStatement("CREATE INDEX big_rw_ps ON big (note)")) {
            want(ps.executeUpdate() == 0, "update count");
            wantWarning(ps.getWarnings(), "create-index");
        }
        checks("after rewritten CREATE INDEX (PreparedStatement)");
    }

    // rewrittenSimple is rewritten with preferQueryMode=simple: every
    // statement as a simple Query, parameters interpolated by the driver.
    static void rewrittenSimple() throws SQLException {
        conn.close();
        conn = connect("simple");
        try (Statement st = conn.createStatement()) {
            log("CREATE INDEX on big (Statement, simple mode)");
            st.execute("CREATE INDEX big_rw_simple ON big (account, id)");
            wantWarning(st.getWarnings(), "create-index");
        }
        checks("after rewritten CREATE INDEX (simple mode)");
    }

    static void refused() throws SQLException {
        try (Statement st = conn.createStatement()) {
            log("ALTER TABLE big ALTER COLUMN account TYPE bigint (Statement)");
            refused("alter-column-type", () -> st.execute("ALTER TABLE big ALTER COLUMN account TYPE bigint"));
        }
        checks("after a refused ALTER (Statement)");
        log("ALTER TABLE big ALTER COLUMN account TYPE bigint (PreparedStatement)");
        try (PreparedStatement ps = conn.prepareStatement("ALTER TABLE big ALTER COLUMN account TYPE bigint")) {
            refused("alter-column-type", ps::executeUpdate);
        }
        checks("after a refused ALTER (PreparedStatement)");
        // pgjdbc sends BEGIN in the same pipeline as the first statement.
        log("autocommit off: CREATE INDEX on big");
        conn.setAutoCommit(false);
        try (Statement st = conn.createStatement()) {
            refused("create-index", () -> st.execute("CREATE INDEX big_in_tx ON big (note)"));
        }
        log("rollback");
        conn.rollback();
        checks("after a refused CREATE INDEX in a transaction (autocommit off)");
        conn.setAutoCommit(true);
        checks("after a refused CREATE INDEX in a transaction (autocommit on again)");
    }

    static void multi() throws SQLException {
        try (Statement st = conn.createStatement()) {
            log("CREATE TABLE IF NOT EXISTS t_multi (a int); SELECT 1");
            boolean rs = st.execute("CREATE TABLE IF NOT EXISTS t_multi (a int); SELECT 1");
            want(!rs && st.getUpdateCount() == 0, "first result: want the CREATE TABLE's update count");
            want(st.getMoreResults(), "second result: want a result set");
            want(ints(st.getResultSet()).equals(List.of(1)), "SELECT 1");
            want(!st.getMoreResults() && st.getUpdateCount() == -1, "more than two results");
        }
        checks("after a multi-statement query");
        try (Statement st = conn.createStatement()) {
            log("executeBatch: CREATE TABLE, INSERT");
            st.addBatch("CREATE TABLE IF NOT EXISTS t_batch (a int)");
            st.addBatch("INSERT INTO t_batch VALUES (1), (2)");
            int[] counts = st.executeBatch();
            want(counts.length == 2 && counts[1] == 2, "batch update counts " + java.util.Arrays.toString(counts));
        }
        checks("after a batch");
        try (Statement st = conn.createStatement()) {
            log("multi-statement query with a refused statement");
            refused("alter-column-type", () -> st.execute("INSERT INTO t_multi VALUES (43); ALTER TABLE big ALTER COLUMN account TYPE bigint"));
            want(ints(st.executeQuery("SELECT count(*)::int FROM t_multi WHERE a = 43")).equals(List.of(0)), "a statement of the refused query ran");
        }
        checks("after a refused multi-statement query");
    }

    public static void main(String[] args) {
        try {
            conn = connect("extended");
            switch (args[0]) {
                case "allowed": allowed(); break;
                case "rewritten": rewritten(); break;
                case "rewritten-simple": rewrittenSimple(); break;
                case "refused": refused(); break;
                case "multi": multi(); break;
                default: fail("unknown scenario " + args[0]);
            }
            conn.close();
        } catch (Throwable e) {
            System.out.println("FAIL: " + step + ": " + e);
            System.exit(1);
        }
        System.out.println("PASS");
    }
}
