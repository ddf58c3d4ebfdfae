package policy

import "testing"

// TestEveryRuleHasAFix: the message of every finding must carry the
// essential fix, for tools that print nothing else.
func TestEveryRuleHasAFix(t *testing.T) {
	for _, r := range Rules() {
		if ruleFixes[r.ID] == "" {
			t.Errorf("rule %s has no entry in ruleFixes", r.ID)
		}
	}
	for id := range ruleFixes {
		if _, ok := LookupRule(id); !ok {
			t.Errorf("ruleFixes names %s, which is not a rule", id)
		}
	}
}
