package policy

import "context"

// Context is what the engine knows about the session a statement arrives on.
// The proxy fills it from the wire (transaction status, ParameterStatus, the
// startup message); lint fills it from flags.
type Context struct {
	// InTransaction is true inside an explicit transaction block (the last
	// ReadyForQuery said 'T' or 'E').
	InTransaction bool
	// Alone is true when the statement is the only one in its Query string, or
	// in the extended protocol the only statement before its Sync. A statement
	// that is not alone runs in an implicit transaction.
	Alone bool
	// CreatedTables reports whether a table was created in the open
	// transaction (or earlier in the same lint file); such tables are empty
	// and invisible to others, so size rules do not apply. May be nil.
	CreatedTables func(schema, table string) bool
	// NotValidConstraints reports whether a constraint was added NOT VALID
	// in the open transaction (Decision.AddsNotValid of earlier statements),
	// and the lock that ADD took, which the transaction still holds. May
	// be nil. Rule validate-in-same-transaction uses it.
	NotValidConstraints func(t Table, constraint string) (lock string, ok bool)
	// ExclusiveTables reports whether the open transaction holds an ACCESS
	// EXCLUSIVE lock on a table (Decision.LocksExclusive of earlier
	// statements); with an empty table name, whether it holds any (also
	// on relations no statement named, Decision.LocksUnnamedExclusive).
	// May be nil. Rule large-dml refuses changing the rows of such a
	// table; where the catalog is a LockCatalog, the server has the last
	// word.
	ExclusiveTables func(schema, table string) bool
	// Remembers reports whether the open transaction's memory holds
	// anything (tables created, NOT VALID constraints, ACCESS EXCLUSIVE
	// locks): its SAVEPOINT, RELEASE and ROLLBACK TO are then parsed, so
	// that the memory can follow them (Decision.Savepoint). May be nil.
	Remembers func() bool
	// NamesMoved is true when an earlier statement of the same Query or
	// batch was DDL, which the catalog's answers predate: which relation a
	// name means, and whether it exists, may have changed since, so the
	// engine does not resolve names with the catalog.
	NamesMoved bool
	// ServerVersion is server_version_num, e.g. 150018; 0 means unknown
	// (the engine then assumes the configured default version).
	ServerVersion int
	// TimeZone is the session's TimeZone as reported by the server.
	TimeZone string
	// User, Database and ApplicationName come from the startup message.
	User            string
	Database        string
	ApplicationName string
	// Catalog answers questions about existing objects. Nil means unknown:
	// existing tables are then assumed to be large.
	Catalog Catalog
	// Tool is the migration tool behind the session, as far as the proxy
	// knows it (ToolSense over the session's statements, else
	// ToolFromApplicationName); refusals give their fix in its terms.
	// ToolUnknown gives plain SQL.
	Tool Tool
	// BackslashQuote is true when the session's standard_conforming_strings
	// is off (the server reports it): a backslash then escapes a quote in
	// '...', and statements split where the server splits them. Decide
	// and DecideQuery then judge, and rewrite, StandardText of the text:
	// their Statement.Text is that text.
	BackslashQuote bool
	// Profile, when set, names the rules.yaml profile to apply instead of
	// the first one that matches (proxy.targets[].profile).
	Profile string
	// Migration is true for a migration's session: the proxy knows the
	// tool (its ledger, application_name), has seen the session run DDL,
	// or a profile with migration: true matches it; lint always sets it.
	// Rule large-dml then takes no WHERE for a key unless a unique index
	// says so, and trusts no estimate that statistics cannot back. Other
	// sessions (the application's) keep the fast path: a statement that
	// picks rows by equality is not estimated.
	Migration bool
	// QueryHasDDL is true for the statements of a Query that holds DDL:
	// the functions they call are read as a migration's are (judgeCalled).
	QueryHasDDL bool
	// Unestimable, when set, says why this statement cannot be estimated
	// although the session has a catalog: it comes after a statement that
	// may change the search_path in the same Query, or behind other
	// messages of its extended-protocol batch (the catalog is then nil),
	// or its bound parameters cannot be read. In a migration's session
	// rule large-dml refuses what it would have estimated, saying so.
	Unestimable string
	// BatchPrepared, when set, returns the statement that an earlier
	// message of the same unsynced extended-protocol batch prepares under
	// name: a named Parse's text, or a PREPARE's whole text. The server
	// runs them before the message at hand, but pg_prepared_statements
	// cannot show them yet, so an EXECUTE of that name is judged with it
	// (execute.go).
	BatchPrepared func(name string) (statement string, ok bool)
	// prepared returns the PREPARE an earlier statement of the same
	// Query made of a name (DecideQuery sets it).
	prepared func(name string) (string, bool)
	// beforeDDL: a DDL statement follows in the same Query, which
	// pgguard's lock_timeout is set for before the Query runs
	// (Decision.ChangesLockTimeout); userCode keeps the Query's answers.
	beforeDDL bool
	userCode  map[string]string
}

// Volatility of a function, as pg_proc.provolatile says it.
type Volatility byte

// Function volatilities.
const (
	VolatilityUnknown   Volatility = 0
	VolatilityImmutable Volatility = 'i'
	VolatilityStable    Volatility = 's'
	VolatilityVolatile  Volatility = 'v'
)

// TableSize is the planner's estimate of a table's size.
type TableSize struct {
	Rows  int64 // pg_class.reltuples (or 0 when never analyzed and empty)
	Bytes int64 // pg_total_relation_size
	// From says where the size came from when it is not the session's own
	// database's: another target's or an exported file's, e.g.
	// "production (sizes as of 2026-12-07 10:42 UTC)". "" for the own.
	From string
}

// SizeProvenance is an optional extension of Catalog that answers size
// questions with another database's sizes (pgguard sizes export, a
// target's sizes_from): it says where the sizes of table came from, ""
// when from the session's own database. Rule large-dml names it beside a
// row estimate.
type SizeProvenance interface {
	SizesFrom(ctx context.Context, table string) string
}

// Catalog is an optional view of the server's catalog. Every method returns
// ok=false when it cannot answer (no such object, or the lookup failed); the
// engine then takes the cautious assumption. Names may be schema-qualified
// ("schema.name") or not; unqualified names follow the search_path. The
// engine passes names as SQL writes them, quoted where needed
// (public."JournalLine"), so that name::regclass resolves them.
type Catalog interface {
	// TableSize reports the estimated size of a table.
	TableSize(ctx context.Context, table string) (size TableSize, ok bool)
	// HasValidatedNotNullCheck reports whether SET NOT NULL on column can skip
	// its scan: a validated CHECK (column IS NOT NULL) constraint exists on
	// table (PG12+), or the column is NOT NULL already (an ORM's changeColumn
	// repeats SET NOT NULL on every change; PostgreSQL then does nothing).
	HasValidatedNotNullCheck(ctx context.Context, table, column string) (has bool, ok bool)
	// IsPartitioned reports whether table is a partitioned table.
	IsPartitioned(ctx context.Context, table string) (partitioned bool, ok bool)
	// Index reports whether an index named name exists and whether it is valid.
	Index(ctx context.Context, name string) (exists, valid bool, ok bool)
	// HasUniqueIndex reports whether a materialized view has a unique index
	// (needed by REFRESH MATERIALIZED VIEW CONCURRENTLY).
	HasUniqueIndex(ctx context.Context, table string) (has bool, ok bool)
	// FunctionVolatility reports the volatility of a function by name.
	FunctionVolatility(ctx context.Context, name string) (v Volatility, ok bool)
	// EstimateRows reports the planner's row estimate for a DML statement
	// or a SELECT (EXPLAIN, never EXECUTE), for the large-UPDATE/DELETE rule.
	EstimateRows(ctx context.Context, sql string) (rows int64, ok bool)
}

// KeyCatalog is an optional extension of Catalog: the unique keys of a
// table, for rule large-dml, which takes an equality for a key only when
// one covers it.
type KeyCatalog interface {
	// UniqueKeys lists the column sets of table's valid, non-partial
	// unique indexes over plain columns (the primary key included).
	UniqueKeys(ctx context.Context, table string) (keys [][]string, ok bool)
}

// RowCounter is an optional extension of Catalog for rule large-dml: it
// tells statistics that cannot back an estimate, and counts exactly, up
// to a bound, when they cannot.
type RowCounter interface {
	// StaleStatistics reports why table's statistics (or those of one of
	// its partitions) cannot be trusted: never analyzed while holding
	// rows, modified much since the last ANALYZE, or much larger on disk
	// than when analyzed; "" when they can.
	StaleStatistics(ctx context.Context, table string) (why string, ok bool)
	// CountRows counts the rows of a SELECT, up to limit: it reads at most
	// limit rows of its result (a SELECT count(*) over it with LIMIT).
	CountRows(ctx context.Context, sql string, limit int64) (rows int64, ok bool)
}

// PartitionCatalog is an optional Catalog extension that lets
// attach-partition spell out the CHECK constraint matching a partition
// bound and see whether the partition already has one.
type PartitionCatalog interface {
	// PartitionKey returns a partitioned table's strategy ("range",
	// "list" or "hash") and key columns ("" for an expression).
	PartitionKey(ctx context.Context, table string) (strategy string, columns []string, ok bool)
	// HasValidatedCheckOn reports whether table has a validated CHECK
	// constraint that references every one of columns.
	HasValidatedCheckOn(ctx context.Context, table string, columns []string) (has bool, ok bool)
}

// MatViewPopulater is an optional Catalog extension that says whether a
// materialized view holds data (pg_class.relispopulated): REFRESH ...
// CONCURRENTLY fails on a view created WITH NO DATA.
type MatViewPopulater interface {
	MatViewPopulated(ctx context.Context, matview string) (populated, ok bool)
}
