package wiretest

// verdict is what the shipped policy does with a statement, in the
// template database's state (big is large for every size rule).
type verdict int

const (
	// vRuns: allowed or warned; it reaches the server as the client sent
	// it (a warning adds a NOTICE, which the comparison drops).
	vRuns verdict = iota
	// vRefused: refused wherever it stands.
	vRefused
	// vIndexBig: rewritten to CONCURRENTLY when alone and idle, which runs
	// to the same end as the direct run's plain statement; refused
	// anywhere else (transaction block, several statements, pipeline).
	vIndexBig
)

// failPoint is where PostgreSQL raises the statement's error in the
// extended protocol; in a simple Query they all mean "fails".
type failPoint int

const (
	fNone failPoint = iota
	fParse
	fBind // planning errors, e.g. constant folding of 1/0
	fExec
)

type txEffect int

const (
	txNone txEffect = iota
	txBegin
	txEnd // COMMIT or ROLLBACK
)

// stmt is one statement template. Every template behaves the same each
// time it runs in a session (IF NOT EXISTS, ON CONFLICT DO NOTHING, rows
// that match nothing), so that the model of the session stays exact.
type stmt struct {
	sql     string
	verdict verdict
	fail    failPoint
	tx      txEffect
	// copyIn is the data of a COPY FROM STDIN, sent after it in the same
	// write.
	copyIn []string
	// undo puts the worker's databases back before the next session.
	undo string
	// weight is how often the generator picks it.
	weight int
	// changesLockTimeout: the statement may change lock_timeout as it runs
	// (a DO block), and blocks how the statement locks; pgguard refuses a
	// statement that blocks writes behind one that may change lock_timeout
	// in the same Query or batch (policy.MayChangeLockTimeout).
	changesLockTimeout bool
	blocks             blocking
	// What it does to prepared statements: drops deallocates one, dropsAll
	// every one (DEALLOCATE ALL, DISCARD ALL), prepares makes one that
	// runs preparedAs.
	drops, prepares string
	dropsAll        bool
	preparedAs      *stmt
	// discards: DISCARD ALL, which also closes every cursor and cannot
	// run in a transaction block (implicit ones included).
	discards bool
	// rollback: a ROLLBACK (txEnd that ends the transaction by undoing it).
	rollback bool
	// cursor and cursorOp: what the statement does to an SQL cursor; a
	// DECLARE or a LOCK needs a transaction block (needsBlock).
	cursor     string
	cursorOp   cursorOp
	needsBlock bool
}

type cursorOp int

const (
	curNone cursorOp = iota
	curDeclare
	curDeclareHold
	curUse // FETCH or CLOSE: fails when the cursor does not exist
	curClose
)

type blocking int

const (
	blocksNothing blocking = iota
	blocksWrites
	// blocksUnlessAlone: rewritten to CONCURRENTLY when alone and idle,
	// which blocks no writes; blocks them anywhere else.
	blocksUnlessAlone
)

var (
	sSelect1     = &stmt{sql: "SELECT 1", weight: 6}
	sSelectCols  = &stmt{sql: "SELECT 'a' AS a, 2 AS b, NULL::text AS c", weight: 3}
	sSeries      = &stmt{sql: "SELECT g, 'row ' || g FROM generate_series(1, 5) g", weight: 4}
	sWideRow     = &stmt{sql: "SELECT repeat('x', 100000) AS wide, 1 AS one", weight: 3}
	sSmall       = &stmt{sql: "SELECT id, v FROM small ORDER BY id", weight: 3}
	sCountBig    = &stmt{sql: "SELECT count(*) FROM big", weight: 1}
	sBigFew      = &stmt{sql: "SELECT id, account, note FROM big WHERE id <= 3 ORDER BY id", weight: 2}
	sDivZero     = &stmt{sql: "SELECT 1/0", fail: fBind, weight: 2}
	sUnknown     = &stmt{sql: "SELECT * FROM no_such_table", fail: fParse, weight: 2}
	sFailMidRows = &stmt{sql: "SELECT 10/(g-3) FROM generate_series(1, 5) g", fail: fExec, weight: 2}
	sNotice      = &stmt{sql: "DO $$ BEGIN RAISE NOTICE 'hello from DO'; END $$", weight: 2, changesLockTimeout: true}
	sWideNotice  = &stmt{sql: "DO $$ BEGIN RAISE NOTICE 'wide %', repeat('n', 20000); END $$", weight: 2, changesLockTimeout: true}
	sSetAppName  = &stmt{sql: "SET application_name = 'wire-diff'", weight: 3}
	sSetPath     = &stmt{sql: "SET search_path = public", weight: 1}
	sSetLockOK   = &stmt{sql: "SET lock_timeout = '2s'", weight: 1}
	// A session that listens and notifies itself: the notification comes
	// when the notifying transaction commits, and must reach the client in
	// the server's order whatever pgguard asks around the statements.
	sListen      = &stmt{sql: "LISTEN wire_ch", weight: 1}
	sNotify      = &stmt{sql: "NOTIFY wire_ch, 'hello'", weight: 2}
	sInsertSmall = &stmt{sql: "INSERT INTO small VALUES (100, 'new') ON CONFLICT (id) DO NOTHING", undo: "DELETE FROM small WHERE id >= 100", weight: 2}
	sUpdSmallRet = &stmt{sql: "UPDATE small SET v = v || '!' WHERE id = 1 RETURNING id, v", undo: "UPDATE small SET v = 'v1' WHERE id = 1", weight: 2}
	sInsertT1    = &stmt{sql: "INSERT INTO t1 SELECT g, 'r' || g FROM generate_series(1, 3) g", undo: "DELETE FROM t1", weight: 2}
	sSelectT1    = &stmt{sql: "SELECT id, v FROM t1 ORDER BY id, v", weight: 2}
	sCreateT1    = &stmt{sql: "CREATE TABLE IF NOT EXISTS t1 (id bigint, v text)", weight: 3}
	sCreateNew   = &stmt{sql: "CREATE TABLE IF NOT EXISTS tnew (id bigint PRIMARY KEY, v text)", undo: "DROP TABLE IF EXISTS tnew", weight: 3}
	sCreateInt   = &stmt{sql: "CREATE TABLE IF NOT EXISTS tint (id int PRIMARY KEY)", undo: "DROP TABLE IF EXISTS tint", weight: 2}
	sAddColumn   = &stmt{sql: "ALTER TABLE t1 ADD COLUMN IF NOT EXISTS extra text", undo: "ALTER TABLE t1 DROP COLUMN IF EXISTS extra", weight: 2, blocks: blocksWrites}
	// Large-dml estimates ~300k rows for these (the planner cannot see
	// that every note is 32 characters long), so pgguard warns, yet they
	// change one row or none.
	sUpdBigRet = &stmt{sql: "UPDATE big SET account = account WHERE length(note) <> 32 OR id = 7 RETURNING id, account", weight: 2}
	sUpdBig    = &stmt{sql: "UPDATE big SET account = account WHERE length(note) <> 32", weight: 1}
	sDelBig    = &stmt{sql: "DELETE FROM big WHERE length(note) <> 32", weight: 1}
	// Its estimate (an EXPLAIN of pgguard's own, in a savepoint inside a
	// transaction block) fails like the statement itself.
	sUpdBigBad = &stmt{sql: "UPDATE big SET account = no_such_column WHERE length(note) <> 32", fail: fParse, weight: 1}
	sDropIndex = &stmt{sql: "DROP INDEX IF EXISTS big_account_i", weight: 1, blocks: blocksUnlessAlone}
	sBegin     = &stmt{sql: "BEGIN", tx: txBegin, weight: 3}
	sCommit    = &stmt{sql: "COMMIT", tx: txEnd, weight: 2}
	sRollback  = &stmt{sql: "ROLLBACK", tx: txEnd, rollback: true, weight: 2}
	sCopyIn    = &stmt{sql: "COPY t1 (id, v) FROM STDIN", copyIn: []string{"1\tcopied\n", "2\t\\N\n"}, undo: "DELETE FROM t1", weight: 2}
	sCopyBad   = &stmt{sql: "COPY t1 (id, v) FROM STDIN", copyIn: []string{"3\tfine\n", "not-a-number\tbad\n"}, fail: fExec, undo: "DELETE FROM t1", weight: 1}
	sCopyOut   = &stmt{sql: "COPY (SELECT g, repeat('y', 30000) FROM generate_series(1, 3) g) TO STDOUT", weight: 2}

	sAlterType   = &stmt{sql: "ALTER TABLE big ALTER COLUMN account TYPE bigint", verdict: vRefused, weight: 2}
	sVolatileDef = &stmt{sql: "ALTER TABLE big ADD COLUMN c2 float8 DEFAULT random()", verdict: vRefused, weight: 1}
	sVacuumFull  = &stmt{sql: "VACUUM FULL big", verdict: vRefused, weight: 1}
	sTruncate    = &stmt{sql: "TRUNCATE big", verdict: vRefused, weight: 1}
	sDropTable   = &stmt{sql: "DROP TABLE small", verdict: vRefused, weight: 1}
	sRename      = &stmt{sql: "ALTER TABLE big RENAME COLUMN note TO memo", verdict: vRefused, weight: 1}
	// Allowed under lock_timeout_scope ddl (the session's own business);
	// a statement that blocks writes after it in the same Query or batch
	// is refused.
	sLockZero = &stmt{sql: "SET lock_timeout = 0", weight: 1, changesLockTimeout: true}

	// Slow enough that a client's Terminate behind it arrives first.
	sSleep = &stmt{sql: "SELECT pg_sleep(0.3)"}

	// Prepared statements through SQL, in the regression cases.
	s42          = &stmt{sql: "SELECT 42"}
	sDeallocate  = &stmt{sql: "DEALLOCATE s1", drops: "s1"}
	sDeallocAll  = &stmt{sql: "DEALLOCATE ALL", dropsAll: true}
	sDiscardAll  = &stmt{sql: "DISCARD ALL", dropsAll: true, discards: true}
	sPrepare42   = &stmt{sql: "PREPARE s1 AS SELECT 42", prepares: "s1", preparedAs: s42}
	sDeallocBoth = &stmt{sql: "DEALLOCATE s1; PREPARE s1 AS SELECT 42", drops: "s1", prepares: "s1", preparedAs: s42}

	// lock_timeout's source mid-block, and the ways a SET of it is undone
	// (or kept past its block), in the regression cases.
	sLtSource     = &stmt{sql: "SELECT current_setting('lock_timeout') AS lock_timeout, source FROM pg_settings WHERE name = 'lock_timeout'"}
	sSavepointA   = &stmt{sql: "SAVEPOINT a"}
	sRollbackToA  = &stmt{sql: "ROLLBACK TO SAVEPOINT a"}
	sReleaseA     = &stmt{sql: "RELEASE SAVEPOINT a"}
	sSetLocalZero = &stmt{sql: "SET LOCAL lock_timeout = 0", changesLockTimeout: true}

	// A partial index: the build still scans big but sorts little.
	sIndexBig = &stmt{sql: "CREATE INDEX IF NOT EXISTS big_account_i ON big (account) WHERE id <= 1000", verdict: vIndexBig, undo: "DROP INDEX IF EXISTS big_account_i", weight: 3}
)

// Transactions that read after a LOCK, cursors, and what a transaction
// leaves on the rows it writes (cmin, whether xmin is its own xid): a
// query of pgguard's own inside the transaction would show in them.
var (
	sIsoRR   = &stmt{sql: "SET default_transaction_isolation = 'repeatable read'", weight: 1}
	sIsoSer  = &stmt{sql: "SET default_transaction_isolation = 'serializable'", weight: 1}
	sIsoRC   = &stmt{sql: "SET default_transaction_isolation = 'read committed'", weight: 1}
	sBeginRR = &stmt{sql: "BEGIN ISOLATION LEVEL REPEATABLE READ", tx: txBegin}
	sBeginSe = &stmt{sql: "BEGIN ISOLATION LEVEL SERIALIZABLE", tx: txBegin}
	// LOCK TABLE takes no snapshot: a REPEATABLE READ transaction that
	// reads after it sees what committed while it waited.
	sLockShare = &stmt{sql: "LOCK TABLE small IN SHARE MODE", needsBlock: true, blocks: blocksWrites, weight: 1}
	sLockExcl  = &stmt{sql: "LOCK TABLE small", needsBlock: true, blocks: blocksWrites, weight: 1}
	sReadPeer  = &stmt{sql: "SELECT id, v FROM small WHERE id = 2", weight: 1}
	sCmin      = &stmt{sql: "SELECT id, v, cmin, xmin = pg_current_xact_id_if_assigned()::xid AS mine FROM t1 ORDER BY id, v, mine, cmin::text::int", weight: 2}
	sTxInfo    = &stmt{sql: "SELECT pg_current_xact_id_if_assigned() IS NOT NULL AS has_xid, current_setting('transaction_isolation') AS iso, current_setting('statement_timeout') AS st", weight: 1}
	sDeclare   = &stmt{sql: "DECLARE wc CURSOR FOR SELECT g FROM generate_series(1, 5) g", cursor: "wc", cursorOp: curDeclare, needsBlock: true, weight: 2}
	sDeclHold  = &stmt{sql: "DECLARE wh CURSOR WITH HOLD FOR SELECT id, v FROM small ORDER BY id", cursor: "wh", cursorOp: curDeclareHold, weight: 2}
	sFetchC    = &stmt{sql: "FETCH 2 FROM wc", cursor: "wc", cursorOp: curUse, weight: 2}
	sFetchH    = &stmt{sql: "FETCH 2 FROM wh", cursor: "wh", cursorOp: curUse, weight: 2}
	sCloseC    = &stmt{sql: "CLOSE wc", cursor: "wc", cursorOp: curClose, weight: 1}
	sCloseH    = &stmt{sql: "CLOSE wh", cursor: "wh", cursorOp: curClose, weight: 1}
)

// pool is every template the generator draws from.
var pool = []*stmt{
	sSelect1, sSelectCols, sSeries, sWideRow, sSmall, sCountBig, sBigFew, sDivZero, sUnknown, sFailMidRows,
	sNotice, sWideNotice, sSetAppName, sSetPath, sSetLockOK, sListen, sNotify, sInsertSmall, sUpdSmallRet, sInsertT1, sSelectT1,
	sCreateT1, sCreateNew, sCreateInt, sAddColumn, sUpdBigRet, sUpdBig, sDelBig, sUpdBigBad, sDropIndex,
	sBegin, sCommit, sRollback, sCopyIn, sCopyBad, sCopyOut,
	sAlterType, sVolatileDef, sVacuumFull, sTruncate, sDropTable, sRename, sLockZero, sIndexBig,
	sIsoRR, sIsoSer, sIsoRC, sLockShare, sLockExcl, sCmin, sTxInfo,
	sDeclare, sDeclHold, sFetchC, sFetchH, sCloseC, sCloseH,
}
