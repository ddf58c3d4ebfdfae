// Package enforce is pgguard's enforcement machine: what happens to a
// statement between the relay reading it from the client and the client
// reading its answer. It applies the policy's verdict (pass, refuse,
// rewrite, warn), lifts lock_timeout around a concurrent statement or a
// migration tool's wait for its own lock, checks lock_timeout with the server before a
// statement that blocks writes, retries DDL that failed on lock_timeout,
// and drops the INVALID index a failed concurrent build of its own left.
//
// # The boundary with the relay
//
// Package proxy runs the two relay loops; it imports this package, never
// the other way round. The relay hands each session's machine (New):
//
//   - Conns, the two connections' buffered readers and writers and the
//     locks that fence the writers: concrete types, so that the hot path
//     makes no interface call. Conns.Forward is the relay's own copy of a
//     client message.
//   - Session, the few things the machine asks of the session on slow paths
//     (end it, cancel its running statement, learn that it ends).
//   - State, what the session knows about itself (transaction status,
//     reported parameters, backend key): the relay records into it, the
//     machine reads it to judge statements. It lives here because the
//     machine is its main reader and proxy imports enforce.
//
// The relay calls the machine from its two loops:
//
//	client-to-server loop              server-to-client loop
//	OnQuery, OnParse (with a policy)   OnServerMessage (every message)
//	OnBind (while WatchesBinds)        OnReadyForQuery (one it relayed)
//	OnSync, OnExtended, AfterSync
//
// With no policy the machine only counts sync points (Pending).
//
// # Sync points
//
// A sync point is one Query, Sync or FunctionCall: the server answers it
// with exactly one ReadyForQuery. Most are only counted, and their answers
// stream through the relay untouched. When pgguard must shape an answer,
// the client-to-server loop queues a special sync point before the message
// goes out; what it does with a judged statement:
//
//	allowed, nothing to say          forwarded; only counted
//	records a migration in the       forwarded: stream, to report its outcome
//	tool's ledger
//	warned or rewritten              forwarded (rewritten), its NOTICEs queued: stream
//	refused                          the refusal marker goes instead: stream, error replaced
//	blocks writes                    lock_timeout checked with the server first when nothing
//	                                 is pending (swallow), a WARNING if it was set back: stream
//	one DDL statement in a Query,    sent, and awaited before the client is read again: hold;
//	or alone in a batch with one     a resent batch starts with a Close of its named
//	Execute; autocommit, retries on  statement, whose CloseComplete is dropped
//	CONCURRENTLY or an advisory-     the lift (swallow), the statement (stream, ReadyForQuery
//	lock wait, alone, autocommit;    held), then restore and clean up (swallow); in a block,
//	a tool's lock wait (advisory or  no restore after a failure: the ROLLBACK undoes the lift
//	lock table) also in a block
//
// The server-to-client loop then treats every message of its answer, up to
// its ReadyForQuery, by the sync point's mode:
//
//	                  queued by the client-to-server loop
//	      ┌───────────────────────┼───────────────────────┐
//	      ▼                       ▼                       ▼
//	   swallow                 stream ◀── too large ──── hold ───┐ ReadyForQuery after a 55P03,
//	      │                       │       (release)       │  ▲   │ tries left: back off, resend
//	      │                       │                       │  └───┘
//	      │ ReadyForQuery         │ ReadyForQuery         │ ReadyForQuery otherwise (release)
//	      ▼                       ▼                       ▼
//	   answered: outcome recorded, statement events reported, the waiter woken
//	      │
//	      ├── swallow: the client gets no ReadyForQuery
//	      ├── ReadyForQuery held (a lifted statement): the waiter restores lock_timeout,
//	      │   drops the INVALID index its failed build left (clean up), then sends it
//	      └── otherwise: the ReadyForQuery goes to the client
//
//	swallow  pgguard's own query: nothing reaches the client (ParameterStatus excepted);
//	         its rows are kept for the waiter, up to maxSwallowedRows.
//	stream   each message goes to the client as it streams in, the sync point's notices
//	         first; the ErrorResponse raised by the refusal marker is replaced by
//	         pgguard's own (refuse).
//	hold     DDL that may be retried: the answer is kept, up to Config.MaxHeldAnswer,
//	         until it is final. Past the bound, what was held goes out and the sync
//	         point streams on, never retried.
//
// Every message gets exactly one treatment and is written only once its
// body is read or while it streams; each sync point gets exactly one
// ReadyForQuery back.
package enforce
