package sqltext

import (
	"errors"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"github.com/pganalyze/pg_query_go/v6/parser"
)

// GrammarVersion is the PostgreSQL major version whose grammar pg_query
// parses with (pg_query_go v6: PostgreSQL 17).
const GrammarVersion = 17

// newKeywords are the keywords PostgreSQL 16 and 17 added to the grammar
// of PostgreSQL 15 (kwlist.h of the two releases; all of them, whatever
// their category, since even an unreserved keyword can end a bare column
// label).
var newKeywords = map[string]bool{
	"absent": true, "conditional": true, "empty": true, "error": true, "format": true,
	"indent": true, "json": true, "json_array": true, "json_arrayagg": true, "json_exists": true,
	"json_object": true, "json_objectagg": true, "json_query": true, "json_scalar": true,
	"json_serialize": true, "json_table": true, "json_value": true, "keep": true, "keys": true,
	"merge_action": true, "nested": true, "omit": true, "path": true, "plan": true,
	"quotes": true, "scalar": true, "source": true, "string": true, "system_user": true,
	"target": true, "unconditional": true,
}

// ServerRejectsToo reports whether a statement pg_query failed to parse
// with err fails to parse on a server of major version server as well,
// so that the server's own answer (42601 and its message) can be had by
// sending it: the server then refuses it before running anything, and a
// Query holding it runs none of its statements. It holds for pg_query's
// syntax errors only (not for pgguard's own limits), on PostgreSQL 15 to
// 17: 17's grammar is pg_query's, and 15's and 16's differ from it by the
// keywords 16 and 17 added, so the statement must spell none of them as a
// bare word (a word that is a keyword for pg_query but an identifier for
// the server could be the very reason pg_query failed). Any other version,
// or a statement that cannot be scanned, is not known to fail.
func ServerRejectsToo(err error, text string, server int) bool {
	var pe *parser.Error
	if !errors.As(err, &pe) || !(strings.HasPrefix(pe.Message, "syntax error at or near ") || pe.Message == "syntax error at end of input") {
		return false
	}
	switch {
	case server == GrammarVersion:
		return true
	case server < 15 || server > GrammarVersion:
		return false
	}
	res, serr := PgScan(text)
	if serr != nil {
		return false
	}
	for _, tok := range res.Tokens {
		if tok.KeywordKind == pg_query.KeywordKind_NO_KEYWORD {
			continue
		}
		if int(tok.Start) < 0 || int(tok.End) > len(text) || tok.Start > tok.End {
			return false
		}
		if newKeywords[strings.ToLower(text[tok.Start:tok.End])] {
			return false
		}
	}
	return true
}
