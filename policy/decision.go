package policy

// Action is what happens to a statement.
type Action int

// Actions, in increasing order of severity; a Decision's Action is the most
// severe of its findings' actions.
const (
	Allow Action = iota
	Warn
	Rewrite
	Reject
)

func (a Action) String() string {
	switch a {
	case Allow:
		return "allow"
	case Warn:
		return "warn"
	case Rewrite:
		return "rewrite"
	case Reject:
		return "reject"
	}
	return "unknown"
}

// Finding is one rule that matched a statement.
type Finding struct {
	RuleID string
	// Action is what the policy says for this rule (after mode, profile and
	// escape-hatch annotations are applied).
	Action Action
	// Message states the problem in one sentence: which table, which lock,
	// why it matters.
	Message string
	// Detail adds the facts behind the message (size estimate, version).
	Detail string
	// Hint is the safe recipe, as runnable SQL where there is one.
	Hint string
	// Table is the (possibly qualified) table the statement touches.
	Table string
	// Lock is the lock the original statement takes, e.g. "ACCESS EXCLUSIVE".
	Lock string
	// AllowedBy is the escape-hatch reason when an annotation allowed this
	// rule; the Action is then Allow.
	AllowedBy string
}

// Decision is the engine's verdict on one statement.
type Decision struct {
	// Action is the most severe action among Findings (Allow when none).
	Action Action
	// Findings lists every rule that matched, in registry order.
	Findings []Finding
	// Rewritten is the SQL to run instead when Action is Rewrite.
	Rewritten string
	// Lock is the lock the original statement would take ("" when unknown
	// or none worth naming).
	Lock string
	// DDL is true for utility statements (anything that is not
	// SELECT/INSERT/UPDATE/DELETE/MERGE/VALUES/TABLE), except transaction
	// control, session commands (SET/SHOW/RESET/DISCARD), cursors, prepared
	// statements, LISTEN/NOTIFY, COPY, CALL and EXPLAIN, which are not DDL
	// either; SELECT ... INTO is DDL (it creates a table). IsDDL gives the
	// same answer without a parse, except for SELECT ... INTO.
	DDL bool
	// Concurrent is true when the statement (as run, after any rewrite) is a
	// CONCURRENTLY operation, which takes only SHARE UPDATE EXCLUSIVE and
	// needs no short lock_timeout.
	Concurrent bool
	// CreatesTables lists the tables this statement creates (CREATE TABLE,
	// CREATE TABLE AS, SELECT INTO), so that the caller can remember them
	// for the rest of the transaction once the statement succeeds.
	CreatesTables []string
	// MovesTables lists the relations this statement drops, renames or
	// moves to another schema, so that a name created in the
	// transaction is no longer taken for a new table once it succeeds.
	MovesTables []TableMove
	// Retryable is true when the statement is one transactional statement
	// that runs no user code (plain DDL, not DO, CALL, a function call or a
	// CONCURRENTLY operation): when it fails in autocommit, nothing it did
	// remains, so it may be sent again.
	Retryable bool
	// AddsNotValid lists the constraints this statement adds NOT VALID, so
	// that the caller can remember them for the rest of the transaction
	// (Context.NotValidConstraints) once the statement succeeds.
	AddsNotValid []NotValidConstraint
	// LocksExclusive lists the tables this statement takes an ACCESS
	// EXCLUSIVE lock on, which the transaction keeps until it ends
	// (Context.ExclusiveTables) once the statement succeeds.
	LocksExclusive []Table
	// TableLocks lists the tables the statement names with the lock it
	// takes on each (its main table, and the table a FOREIGN KEY it adds
	// references), as PostgreSQL takes them; nothing for a CONCURRENTLY
	// operation. The proxy looks at the lock queue of each before it sends
	// a statement that takes a lock blocking writes.
	TableLocks []TableLock
	// LocksUnnamedExclusive is true when the statement also takes ACCESS
	// EXCLUSIVE locks on relations it does not name (partitions, a dropped
	// index's table, tables a view reads): only the server can list them.
	LocksUnnamedExclusive bool
	// ChangesLockTimeout, when set, says how code the statement runs
	// without naming it (a function it calls, a view's, a trigger's or a
	// column DEFAULT's, to any depth) may change lock_timeout as it runs,
	// or why pgguard cannot tell that it does not (UserCodeCatalog). Set
	// for the statements before a DDL statement of the same Query, and
	// for one whose DDL is in what it calls.
	ChangesLockTimeout string
	// Savepoint is the statement's SAVEPOINT, RELEASE or ROLLBACK TO, which
	// the memory of the transaction follows.
	Savepoint *SavepointOp
}
