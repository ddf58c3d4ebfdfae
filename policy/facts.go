package policy

import (
	"slices"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// facts are what the engine reports about any parsed statement, whatever
// the rules say.
type facts struct {
	lock       string // strongest lock on the main table
	concurrent bool
	ddl        bool
	creates    []string
	// retryable: one transactional statement, so a failure rolls back all
	// it did (see Decision.Retryable).
	retryable bool
}

// statementFacts works out the lock, CONCURRENTLY and created tables of a
// statement. Locks follow the PostgreSQL documentation (Explicit Locking
// and each command's page) for the statement's main table.
func statementFacts(n *pg_query.Node) facts {
	var f facts
	f.ddl = true
	switch s := n.GetNode().(type) {
	case *pg_query.Node_SelectStmt:
		f.ddl = false
		f.lock = LockAccessShare
		for _, q := range WithQueries(n) {
			if q.GetUpdateStmt() != nil || q.GetDeleteStmt() != nil || q.GetInsertStmt() != nil || q.GetMergeStmt() != nil {
				f.lock = LockRowExclusive // a data-modifying WITH query
			}
		}
		if ic := s.SelectStmt.GetIntoClause(); ic != nil && ic.Rel != nil {
			f.ddl = true
			f.creates = append(f.creates, createdTable(ic.Rel).String())
		}
	case *pg_query.Node_InsertStmt, *pg_query.Node_UpdateStmt, *pg_query.Node_DeleteStmt, *pg_query.Node_MergeStmt:
		f.ddl = false
		f.lock = LockRowExclusive
	case *pg_query.Node_ExplainStmt, *pg_query.Node_TransactionStmt, *pg_query.Node_VariableSetStmt,
		*pg_query.Node_VariableShowStmt, *pg_query.Node_CopyStmt, *pg_query.Node_CallStmt,
		*pg_query.Node_PrepareStmt, *pg_query.Node_ExecuteStmt, *pg_query.Node_DeallocateStmt,
		*pg_query.Node_DiscardStmt, *pg_query.Node_ListenStmt, *pg_query.Node_UnlistenStmt,
		*pg_query.Node_NotifyStmt, *pg_query.Node_DeclareCursorStmt, *pg_query.Node_FetchStmt,
		*pg_query.Node_ClosePortalStmt:
		f.ddl = false
	case *pg_query.Node_CreateStmt:
		f.creates = append(f.creates, createdTable(s.CreateStmt.Relation).String())
		switch {
		case s.CreateStmt.Partbound != nil:
			// On the parent, and on its DEFAULT partition, which PostgreSQL
			// scans for rows that belong in the new one.
			f.lock = LockAccessExclusive
		case len(s.CreateStmt.InhRelations) > 0:
			f.lock = LockShareUpdateExclusive // on the parent
		}
	case *pg_query.Node_CreateTableAsStmt:
		if into := s.CreateTableAsStmt.Into; into != nil && into.Rel != nil {
			f.creates = append(f.creates, createdTable(into.Rel).String())
		}
	case *pg_query.Node_IndexStmt:
		f.lock, f.concurrent = LockShare, s.IndexStmt.Concurrent
		if f.concurrent {
			f.lock = LockShareUpdateExclusive
		}
	case *pg_query.Node_ReindexStmt:
		f.lock = LockShare
		for _, p := range s.ReindexStmt.Params {
			if p.GetDefElem().GetDefname() == "concurrently" {
				f.lock, f.concurrent = LockShareUpdateExclusive, true
			}
		}
	case *pg_query.Node_DropStmt:
		f.lock = LockAccessExclusive
		if s.DropStmt.Concurrent {
			f.lock, f.concurrent = LockShareUpdateExclusive, true
		}
	case *pg_query.Node_RefreshMatViewStmt:
		f.lock = LockAccessExclusive
		if s.RefreshMatViewStmt.Concurrent {
			f.lock, f.concurrent = LockExclusive, true
		}
	case *pg_query.Node_AlterTableStmt:
		for _, c := range s.AlterTableStmt.Cmds {
			cmd := c.GetAlterTableCmd()
			if cmd == nil {
				continue
			}
			l := alterTableLock(cmd)
			if cmd.Subtype == pg_query.AlterTableType_AT_DetachPartition {
				if pc := cmd.GetDef().GetPartitionCmd(); pc != nil && pc.Concurrent {
					f.concurrent = true
				}
			}
			f.lock = strongerLock(f.lock, l)
		}
	case *pg_query.Node_RenameStmt, *pg_query.Node_TruncateStmt, *pg_query.Node_ClusterStmt:
		f.lock = LockAccessExclusive
	case *pg_query.Node_VacuumStmt:
		f.lock = LockShareUpdateExclusive
		for _, o := range s.VacuumStmt.Options {
			if o.GetDefElem().GetDefname() == "full" {
				f.lock = LockAccessExclusive
			}
		}
	case *pg_query.Node_CreateTrigStmt:
		f.lock = LockShareRowExclusive
	case *pg_query.Node_RuleStmt, *pg_query.Node_CreatePolicyStmt, *pg_query.Node_AlterPolicyStmt:
		f.lock = LockAccessExclusive
	case *pg_query.Node_AlterObjectSchemaStmt:
		switch s.AlterObjectSchemaStmt.ObjectType {
		case pg_query.ObjectType_OBJECT_TABLE, pg_query.ObjectType_OBJECT_VIEW, pg_query.ObjectType_OBJECT_MATVIEW,
			pg_query.ObjectType_OBJECT_SEQUENCE, pg_query.ObjectType_OBJECT_FOREIGN_TABLE:
			f.lock = LockAccessExclusive
		}
	case *pg_query.Node_ViewStmt:
		if s.ViewStmt.Replace {
			// On the view it replaces, if there is one (DefineView).
			f.lock = LockAccessExclusive
		}
	case *pg_query.Node_AlterSeqStmt:
		// Conflicts with the ROW EXCLUSIVE nextval() takes until its
		// transaction ends (AlterSequence).
		f.lock = LockShareRowExclusive
	case *pg_query.Node_CommentStmt, *pg_query.Node_CreateStatsStmt:
		f.lock = LockShareUpdateExclusive
	case *pg_query.Node_LockStmt:
		f.lock = lockStmtMode(s.LockStmt.Mode)
	case *pg_query.Node_AlterDomainStmt:
		// ADD CONSTRAINT (without NOT VALID), SET NOT NULL and VALIDATE
		// CONSTRAINT check every row of every table with a column of the
		// domain, holding SHARE on each (validateDomainConstraint,
		// AlterDomainNotNull); the other forms lock no table.
		switch s.AlterDomainStmt.Subtype {
		case "O", "V":
			f.lock = LockShare
		case "C":
			if !s.AlterDomainStmt.GetDef().GetConstraint().GetSkipValidation() {
				f.lock = LockShare
			}
		}
	}
	f.retryable = retryableStatement(n) && !f.concurrent
	return f
}

// retryableStatement reports whether n is a statement whose failure undoes
// everything it did: plain transactional DDL that runs no user code of its
// own. Not DO, CALL, SELECT or anything that runs functions which may
// commit, call out (dblink) or advance sequences; not VACUUM, CLUSTER of a
// whole database or a CONCURRENTLY operation, which commit as they go.
func retryableStatement(n *pg_query.Node) bool {
	switch s := n.GetNode().(type) {
	case *pg_query.Node_AlterTableStmt, *pg_query.Node_IndexStmt, *pg_query.Node_RenameStmt,
		*pg_query.Node_TruncateStmt, *pg_query.Node_CreateTrigStmt, *pg_query.Node_CreateStmt,
		*pg_query.Node_CommentStmt, *pg_query.Node_GrantStmt, *pg_query.Node_LockStmt,
		*pg_query.Node_RefreshMatViewStmt, *pg_query.Node_ReindexStmt, *pg_query.Node_DropStmt:
		return true
	case *pg_query.Node_ClusterStmt:
		return s.ClusterStmt.Relation != nil
	}
	return false
}

// exclusiveTables returns the tables an ACCESS EXCLUSIVE statement locks
// and that stay (ALTER TABLE, LOCK ... IN ACCESS EXCLUSIVE MODE, TRUNCATE,
// RENAME of a table or column), for Decision.LocksExclusive.
func exclusiveTables(n *pg_query.Node) []Table {
	var out []Table
	switch s := n.GetNode().(type) {
	case *pg_query.Node_AlterTableStmt:
		out = append(out, TableOf(s.AlterTableStmt.Relation))
	case *pg_query.Node_LockStmt:
		for _, r := range s.LockStmt.Relations {
			out = append(out, TableOf(r.GetRangeVar()))
		}
	case *pg_query.Node_TruncateStmt:
		for _, r := range s.TruncateStmt.Relations {
			out = append(out, TableOf(r.GetRangeVar()))
		}
	case *pg_query.Node_RenameStmt:
		if s.RenameStmt.Relation != nil && s.RenameStmt.RenameType != pg_query.ObjectType_OBJECT_TABLE {
			out = append(out, TableOf(s.RenameStmt.Relation)) // a renamed table is known by its new name
		}
	case *pg_query.Node_RuleStmt:
		out = append(out, TableOf(s.RuleStmt.Relation))
	case *pg_query.Node_CreatePolicyStmt:
		out = append(out, TableOf(s.CreatePolicyStmt.Table))
	case *pg_query.Node_AlterPolicyStmt:
		out = append(out, TableOf(s.AlterPolicyStmt.Table))
	case *pg_query.Node_CreateStmt:
		// PARTITION OF: the parent (statementFacts gives the lock only then).
		for _, r := range s.CreateStmt.InhRelations {
			out = append(out, TableOf(r.GetRangeVar()))
		}
	}
	return out
}

// alterTableLock is the lock one ALTER TABLE subcommand takes.
func alterTableLock(cmd *pg_query.AlterTableCmd) string {
	switch cmd.Subtype {
	case pg_query.AlterTableType_AT_SetRelOptions, pg_query.AlterTableType_AT_ResetRelOptions:
		// Most storage parameters take SHARE UPDATE EXCLUSIVE; these take
		// ACCESS EXCLUSIVE (PostgreSQL 15's reloptions.c, whose
		// AlterTableGetRelOptionsLockLevel goes by the name alone).
		for _, o := range cmd.GetDef().GetList().GetItems() {
			switch o.GetDefElem().GetDefname() {
			case "security_barrier", "security_invoker", "check_option", "user_catalog_table", "buffering":
				return LockAccessExclusive
			}
		}
		return LockShareUpdateExclusive
	case pg_query.AlterTableType_AT_SetStatistics, pg_query.AlterTableType_AT_ValidateConstraint,
		pg_query.AlterTableType_AT_ClusterOn, pg_query.AlterTableType_AT_DropCluster,
		pg_query.AlterTableType_AT_AttachPartition:
		return LockShareUpdateExclusive
	case pg_query.AlterTableType_AT_DetachPartition:
		if pc := cmd.GetDef().GetPartitionCmd(); pc != nil && pc.Concurrent {
			return LockShareUpdateExclusive
		}
	case pg_query.AlterTableType_AT_EnableTrig, pg_query.AlterTableType_AT_DisableTrig,
		pg_query.AlterTableType_AT_EnableAlwaysTrig, pg_query.AlterTableType_AT_EnableReplicaTrig,
		pg_query.AlterTableType_AT_EnableTrigAll, pg_query.AlterTableType_AT_DisableTrigAll,
		pg_query.AlterTableType_AT_EnableTrigUser, pg_query.AlterTableType_AT_DisableTrigUser:
		return LockShareRowExclusive
	case pg_query.AlterTableType_AT_AddConstraint:
		if c := cmd.GetDef().GetConstraint(); c != nil && c.Contype == pg_query.ConstrType_CONSTR_FOREIGN {
			return LockShareRowExclusive
		}
	}
	return LockAccessExclusive
}

func lockStmtMode(mode int32) string {
	// LockStmt.Mode is the lock mode number: 1 = AccessShareLock ... 8.
	if mode >= 1 && int(mode) <= len(lockOrder) {
		return lockOrder[mode-1]
	}
	return LockAccessExclusive
}

// createdTable names the table a CREATE makes: a temporary table lives in
// the session's pg_temp schema, whatever the search_path, so that a later
// public.big is not mistaken for the temporary big.
func createdTable(rv *pg_query.RangeVar) Table {
	t := TableOf(rv)
	if rv != nil && rv.Relpersistence == "t" && t.Schema == "" {
		t.Schema = "pg_temp"
	}
	return t
}

// TableLock is a table a statement names and the lock it takes on it, or,
// with Via, the relations the statement locks through the one it names
// (the table of an index, the tables of its foreign keys, its sequences),
// which only the catalog can list (RelationsSQL).
type TableLock struct {
	Table Table
	Mode  string
	// Via says how the locked relations follow from Table: ViaNamed
	// (Table itself), ViaIndexTable, ViaReferenced, ViaReferencing,
	// ViaReferencingAll or ViaOwnedSequences.
	Via string
	// Constraint and Column narrow the foreign keys and sequences Via
	// follows to those of one constraint (DROP CONSTRAINT) or one column
	// (DROP COLUMN, ALTER COLUMN TYPE) of Table.
	Constraint, Column string
	// Args are the argument types of the function Table names for
	// ViaFunctionCascade, in parentheses as the DROP wrote them; "" when
	// it wrote none (the name alone is the function).
	Args string
}

// Same reports whether tl and o lock the same relations (their modes
// aside).
func (tl TableLock) Same(o TableLock) bool {
	return tl.Table == o.Table && tl.Via == o.Via && tl.Constraint == o.Constraint && tl.Column == o.Column && tl.Args == o.Args
}

// The ways a statement locks a relation it does not name.
const (
	ViaNamed = ""
	// ViaIndexTable: the table of the index Table (DROP INDEX, REINDEX
	// INDEX).
	ViaIndexTable = "index-table"
	// ViaReferenced: the tables that Table's foreign keys reference
	// (DROP TABLE, DROP CONSTRAINT of a foreign key, DROP COLUMN or ALTER
	// COLUMN TYPE of a referencing column).
	ViaReferenced = "referenced"
	// ViaReferencing: the tables whose foreign keys reference Table (a
	// DROP ... CASCADE that drops those keys, ALTER COLUMN TYPE of a
	// referenced column).
	ViaReferencing = "referencing"
	// ViaReferencingAll: ViaReferencing, and the tables referencing
	// those, to the end (TRUNCATE ... CASCADE).
	ViaReferencingAll = "referencing-all"
	// ViaOwnedSequences: the sequences owned by Table's columns, dropped
	// with it (DROP TABLE, DROP COLUMN).
	ViaOwnedSequences = "owned-sequences"
	// ViaDefaultPartition: the DEFAULT partition of the partitioned
	// table Table, which ATTACH and DETACH PARTITION lock.
	ViaDefaultPartition = "default-partition"
	// ViaPartitionParent: the partitioned table Table is a partition
	// of, which DROP TABLE of a partition locks ACCESS EXCLUSIVE
	// (PostgreSQL 12+, RangeVarCallbackForDropRelation).
	ViaPartitionParent = "partition-parent"
	// ViaViewTables: the relations of the query of the view Table, and
	// of the views among them, to the end, which LOCK TABLE of a view
	// locks with its mode (PostgreSQL 11+, LockViewRecurse).
	ViaViewTables = "view-tables"
	// ViaDomainTables: Table names a domain (not a relation); the tables
	// with a column of it, or of a domain over it, which ALTER DOMAIN
	// ... ADD CONSTRAINT, VALIDATE CONSTRAINT and SET NOT NULL lock SHARE.
	ViaDomainTables = "domain-tables"
	// ViaSchemaRelations: Table names a schema (not a relation); its
	// relations, which DROP SCHEMA locks ACCESS EXCLUSIVE as it finds
	// them (with RESTRICT too, before it says they depend on it).
	ViaSchemaRelations = "schema-relations"
	// ViaTypeCascade: Table names a type or a domain (not a relation);
	// the relations DROP TYPE or DROP DOMAIN ... CASCADE locks ACCESS
	// EXCLUSIVE as it drops what depends on it (cascadeRelationsSQL).
	ViaTypeCascade = "type-cascade"
	// ViaFunctionCascade: Table names a function, procedure or routine
	// (Args its argument types); the relations DROP FUNCTION ... CASCADE
	// locks ACCESS EXCLUSIVE as it drops what depends on it.
	ViaFunctionCascade = "function-cascade"
)

// cascadeRelationsSQL lists the relations that dropping obj (an SQL OID
// expression of an object of catalog class) with CASCADE locks ACCESS
// EXCLUSIVE, as pg_depend says (what the server's findDependentObjects
// follows: normal, automatic and internal dependencies, to the end): the
// relations it drops (a view that uses it, a table typed by it, an index
// and its table), the tables whose columns it drops (a column of the type
// or of an array or a domain over it, RemoveAttributeById), and the tables
// of the triggers, defaults, constraints, rules and policies it drops
// (RemoveTriggerById, RemoveAttrDefaultById, RemoveConstraintById,
// RemoveRewriteRuleById, RemovePolicyById). Catalogs only.
func cascadeRelationsSQL(obj, class string) string {
	is := func(c string) string { return "d.classid = 'pg_catalog." + c + "'::pg_catalog.regclass" }
	return CascadeDependentsSQL(obj, class) +
		" SELECT d.objid FROM d WHERE " + is("pg_class") +
		" UNION SELECT i.indrelid FROM d JOIN pg_catalog.pg_index i ON i.indexrelid = d.objid WHERE " + is("pg_class") +
		" UNION SELECT t.typrelid FROM d JOIN pg_catalog.pg_type t ON t.oid = d.objid WHERE " + is("pg_type") + " AND t.typrelid <> 0" +
		" UNION SELECT t.tgrelid FROM d JOIN pg_catalog.pg_trigger t ON t.oid = d.objid WHERE " + is("pg_trigger") +
		" UNION SELECT a.adrelid FROM d JOIN pg_catalog.pg_attrdef a ON a.oid = d.objid WHERE " + is("pg_attrdef") +
		" UNION SELECT c.conrelid FROM d JOIN pg_catalog.pg_constraint c ON c.oid = d.objid WHERE " + is("pg_constraint") + " AND c.conrelid <> 0" +
		" UNION SELECT w.ev_class FROM d JOIN pg_catalog.pg_rewrite w ON w.oid = d.objid WHERE " + is("pg_rewrite") +
		" UNION SELECT y.polrelid FROM d JOIN pg_catalog.pg_policy y ON y.oid = d.objid WHERE " + is("pg_policy")
}

// RelationsSQL is a query of the catalog for the OIDs of the relations tl
// locks, given oid, an SQL expression for the OID of the relation it names:
// that one for ViaNamed; otherwise what the catalog links to it. It takes
// no lock, and reads only the catalog.
func (tl TableLock) RelationsSQL(oid string) string {
	attnum := func(col string) string {
		return "(SELECT a.attnum FROM pg_catalog.pg_attribute a WHERE a.attrelid = " + oid +
			" AND a.attname = " + escapedLiteral(col) + " AND NOT a.attisdropped)"
	}
	switch tl.Via {
	case ViaIndexTable:
		return "SELECT i.indrelid FROM pg_catalog.pg_index i WHERE i.indexrelid = " + oid
	case ViaReferenced:
		q := "SELECT c.confrelid FROM pg_catalog.pg_constraint c WHERE c.contype = 'f' AND c.conrelid = " + oid
		if tl.Constraint != "" {
			q += " AND c.conname = " + escapedLiteral(tl.Constraint)
		}
		if tl.Column != "" {
			q += " AND " + attnum(tl.Column) + " = ANY (c.conkey)"
		}
		return q
	case ViaReferencing, ViaReferencingAll:
		q := "SELECT c.conrelid FROM pg_catalog.pg_constraint c WHERE c.contype = 'f' AND c.confrelid = " + oid
		if tl.Constraint != "" {
			// The keys that depend on the constraint's index.
			q += " AND c.conindid IN (SELECT k.conindid FROM pg_catalog.pg_constraint k WHERE k.conrelid = " + oid +
				" AND k.conname = " + escapedLiteral(tl.Constraint) + ")"
		}
		if tl.Column != "" {
			q += " AND " + attnum(tl.Column) + " = ANY (c.confkey)"
		}
		if tl.Via == ViaReferencingAll {
			return "WITH RECURSIVE f(r) AS (" + q + " UNION SELECT c.conrelid FROM pg_catalog.pg_constraint c JOIN f ON c.confrelid = f.r" +
				" WHERE c.contype = 'f') SELECT r FROM f"
		}
		return q
	case ViaSchemaRelations:
		return "SELECT c.oid FROM pg_catalog.pg_class c WHERE c.relnamespace = pg_catalog.to_regnamespace(" + escapedLiteral(tl.Table.String()) + ")::oid" +
			" AND c.relkind IN ('r', 'p', 'm', 'v', 'S', 'f')"
	case ViaTypeCascade:
		return cascadeRelationsSQL(CascadeObjectSQL("type", tl.Table, ""))
	case ViaFunctionCascade:
		return cascadeRelationsSQL(CascadeObjectSQL("function", tl.Table, tl.Args))
	case ViaDomainTables:
		// The OID given is the relation's of that name; a domain is a
		// type, resolved here.
		dom := "pg_catalog.to_regtype(" + escapedLiteral(tl.Table.String()) + ")::oid"
		return "WITH RECURSIVE d(t) AS (SELECT " + dom + " UNION SELECT ty.oid FROM pg_catalog.pg_type ty JOIN d ON ty.typbasetype = d.t WHERE ty.typtype = 'd')" +
			" SELECT DISTINCT a.attrelid FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid AND c.relkind IN ('r', 'p', 'm', 'f')" +
			" WHERE a.atttypid IN (SELECT t FROM d) AND a.attnum > 0 AND NOT a.attisdropped"
	case ViaPartitionParent:
		return "SELECT i.inhparent FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid AND c.relispartition WHERE i.inhrelid = " + oid
	case ViaViewTables:
		// A view's _RETURN rule depends on the relations of its query
		// (and on the view itself); only tables, partitioned tables and
		// views are locked, and views followed.
		return "WITH RECURSIVE v(r) AS (SELECT " + oid + " UNION SELECT d.refobjid FROM v" +
			" JOIN pg_catalog.pg_class c ON c.oid = v.r AND c.relkind = 'v'" +
			" JOIN pg_catalog.pg_rewrite w ON w.ev_class = v.r AND w.rulename = '_RETURN'" +
			" JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = w.oid" +
			" AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid <> v.r" +
			" JOIN pg_catalog.pg_class b ON b.oid = d.refobjid AND b.relkind IN ('r', 'p', 'v'))" +
			" SELECT r FROM v WHERE r IS DISTINCT FROM " + oid
	case ViaDefaultPartition:
		return "SELECT t.partdefid FROM pg_catalog.pg_partitioned_table t WHERE t.partdefid <> 0 AND t.partrelid = " + oid
	case ViaOwnedSequences:
		q := "SELECT d.objid FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S'" +
			" WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass" +
			" AND d.deptype IN ('a', 'i') AND d.refobjid = " + oid
		if tl.Column != "" {
			q += " AND d.refobjsubid = " + attnum(tl.Column)
		}
		return q
	}
	return "SELECT " + oid
}

// escapedLiteral is s as an SQL string literal that reads the same with
// standard_conforming_strings on or off (E” when s has a backslash).
func escapedLiteral(s string) string {
	q := QuoteLiteral(s)
	if strings.Contains(s, `\`) {
		return "E" + strings.ReplaceAll(q, `\`, `\\`)
	}
	return q
}

// tableLocks lists the tables a statement names with the lock it takes on
// each, as PostgreSQL 15 takes them (TestStatementTableLocksMatchServer):
// its main table with the statement's lock, and the table a FOREIGN KEY
// references (ALTER TABLE ... ADD [COLUMN ... REFERENCES | FOREIGN KEY],
// CREATE TABLE ... REFERENCES) with SHARE ROW EXCLUSIVE; and, with Via,
// those it locks through them: a dropped or reindexed index's table, the
// other table of a foreign key a DROP TABLE, DROP CONSTRAINT, DROP COLUMN
// or ALTER COLUMN TYPE removes or rebuilds (and with CASCADE or TRUNCATE
// ... CASCADE the tables whose keys reference it), the sequences a DROP
// TABLE, DROP COLUMN or TRUNCATE ... RESTART IDENTITY drops or resets, the
// partition and DEFAULT partition of ATTACH or DETACH PARTITION.
// Partitions and inheritance children are not listed (the lock queue's
// look adds them); nothing for a CONCURRENTLY operation.
func tableLocks(n *pg_query.Node, f facts) []TableLock {
	if f.concurrent {
		return nil
	}
	var out []TableLock
	// via adds the relations the statement locks through rv (Via), those
	// of one constraint or column of it only when by names them.
	via := func(rv *pg_query.RangeVar, mode, via string, by ...string) {
		t := TableOf(rv)
		if t.Name == "" || mode == "" {
			return
		}
		tl := TableLock{Table: t, Via: via}
		if len(by) == 2 {
			tl.Constraint, tl.Column = by[0], by[1]
		}
		for i := range out {
			if out[i].Same(tl) {
				out[i].Mode = strongerLock(out[i].Mode, mode)
				return
			}
		}
		tl.Mode = mode
		out = append(out, tl)
	}
	add := func(rv *pg_query.RangeVar, mode string) { via(rv, mode, ViaNamed) }
	references := func(cs []*pg_query.Node) {
		for _, c := range cs {
			if con := c.GetConstraint(); con != nil && con.Contype == pg_query.ConstrType_CONSTR_FOREIGN {
				add(con.Pktable, LockShareRowExclusive)
			}
		}
	}
	switch s := n.GetNode().(type) {
	case *pg_query.Node_AlterTableStmt:
		rel := s.AlterTableStmt.Relation
		add(rel, f.lock)
		for _, c := range s.AlterTableStmt.Cmds {
			cmd := c.GetAlterTableCmd()
			if cmd == nil {
				continue
			}
			cascade := cmd.Behavior == pg_query.DropBehavior_DROP_CASCADE
			switch cmd.Subtype {
			case pg_query.AlterTableType_AT_DropConstraint:
				// A foreign key's other table; with CASCADE, the tables
				// whose keys depend on a dropped unique constraint.
				via(rel, LockAccessExclusive, ViaReferenced, cmd.Name, "")
				if cascade {
					via(rel, LockAccessExclusive, ViaReferencing, cmd.Name, "")
				}
			case pg_query.AlterTableType_AT_DropColumn:
				via(rel, LockAccessExclusive, ViaReferenced, "", cmd.Name)
				via(rel, LockAccessExclusive, ViaOwnedSequences, "", cmd.Name)
				if cascade {
					via(rel, LockAccessExclusive, ViaReferencing, "", cmd.Name)
				}
			case pg_query.AlterTableType_AT_AlterColumnType:
				// The foreign keys on the column are rebuilt, on both
				// sides.
				via(rel, LockAccessExclusive, ViaReferenced, "", cmd.Name)
				via(rel, LockAccessExclusive, ViaReferencing, "", cmd.Name)
			case pg_query.AlterTableType_AT_AttachPartition, pg_query.AlterTableType_AT_DetachPartition:
				// The partition (a table's or an index's), and the
				// DEFAULT partition, scanned for rows that belong in the
				// new one or no longer constrained by the old.
				if pc := cmd.GetDef().GetPartitionCmd(); pc != nil && !pc.Concurrent {
					add(pc.Name, LockAccessExclusive)
					if s.AlterTableStmt.Objtype != pg_query.ObjectType_OBJECT_INDEX {
						via(rel, LockAccessExclusive, ViaDefaultPartition)
					}
				}
			}
			switch def := cmd.GetDef(); {
			case def.GetConstraint() != nil:
				references([]*pg_query.Node{def})
			case def.GetColumnDef() != nil:
				references(def.GetColumnDef().Constraints)
			}
		}
	case *pg_query.Node_CreateStmt:
		if s.CreateStmt.Partbound != nil {
			for _, r := range s.CreateStmt.InhRelations {
				add(r.GetRangeVar(), LockAccessExclusive)
			}
		}
		references(s.CreateStmt.Constraints)
		for _, e := range s.CreateStmt.TableElts {
			if cd := e.GetColumnDef(); cd != nil {
				references(cd.Constraints)
			} else if e.GetConstraint() != nil {
				references([]*pg_query.Node{e})
			}
		}
	case *pg_query.Node_IndexStmt:
		add(s.IndexStmt.Relation, f.lock)
	case *pg_query.Node_ReindexStmt:
		switch s.ReindexStmt.Kind {
		case pg_query.ReindexObjectType_REINDEX_OBJECT_TABLE:
			add(s.ReindexStmt.Relation, f.lock)
		case pg_query.ReindexObjectType_REINDEX_OBJECT_INDEX:
			// SHARE on the index's table, ACCESS EXCLUSIVE on the index
			// (which a query of the table's opens when it plans).
			add(s.ReindexStmt.Relation, LockAccessExclusive)
			via(s.ReindexStmt.Relation, f.lock, ViaIndexTable)
		}
	case *pg_query.Node_CreateTrigStmt:
		add(s.CreateTrigStmt.Relation, f.lock)
	case *pg_query.Node_LockStmt:
		for _, r := range s.LockStmt.Relations {
			add(r.GetRangeVar(), f.lock)
			via(r.GetRangeVar(), f.lock, ViaViewTables)
		}
	case *pg_query.Node_AlterDomainStmt:
		if f.lock != "" {
			via(rangeVarOfNames(s.AlterDomainStmt.TypeName), f.lock, ViaDomainTables)
		}
	case *pg_query.Node_TruncateStmt:
		for _, r := range s.TruncateStmt.Relations {
			add(r.GetRangeVar(), f.lock)
			if s.TruncateStmt.RestartSeqs {
				via(r.GetRangeVar(), f.lock, ViaOwnedSequences)
			}
			if s.TruncateStmt.Behavior == pg_query.DropBehavior_DROP_CASCADE {
				via(r.GetRangeVar(), f.lock, ViaReferencingAll)
			}
		}
	case *pg_query.Node_ClusterStmt:
		add(s.ClusterStmt.Relation, f.lock)
	case *pg_query.Node_VacuumStmt:
		if f.lock == LockAccessExclusive {
			for _, r := range s.VacuumStmt.Rels {
				add(r.GetVacuumRelation().GetRelation(), f.lock)
			}
		}
	case *pg_query.Node_RefreshMatViewStmt:
		add(s.RefreshMatViewStmt.Relation, f.lock)
	case *pg_query.Node_ViewStmt:
		add(s.ViewStmt.View, f.lock)
	case *pg_query.Node_AlterSeqStmt:
		add(s.AlterSeqStmt.Sequence, f.lock)
	case *pg_query.Node_AlterObjectSchemaStmt:
		add(s.AlterObjectSchemaStmt.Relation, f.lock)
	case *pg_query.Node_RenameStmt:
		// Before it runs the table has its old name.
		add(s.RenameStmt.Relation, f.lock)
	case *pg_query.Node_DropStmt:
		switch r := s.DropStmt.RemoveType; r {
		case pg_query.ObjectType_OBJECT_TABLE, pg_query.ObjectType_OBJECT_MATVIEW, pg_query.ObjectType_OBJECT_INDEX,
			pg_query.ObjectType_OBJECT_VIEW, pg_query.ObjectType_OBJECT_SEQUENCE, pg_query.ObjectType_OBJECT_FOREIGN_TABLE:
			// A view, a sequence, a foreign table: ACCESS EXCLUSIVE on
			// it, which a read of the view (a nextval) waits behind.
			for _, o := range s.DropStmt.Objects {
				l := o.GetList()
				if l == nil {
					continue
				}
				rv := rangeVarOfNames(l.Items)
				add(rv, f.lock)
				switch r {
				case pg_query.ObjectType_OBJECT_INDEX:
					via(rv, f.lock, ViaIndexTable)
				case pg_query.ObjectType_OBJECT_TABLE:
					// Its foreign keys' tables, its sequences, and with
					// CASCADE the tables whose keys reference it.
					via(rv, f.lock, ViaReferenced)
					via(rv, f.lock, ViaOwnedSequences)
					via(rv, f.lock, ViaPartitionParent)
					if s.DropStmt.Behavior == pg_query.DropBehavior_DROP_CASCADE {
						via(rv, f.lock, ViaReferencing)
					}
				}
			}
		}
		for _, o := range CascadeDropsOf(n) {
			if o.Kind == "type" {
				via(&pg_query.RangeVar{Schemaname: o.Name.Schema, Relname: o.Name.Name}, LockAccessExclusive, ViaTypeCascade)
				continue
			}
			tl := TableLock{Table: o.Name, Via: ViaFunctionCascade, Mode: LockAccessExclusive, Args: o.Args}
			if !slices.ContainsFunc(out, tl.Same) {
				out = append(out, tl)
			}
		}
		if s.DropStmt.RemoveType == pg_query.ObjectType_OBJECT_SCHEMA {
			for _, o := range s.DropStmt.Objects {
				if name := o.GetString_().GetSval(); name != "" {
					via(&pg_query.RangeVar{Relname: name}, LockAccessExclusive, ViaSchemaRelations)
				}
			}
		}
		if r := s.DropStmt.RemoveType; r == pg_query.ObjectType_OBJECT_TRIGGER || r == pg_query.ObjectType_OBJECT_POLICY || r == pg_query.ObjectType_OBJECT_RULE {
			// DROP TRIGGER / POLICY / RULE name ON table: the name list is
			// the table's name and then the object's; PostgreSQL 15 takes
			// ACCESS EXCLUSIVE on the table (RemoveTriggerById,
			// RemovePolicyById, RemoveRewriteRuleById).
			for _, o := range s.DropStmt.Objects {
				if l := o.GetList(); l != nil && len(l.Items) > 1 {
					add(rangeVarOfNames(l.Items[:len(l.Items)-1]), LockAccessExclusive)
				}
			}
		}
	default:
		for _, t := range exclusiveTables(n) {
			if f.lock == LockAccessExclusive {
				add(&pg_query.RangeVar{Schemaname: t.Schema, Relname: t.Name}, f.lock)
			}
		}
	}
	return out
}

// rangeVarOfNames turns a DROP's name list (schema, name or name) into a
// RangeVar; nil for anything longer (a database-qualified name).
func rangeVarOfNames(items []*pg_query.Node) *pg_query.RangeVar {
	switch len(items) {
	case 1:
		return &pg_query.RangeVar{Relname: items[0].GetString_().GetSval()}
	case 2:
		return &pg_query.RangeVar{Schemaname: items[0].GetString_().GetSval(), Relname: items[1].GetString_().GetSval()}
	}
	return nil
}

// IsConcurrent reports whether a statement runs CONCURRENTLY (CREATE or
// DROP INDEX, REINDEX, REFRESH MATERIALIZED VIEW, DETACH PARTITION).
func IsConcurrent(n *pg_query.Node) bool { return statementFacts(n).concurrent }
