package policy_test

// The rules live in policy/rules, which imports policy; an external test
// file is how policy's own tests get them registered (Go builds policy/rules
// against this test binary's policy).
import _ "github.com/pgguard/pgguard/policy/rules"
