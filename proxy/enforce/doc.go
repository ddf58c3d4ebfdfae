// Package enforce is pgguard's enforcement machine: what happens to a
// statement between the relay reading it from the client and the client
// reading its answer.
//
// State is the session state that the relay (package proxy) records from
// the server's messages and the machine reads to judge statements. It lives
// here because package proxy imports enforce, never the other way round.
package enforce
