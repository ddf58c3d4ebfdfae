// Package proxy is the wire side of pgguard: it accepts PostgreSQL client
// connections, performs the startup handshake (TLS, cancel requests), relays
// authentication verbatim to one upstream server, and then relays every
// message as raw bytes, peeking only at the few message types the session
// needs (Query, Parse, ReadyForQuery, ErrorResponse, ParameterStatus,
// BackendKeyData). Judgement of statements lives in package policy; what
// happens to a judged statement and its answer (refusal, rewrite,
// lock_timeout lift, retry, clean-up) is the machine of package
// proxy/enforce, which the relay loops hand Query, Parse and the answers of
// special sync points.
//
// Two relays carry a session once it is logged in. The event loop
// (loop_linux.go) relays every session whose traffic needs nothing but
// counting on one thread, with one epoll set, as PgBouncer does; at the
// first message it does not relay as it is (a statement to judge, COPY, an
// error, a slow peer, shutdown) it hands the session, with every byte in
// flight, to the goroutine relay (relay.go): two goroutines per session,
// which call the machine and may wait. A session goes one way only: loop,
// then goroutines.
package proxy
