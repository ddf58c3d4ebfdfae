// What FlywayRun and LiquibaseRun share: a pgjdbc connection, statements
// split out of a script, and printing. See internal/suites/tools/jvm_test.go.
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;

class Jdbc {
    // connect opens a pgjdbc connection with its defaults (extended
    // protocol, prepareThreshold 5) and the tool's extra connection
    // properties (key, value, ...), which settings in the URL override.
    static Connection connect(String url, String user, String password, String... extra) throws SQLException {
        Properties p = new Properties();
        p.setProperty("user", user);
        p.setProperty("password", password);
        for (int i = 0; i + 1 < extra.length; i += 2) {
            p.setProperty(extra[i], extra[i + 1]);
        }
        // A hang (a ReadyForQuery that never comes) becomes an error
        // before the test's process timeout.
        p.setProperty("socketTimeout", "45");
        p.setProperty("connectTimeout", "10");
        return DriverManager.getConnection(url, p);
    }

    static void execute(Connection c, String sql) throws SQLException {
        try (Statement st = c.createStatement()) {
            st.execute(sql);
        }
    }

    static int update(Connection c, String sql) throws SQLException {
        try (Statement st = c.createStatement()) {
            return st.executeUpdate(sql);
        }
    }

    // first runs a query with bound parameters and returns its first
    // column's first value as a string (null when there is no row).
    static String first(Connection c, String sql, Object... params) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(sql)) {
            for (int i = 0; i < params.length; i++) {
                ps.setObject(i + 1, params[i]);
            }
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() ? rs.getString(1) : null;
            }
        }
    }

    // statements splits a script into its statements: each ends with a
    // semicolon at the end of a line; "--" comment lines are dropped. The
    // suite's scripts need no more than that. It is Liquibase's split of a
    // formatted-SQL changeset, which cuts a $$ body at its semicolons too
    // (liquibase/liquibase#5538: "Unterminated dollar quote").
    static List<String> statements(String script) {
        return statements(script, false);
    }

    // withoutComments is a script without its "--" comment lines.
    static String withoutComments(String script) {
        StringBuilder b = new StringBuilder();
        for (String line : script.split("\n")) {
            if (!line.trim().startsWith("--")) {
                b.append(line).append("\n");
            }
        }
        return b.toString().trim();
    }

    // statements with dollarQuotes splits as Flyway's PostgreSQL parser
    // does: a semicolon inside a $$ body ends no statement.
    static List<String> statements(String script, boolean dollarQuotes) {
        List<String> out = new ArrayList<>();
        StringBuilder cur = new StringBuilder();
        boolean inBody = false;
        for (String line : script.split("\n")) {
            String t = line.trim();
            if (t.isEmpty() || (!inBody && t.startsWith("--"))) {
                continue;
            }
            if (cur.length() > 0) {
                cur.append("\n");
            }
            cur.append(line);
            if (dollarQuotes && (line.split("\\$\\$", -1).length - 1) % 2 == 1) {
                inBody = !inBody;
            }
            if (!inBody && t.endsWith(";")) {
                String s = cur.toString().trim();
                out.add(s.substring(0, s.length() - 1));
                cur.setLength(0);
            }
        }
        if (cur.toString().trim().length() > 0) {
            out.add(cur.toString().trim());
        }
        return out;
    }

    static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    static void info(String s) {
        System.out.println(s);
        System.out.flush();
    }

    static void error(String s) {
        System.err.println("ERROR: " + s);
        System.err.flush();
    }
}
