package policy

import (
	"errors"
	"fmt"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// DefaultMaxStatementBytes is the default longest statement the engine
// parses (max_statement_bytes); longer DDL counts as a parse error.
const DefaultMaxStatementBytes = 1 << 20

// errTooLong is wrapped by parse errors for statements over the limit.
var errTooLong = errors.New("statement too long to parse")

// parseStatement parses one statement into its node. It never panics: the
// parser is C code behind cgo and protobuf decoding, so any panic on the
// way is turned into an error. Deeply nested input is refused by the parser
// itself (stack depth check) or by protobuf decoding (recursion limit).
func parseStatement(text string, maxBytes int) (node *pg_query.Node, err error) {
	if len(text) > maxBytes {
		return nil, fmt.Errorf("%w: %d bytes, max_statement_bytes is %d", errTooLong, len(text), maxBytes)
	}
	defer func() {
		if r := recover(); r != nil {
			node, err = nil, fmt.Errorf("parser failed: %v", r)
		}
	}()
	res, err := pg_query.Parse(text)
	if err != nil {
		return nil, err
	}
	if len(res.Stmts) != 1 || res.Stmts[0].Stmt == nil {
		return nil, fmt.Errorf("expected one statement, found %d", len(res.Stmts))
	}
	return res.Stmts[0].Stmt, nil
}
