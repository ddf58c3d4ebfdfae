// Package enforce is pgguard's enforcement machine: what happens to a
// statement between the relay reading it from the client and the client
// reading its answer. It applies the policy's verdict (pass, refuse,
// rewrite, warn), lifts lock_timeout around a concurrent statement or an
// advisory-lock wait, checks lock_timeout with the server before a
// statement that blocks writes, retries DDL that failed on lock_timeout,
// and drops the INVALID index a failed concurrent build of its own left.
//
// # The boundary with the relay
//
// Package proxy runs the two relay loops; it imports this package, never
// the other way round. The relay hands each session's machine:
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
//	client-to-server loop            server-to-client loop
//	OnQuery, OnParse (with a policy)  OnServerMessage (each message)
//	OnBind (while WatchesBinds)       OnReadyForQuery (a ReadyForQuery it relayed)
//	OnSync, OnExtended, AfterSync
//
// With no policy the machine only counts sync points (Pending).
package enforce
