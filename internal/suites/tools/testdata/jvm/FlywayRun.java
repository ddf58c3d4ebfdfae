// FlywayRun sends, through pgjdbc, what `flyway migrate` (Flyway 10 and 11,
// flyway-database-postgresql) sends to PostgreSQL, and prints what Flyway
// prints: no Flyway jar can be had on the test machines. The SQL is
// Flyway's own (PostgreSQLDatabase, PostgreSQLConnection,
// PostgreSQLAdvisoryLockTemplate, JdbcTableSchemaHistory, DbMigrate):
//
//   - pgjdbc connections with application_name "Flyway by Redgate"
//     (PostgreSQLDatabaseType.setDefaultConnectionProps);
//   - the schema history table flyway_schema_history, created under the
//     lock if it does not exist;
//   - the lock: by default (flyway.postgresql.transactional.lock=true) a
//     transaction on the main connection that polls
//     pg_try_advisory_xact_lock every second and commits at the end, while
//     the migration runs on a second connection; with
//     -postgresql.transactional.lock=false, one connection that polls
//     pg_try_advisory_lock and then calls pg_advisory_unlock. Flyway never
//     waits in pg_advisory_lock;
//   - one versioned migration per lock: its statements in a transaction,
//     or in autocommit when the script holds CREATE INDEX CONCURRENTLY (or
//     its V<n>__<name>.sql.conf says executeInTransaction=false), then its
//     row in the history, a prepared INSERT with nine bound parameters.
//
// Usage: FlywayRun -locations=filesystem:<dir> [-postgresql.transactional.lock=false] migrate
// with FLYWAY_URL, FLYWAY_USER and FLYWAY_PASSWORD in the environment.
// Exit code 1 on a failed migration.
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import java.util.zip.CRC32;

public class FlywayRun {
    static final String TABLE = "\"public\".\"flyway_schema_history\"";
    // PostgreSQLAdvisoryLockTemplate: LOCK_MAGIC_NUM + the table's hashCode.
    static final long LOCK = (0x46L << 40) + (0x6CL << 32) + (0x79L << 24) + (0x77 << 16) + (0x61 << 8) + 0x79
        + TABLE.hashCode();
    static final Pattern VERSIONED = Pattern.compile("V([0-9.]+)__(.+)\\.sql");
    static final Pattern NON_TRANSACTIONAL = Pattern.compile("^(CREATE|DROP)( UNIQUE)? INDEX CONCURRENTLY.*",
        Pattern.DOTALL);

    static String url, user, password;
    static boolean transactionalLock = true;
    static Connection main, migration;
    static String originalRole;

    static class Migration {
        String version, description, script;
        int checksum;
        boolean inTransaction = true;
        List<String> statements;
        Path file;
    }

    static class FailedMigration extends Exception {
        FailedMigration(String msg, Throwable cause) {
            super(msg, cause);
        }
    }

    public static void main(String[] args) {
        String dir = null;
        for (String a : args) {
            if (a.startsWith("-locations=filesystem:")) {
                dir = a.substring("-locations=filesystem:".length());
            } else if (a.equals("-postgresql.transactional.lock=false")) {
                transactionalLock = false;
            }
        }
        url = System.getenv("FLYWAY_URL");
        user = System.getenv("FLYWAY_USER");
        password = System.getenv("FLYWAY_PASSWORD");
        try {
            migrate(resolve(Paths.get(dir)));
        } catch (FailedMigration e) {
            Jdbc.error(e.getMessage());
            System.exit(1);
        } catch (Exception e) {
            Jdbc.error("Unexpected error: " + e);
            System.exit(1);
        }
        System.exit(0);
    }

    static Connection open() throws SQLException {
        // PostgreSQLDatabaseType.setDefaultConnectionProps, key as Flyway spells it.
        Connection c = Jdbc.connect(url, user, password, "applicationName", "Flyway by Redgate");
        // PostgreSQLConnection's constructor.
        originalRole = Jdbc.first(c, "SELECT CURRENT_USER");
        Jdbc.first(c, "SELECT rolname FROM pg_roles WHERE rolname ILIKE 'rds_superuser';");
        Jdbc.first(c, "SHOW search_path");
        return c;
    }

    // restoreOriginalState resets the role, as Flyway does before it touches
    // the history and before each migration.
    static void restoreOriginalState(Connection c) throws SQLException {
        Jdbc.execute(c, "SET ROLE '" + originalRole + "'");
    }

    static boolean historyExists() throws SQLException {
        restoreOriginalState(main);
        return "t".equals(Jdbc.first(main, "SELECT EXISTS (\n"
            + "  SELECT 1\n"
            + "  FROM   pg_catalog.pg_class c\n"
            + "  JOIN   pg_catalog.pg_namespace n ON n.oid = c.relnamespace\n"
            + "  WHERE  n.nspname = ?\n"
            + "  AND    c.relname = ?\n"
            + "  AND    c.relkind = 'r'\n"
            + ")", "public", "flyway_schema_history"));
    }

    interface Locked<T> {
        T call() throws Exception;
    }

    // lock is PostgreSQLAdvisoryLockTemplate.execute.
    static <T> T lock(Locked<T> body) throws Exception {
        if (transactionalLock) {
            main.setAutoCommit(false);
            try {
                tryLock("SELECT pg_try_advisory_xact_lock(" + LOCK + ")");
                T r = body.call();
                main.commit();
                return r;
            } catch (Exception e) {
                main.rollback();
                throw e;
            } finally {
                main.setAutoCommit(true);
            }
        }
        tryLock("SELECT pg_try_advisory_lock(" + LOCK + ")");
        try {
            return body.call();
        } finally {
            Jdbc.first(main, "SELECT pg_advisory_unlock(" + LOCK + ")");
        }
    }

    // tryLock is RetryStrategy.doWithRetries: 50 retries a second apart.
    static void tryLock(String sql) throws Exception {
        for (int retries = 50; !"t".equals(Jdbc.first(main, sql)); retries--) {
            if (retries == 0) {
                throw new Exception("Number of retries exceeded while attempting to acquire PostgreSQL advisory lock");
            }
            Jdbc.sleep(1000);
        }
    }

    static void createHistory() throws Exception {
        lock(() -> {
            for (boolean first = true; !historyExists(); first = false) {
                if (first) {
                    Jdbc.info("Creating Schema History table " + TABLE + " ...");
                }
                boolean auto = main.getAutoCommit();
                main.setAutoCommit(false);
                try {
                    // PostgreSQLDatabase.getRawCreateScript, one statement at a time.
                    Jdbc.execute(main, "CREATE TABLE " + TABLE + " (\n"
                        + "    \"installed_rank\" INT NOT NULL,\n"
                        + "    \"version\" VARCHAR(50),\n"
                        + "    \"description\" VARCHAR(200) NOT NULL,\n"
                        + "    \"type\" VARCHAR(20) NOT NULL,\n"
                        + "    \"script\" VARCHAR(1000) NOT NULL,\n"
                        + "    \"checksum\" INTEGER,\n"
                        + "    \"installed_by\" VARCHAR(100) NOT NULL,\n"
                        + "    \"installed_on\" TIMESTAMP NOT NULL DEFAULT now(),\n"
                        + "    \"execution_time\" INTEGER NOT NULL,\n"
                        + "    \"success\" BOOLEAN NOT NULL\n"
                        + ")");
                    Jdbc.execute(main, "ALTER TABLE " + TABLE + " ADD CONSTRAINT \"flyway_schema_history_pk\" PRIMARY KEY (\"installed_rank\")");
                    Jdbc.execute(main, "CREATE INDEX \"flyway_schema_history_s_idx\" ON " + TABLE + " (\"success\")");
                    main.commit();
                } catch (SQLException e) {
                    main.rollback();
                    throw e;
                } finally {
                    main.setAutoCommit(auto);
                }
            }
            return null;
        });
    }

    // applied returns the history's rows: version, description, success.
    static List<String[]> applied() throws SQLException {
        List<String[]> out = new ArrayList<>();
        try (PreparedStatement ps = main.prepareStatement("/*NO LOAD BALANCE*/\n"
            + "SELECT \"installed_rank\",\"version\",\"description\",\"type\",\"script\",\"checksum\",\"installed_on\","
            + "\"installed_by\",\"execution_time\",\"success\" FROM " + TABLE + " WHERE \"installed_rank\" > ? ORDER BY \"installed_rank\"")) {
            ps.setInt(1, -1);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    out.add(new String[] {rs.getString("version"), rs.getString("description"), rs.getString("success"),
                        rs.getString("installed_rank")});
                }
            }
        }
        return out;
    }

    static List<Migration> resolve(Path dir) throws IOException, FailedMigration {
        List<Migration> out = new ArrayList<>();
        try (Stream<Path> files = Files.list(dir)) {
            for (Path f : (Iterable<Path>) files.sorted()::iterator) {
                Matcher m = VERSIONED.matcher(f.getFileName().toString());
                if (!m.matches()) {
                    continue;
                }
                Migration mig = new Migration();
                mig.file = f;
                mig.version = m.group(1);
                mig.description = m.group(2).replace('_', ' ');
                mig.script = f.getFileName().toString();
                String text = new String(Files.readAllBytes(f), StandardCharsets.UTF_8);
                CRC32 crc = new CRC32();
                for (String line : text.split("\r?\n")) {
                    crc.update(line.getBytes(StandardCharsets.UTF_8));
                }
                mig.checksum = (int) crc.getValue();
                mig.statements = Jdbc.statements(text, true);
                // PostgreSQLParser.detectCanExecuteInTransaction; a script
                // that mixes both kinds is an error unless mixed=true.
                int nonTx = 0;
                for (String s : mig.statements) {
                    if (NON_TRANSACTIONAL.matcher(s.trim().toUpperCase()).matches()) {
                        nonTx++;
                    }
                }
                if (nonTx > 0 && nonTx < mig.statements.size()) {
                    throw new FailedMigration("Detected both transactional and non-transactional statements within the same migration"
                        + " (even though mixed is false). Offending statement found in " + mig.script, null);
                }
                mig.inTransaction = nonTx == 0;
                Path conf = Paths.get(f + ".conf");
                if (Files.exists(conf) && new String(Files.readAllBytes(conf), StandardCharsets.UTF_8).contains("executeInTransaction=false")) {
                    mig.inTransaction = false;
                }
                out.add(mig);
            }
        }
        out.sort((a, b) -> Integer.compare(Integer.parseInt(a.version), Integer.parseInt(b.version)));
        return out;
    }

    static String describe(Migration m) {
        return "schema \"public\" to version \"" + m.version + " - " + m.description + "\"" + (m.inTransaction ? "" : " [non-transactional]");
    }

    static void migrate(List<Migration> migrations) throws Exception {
        main = open();
        String version = Jdbc.first(main, "SELECT version()");
        Jdbc.info("Database: " + url + " (" + version.split(" on ")[0] + ")");
        Jdbc.first(main, "SELECT current_schema");
        if (!historyExists()) {
            createHistory();
        }
        Jdbc.info("Successfully validated " + migrations.size() + " migrations");
        long start = System.currentTimeMillis();
        int count = 0;
        String at = null;
        while (true) {
            restoreOriginalState(main);
            Migration done = lock(() -> migrateOne(migrations));
            if (done == null) {
                break;
            }
            count++;
            at = done.version;
        }
        if (count == 0) {
            Jdbc.info("Schema \"public\" is up to date. No migration necessary.");
        } else {
            Jdbc.info(String.format("Successfully applied %d migration%s to schema \"public\", now at version v%s (execution time %s)",
                count, count == 1 ? "" : "s", at, String.format("00:%02d.%03ds", (System.currentTimeMillis() - start) / 1000,
                    (System.currentTimeMillis() - start) % 1000)));
        }
    }

    // migrateOne applies the first pending migration under the lock, as
    // DbMigrate.migrateGroup does without group=true; null when none is
    // pending.
    static Migration migrateOne(List<Migration> migrations) throws Exception {
        int rank = 0;
        int max = 0;
        for (String[] row : applied()) {
            rank = Math.max(rank, Integer.parseInt(row[3]));
            if (!"t".equals(row[2])) {
                throw new FailedMigration("Validate failed: Migrations have failed validation\n"
                    + "Detected failed migration to version " + row[0] + " (" + row[1] + ").\n"
                    + "Please remove any half-completed changes then run repair to fix the schema history.", null);
            }
            max = Math.max(max, Integer.parseInt(row[0]));
        }
        Migration next = null;
        for (Migration m : migrations) {
            if (Integer.parseInt(m.version) > max) {
                next = m;
                break;
            }
        }
        if (next == null) {
            return null;
        }
        if (rank == 0) {
            Jdbc.info("Current version of schema \"public\": << Empty Schema >>");
        }
        if (migration == null) {
            migration = transactionalLock ? open() : main;
        }
        restoreOriginalState(migration);
        // changeCurrentSchemaTo: the schema goes first in the search path.
        Jdbc.first(migration, "SELECT COUNT(*) FROM pg_namespace WHERE nspname=?", "public");
        Jdbc.first(migration, "SELECT set_config('search_path', ?, false)", "\"public\",\"$user\", public");
        Jdbc.info("Migrating " + describe(next));
        long start = System.currentTimeMillis();
        boolean tx = next.inTransaction;
        if (tx) {
            migration.setAutoCommit(false);
        }
        try {
            for (String s : next.statements) {
                Jdbc.execute(migration, s);
            }
            record(next, rank + 1, (int) (System.currentTimeMillis() - start), true);
            if (tx) {
                migration.commit();
            }
        } catch (SQLException e) {
            if (tx) {
                migration.rollback();
                Jdbc.error("Migration of " + describe(next) + " failed! Changes successfully rolled back.");
            } else {
                Jdbc.error("Migration of " + describe(next) + " failed! Please restore backups and roll back database and code!");
                record(next, rank + 1, (int) (System.currentTimeMillis() - start), false);
            }
            throw failed(next, e);
        } finally {
            if (tx) {
                migration.setAutoCommit(true);
            }
        }
        return next;
    }

    // record is JdbcTableSchemaHistory.doAddAppliedMigration.
    static void record(Migration m, int rank, int millis, boolean success) throws SQLException {
        restoreOriginalState(main);
        try (PreparedStatement ps = main.prepareStatement("INSERT INTO " + TABLE
            + " (\"installed_rank\", \"version\", \"description\", \"type\", \"script\", \"checksum\", \"installed_by\", \"execution_time\", \"success\")"
            + " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")) {
            ps.setInt(1, rank);
            ps.setString(2, m.version);
            ps.setString(3, m.description);
            ps.setString(4, "SQL");
            ps.setString(5, m.script);
            ps.setInt(6, m.checksum);
            ps.setString(7, originalRole);
            ps.setInt(8, millis);
            ps.setBoolean(9, success);
            ps.executeUpdate();
        }
    }

    // failed is the message of FlywaySqlScriptException, which the command
    // line prints after "ERROR: ".
    static FailedMigration failed(Migration m, SQLException e) {
        String title = "Failed to execute script " + m.script;
        return new FailedMigration(title + "\n" + "-".repeat(title.length()) + "\n"
            + "SQL State  : " + e.getSQLState() + "\n"
            + "Error Code : " + e.getErrorCode() + "\n"
            + "Message    : " + e.getMessage().trim() + "\n"
            + "Location   : " + m.file + " (" + m.file.toAbsolutePath() + ")\n"
            + "Line       : 1\n"
            + "Statement  : Run Flyway with -X option to see the actual statement causing the problem", e);
    }
}
