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
package proxy
