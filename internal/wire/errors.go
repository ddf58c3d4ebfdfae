package wire

import (
	"bufio"

	"github.com/jackc/pgx/v5/pgproto3"
)

// SQLSTATE codes pgguard itself reports.
const (
	CodeConnectionFailure     = "08001" // sqlclient_unable_to_establish_sqlconnection
	CodeProtocolViolation     = "08P01"
	CodeOutOfMemory           = "53200"
	CodeTooManyConnections    = "53300"
	CodeAdminShutdown         = "57P01"
	CodeInsufficientPrivilege = "42501"
	CodeFeatureNotSupported   = "0A000"
	CodeInvalidAuthorization  = "28000" // invalid_authorization_specification
)

// PGError is an error pgguard reports to a client as an ErrorResponse.
type PGError struct {
	Severity string // ERROR or FATAL
	Code     string // SQLSTATE
	Message  string
	Detail   string
	Hint     string
}

func (e *PGError) Error() string { return e.Message }

// Encode appends the ErrorResponse ('E') or, with notice, NoticeResponse ('N').
func (e *PGError) Encode(dst []byte, notice bool) []byte {
	m := pgproto3.ErrorResponse{
		Severity:            e.Severity,
		SeverityUnlocalized: e.Severity,
		Code:                e.Code,
		Message:             e.Message,
		Detail:              e.Detail,
		Hint:                e.Hint,
	}
	var b []byte
	var err error
	if notice {
		n := pgproto3.NoticeResponse(m)
		b, err = n.Encode(dst)
	} else {
		b, err = m.Encode(dst)
	}
	if err != nil {
		// Only a message over 1 GB fails to encode; ours are small.
		panic(err)
	}
	return b
}

// SendFatal writes a FATAL ErrorResponse and flushes; the caller closes.
func SendFatal(w *bufio.Writer, code, msg, detail string) error {
	e := &PGError{Severity: "FATAL", Code: code, Message: msg, Detail: detail}
	w.Write(e.Encode(nil, false))
	return w.Flush()
}
