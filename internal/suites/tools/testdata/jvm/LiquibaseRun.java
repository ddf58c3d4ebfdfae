// LiquibaseRun sends, through pgjdbc, what `liquibase update` (Liquibase 4)
// sends to PostgreSQL for a formatted-SQL changelog, and prints what
// Liquibase prints: no Liquibase jar can be had on the test machines. The
// SQL is what Liquibase's generators produce for PostgreSQL
// (StandardLockService, CreateDatabaseChangeLogLockTableGenerator,
// InitializeDatabaseChangeLogLockTableGenerator, LockDatabaseChangeLogGenerator,
// UnlockDatabaseChangeLogGenerator, CreateDatabaseChangeLogTableGenerator,
// MarkChangeSetRanGenerator; ChangeSet.execute, UpdateVisitor):
//
//   - one connection, pgjdbc's own application_name, autocommit off;
//   - the lock is a row: databasechangeloglock is created and initialised
//     if needed (a run that loses the race to create it rolls back and
//     retries), then UPDATE ... SET LOCKED = TRUE ... WHERE ID = 1 AND
//     LOCKED = FALSE; a run that finds it locked prints "Waiting for
//     changelog lock...." and polls (changelogLockPollRate seconds, 10 by
//     default);
//   - each changeset in a transaction of its own, or in autocommit with
//     runInTransaction:false, then its row in databasechangelog (an INSERT
//     with literals) in a transaction of its own;
//   - the lock released at the end, also after a failure.
//
// Usage: LiquibaseRun --changelog-file=<path> [--changelog-lock-poll-rate=<s>] update
// with LIQUIBASE_COMMAND_URL, LIQUIBASE_COMMAND_USERNAME and
// LIQUIBASE_COMMAND_PASSWORD in the environment. Exit code 1 on a failure.
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.security.MessageDigest;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

public class LiquibaseRun {
    static final String LOCK_TABLE = "public.databasechangeloglock";
    static final String LOG_TABLE = "public.databasechangelog";
    static final String VERSION = "4.31.1";
    static final Pattern CHANGESET = Pattern.compile("--changeset\\s+([^:\\s]+):(\\S+)(.*)");

    static Connection conn;
    static String file;
    static int pollRate = 10;
    static String deploymentId = String.valueOf(System.currentTimeMillis() % 10_000_000_000L);

    static class ChangeSet {
        String id, author, sql = "";
        boolean runInTransaction = true;
        boolean splitStatements = true;

        String name() {
            return file + "::" + id + "::" + author;
        }
    }

    static class Failure extends Exception {
        Failure(String msg, Throwable cause) {
            super(msg, cause);
        }
    }

    public static void main(String[] args) {
        String path = null;
        for (String a : args) {
            if (a.startsWith("--changelog-file=")) {
                path = a.substring("--changelog-file=".length());
            } else if (a.startsWith("--changelog-lock-poll-rate=")) {
                pollRate = Integer.parseInt(a.substring("--changelog-lock-poll-rate=".length()));
            }
        }
        try {
            List<ChangeSet> changeSets = parse(Paths.get(path));
            file = Paths.get(path).getFileName().toString();
            conn = Jdbc.connect(System.getenv("LIQUIBASE_COMMAND_URL"), System.getenv("LIQUIBASE_COMMAND_USERNAME"),
                System.getenv("LIQUIBASE_COMMAND_PASSWORD"));
            conn.setAutoCommit(false);
            update(changeSets);
        } catch (Failure e) {
            SQLException sql = e.getCause() instanceof SQLException ? (SQLException) e.getCause() : null;
            if (sql != null) {
                // LiquibaseCommandLine's summary of the root cause.
                Jdbc.error("Exception Details");
                Jdbc.error("Exception Primary Class:  " + sql.getClass().getSimpleName());
                Jdbc.error("Exception Primary Reason:  " + sql.getMessage().trim());
                Jdbc.error("Exception Primary Source:  PostgreSQL " + serverVersion());
            }
            System.err.println("\nUnexpected error running Liquibase: " + e.getMessage());
            System.exit(1);
        } catch (Exception e) {
            System.err.println("\nUnexpected error running Liquibase: " + e);
            System.exit(1);
        }
        Jdbc.info("Liquibase command 'update' was executed successfully.");
        System.exit(0);
    }

    static String serverVersion() {
        try {
            return conn.getMetaData().getDatabaseProductVersion();
        } catch (Exception e) {
            return "?";
        }
    }

    // parse reads a formatted-SQL changelog: "--changeset author:id" starts
    // a changeset, "runInTransaction:false" and "splitStatements:false"
    // after it mark it.
    static List<ChangeSet> parse(Path p) throws Exception {
        List<ChangeSet> out = new ArrayList<>();
        ChangeSet cur = null;
        for (String line : new String(Files.readAllBytes(p), StandardCharsets.UTF_8).split("\n")) {
            Matcher m = CHANGESET.matcher(line.trim());
            if (m.matches()) {
                cur = new ChangeSet();
                cur.author = m.group(1);
                cur.id = m.group(2);
                cur.runInTransaction = !m.group(3).contains("runInTransaction:false");
                cur.splitStatements = !m.group(3).contains("splitStatements:false");
                out.add(cur);
            } else if (cur != null) {
                cur.sql += line + "\n";
            }
        }
        return out;
    }

    static boolean tableExists(String name) throws SQLException {
        try (ResultSet rs = conn.getMetaData().getTables(null, "public", name, new String[] {"TABLE"})) {
            return rs.next();
        }
    }

    // init is StandardLockService.init: up to 10 tries, since a run that
    // started together with this one may create the table first.
    static void initLock() throws Exception {
        Random random = new Random();
        for (int i = 0; i < 10; i++) {
            try {
                if (!tableExists("databasechangeloglock")) {
                    Jdbc.execute(conn, "CREATE TABLE " + LOCK_TABLE + " (ID INTEGER NOT NULL, LOCKED BOOLEAN NOT NULL, "
                        + "LOCKGRANTED TIMESTAMP WITHOUT TIME ZONE, LOCKEDBY VARCHAR(255), CONSTRAINT databasechangeloglock_pkey PRIMARY KEY (ID))");
                    conn.commit();
                }
                if ("0".equals(Jdbc.first(conn, "SELECT COUNT(*) FROM " + LOCK_TABLE))) {
                    Jdbc.execute(conn, "DELETE FROM " + LOCK_TABLE);
                    Jdbc.execute(conn, "INSERT INTO " + LOCK_TABLE + " (ID, LOCKED) VALUES (1, FALSE)");
                    conn.commit();
                }
                return;
            } catch (SQLException e) {
                if (i == 9) {
                    throw e;
                }
                conn.rollback();
                Jdbc.sleep(random.nextInt(1000));
            }
        }
    }

    // acquireLock is StandardLockService.acquireLock.
    static boolean acquireLock() throws Exception {
        try {
            conn.rollback();
            initLock();
            if ("t".equals(Jdbc.first(conn, "SELECT LOCKED FROM " + LOCK_TABLE + " WHERE ID=1"))) {
                return false;
            }
            InetAddress host = InetAddress.getLocalHost();
            int n = Jdbc.update(conn, "UPDATE " + LOCK_TABLE + " SET LOCKED = TRUE, LOCKEDBY = '" + host.getHostName() + " ("
                + host.getHostAddress() + ")', LOCKGRANTED = NOW() WHERE ID = 1 AND LOCKED = FALSE");
            if (n == 0) {
                return false; // another run was faster
            }
            conn.commit();
            Jdbc.info("Successfully acquired change log lock");
            return true;
        } finally {
            conn.rollback();
        }
    }

    static void releaseLock() throws SQLException {
        Jdbc.update(conn, "UPDATE " + LOCK_TABLE + " SET LOCKED = FALSE, LOCKEDBY = NULL, LOCKGRANTED = NULL WHERE ID = 1");
        conn.commit();
        Jdbc.info("Successfully released change log lock");
    }

    static void update(List<ChangeSet> changeSets) throws Exception {
        // waitForLock, with changelogLockWaitTimeInMinutes' default of 5.
        long giveUp = System.currentTimeMillis() + 5 * 60 * 1000;
        while (!acquireLock()) {
            if (System.currentTimeMillis() > giveUp) {
                throw new Failure("Could not acquire change log lock.", null);
            }
            Jdbc.info("Waiting for changelog lock....");
            Jdbc.sleep(pollRate * 1000L);
        }
        try {
            if (!tableExists("databasechangelog")) {
                Jdbc.execute(conn, "CREATE TABLE " + LOG_TABLE + " (ID VARCHAR(255) NOT NULL, AUTHOR VARCHAR(255) NOT NULL, "
                    + "FILENAME VARCHAR(255) NOT NULL, DATEEXECUTED TIMESTAMP WITHOUT TIME ZONE NOT NULL, ORDEREXECUTED INTEGER NOT NULL, "
                    + "EXECTYPE VARCHAR(10) NOT NULL, MD5SUM VARCHAR(35), DESCRIPTION VARCHAR(255), COMMENTS VARCHAR(255), "
                    + "TAG VARCHAR(255), LIQUIBASE VARCHAR(20), CONTEXTS VARCHAR(255), LABELS VARCHAR(255), DEPLOYMENT_ID VARCHAR(10))");
                conn.commit();
                Jdbc.info("Creating database history table with name: " + LOG_TABLE);
            }
            Set<String> ran = new HashSet<>();
            int order = 0;
            try (Statement st = conn.createStatement();
                 ResultSet rs = st.executeQuery("SELECT * FROM " + LOG_TABLE + " ORDER BY DATEEXECUTED ASC, ORDEREXECUTED ASC")) {
                while (rs.next()) {
                    ran.add(rs.getString("FILENAME") + "::" + rs.getString("ID") + "::" + rs.getString("AUTHOR"));
                    order = Math.max(order, rs.getInt("ORDEREXECUTED"));
                }
            }
            conn.rollback();
            int applied = 0;
            for (ChangeSet cs : changeSets) {
                if (ran.contains(cs.name())) {
                    continue;
                }
                run(cs, ++order);
                applied++;
            }
            Jdbc.info("UPDATE SUMMARY");
            Jdbc.info("Run:                     " + applied);
            Jdbc.info("Previously run:          " + ran.size());
        } finally {
            releaseLock();
        }
    }

    // run is ChangeSet.execute and the history row of UpdateVisitor.
    static void run(ChangeSet cs, int order) throws Exception {
        long start = System.currentTimeMillis();
        Jdbc.info("Running Changeset: " + cs.name());
        conn.setAutoCommit(!cs.runInTransaction);
        String current = null;
        try {
            // splitStatements:false: the changeset is one statement, its
            // "--" lines left out (a $$ body's semicolons stay in it).
            List<String> stmts = cs.splitStatements ? Jdbc.statements(cs.sql) : List.of(Jdbc.withoutComments(cs.sql));
            for (String s : stmts) {
                current = s;
                Jdbc.execute(conn, s);
            }
            if (cs.runInTransaction) {
                conn.commit();
            }
        } catch (SQLException e) {
            Jdbc.error("ChangeSet " + cs.name() + " encountered an exception.");
            if (cs.runInTransaction) {
                conn.rollback();
            }
            // MigrationFailedException around JdbcExecutor's DatabaseException.
            throw new Failure("Migration failed for changeset " + cs.name() + ":\n     Reason: liquibase.exception.DatabaseException: "
                + e.getMessage() + " [Failed SQL: (" + e.getErrorCode() + ") " + current + "]", e);
        } finally {
            conn.setAutoCommit(false);
        }
        Jdbc.execute(conn, "INSERT INTO " + LOG_TABLE + " (ID, AUTHOR, FILENAME, DATEEXECUTED, ORDEREXECUTED, MD5SUM, DESCRIPTION, "
            + "COMMENTS, EXECTYPE, CONTEXTS, LABELS, LIQUIBASE, DEPLOYMENT_ID) VALUES ('" + cs.id + "', '" + cs.author + "', '"
            + file + "', NOW(), " + order + ", '9:" + md5(cs.sql) + "', 'sql', '', 'EXECUTED', NULL, NULL, '" + VERSION + "', '"
            + deploymentId + "')");
        conn.commit();
        Jdbc.info("ChangeSet " + cs.name() + " ran successfully in " + (System.currentTimeMillis() - start) + "ms");
    }

    static String md5(String s) throws Exception {
        StringBuilder b = new StringBuilder();
        for (byte x : MessageDigest.getInstance("MD5").digest(s.getBytes(StandardCharsets.UTF_8))) {
            b.append(String.format("%02x", x));
        }
        return b.toString();
    }
}
