package pgcatalog

import (
	"testing"
	"time"

	"github.com/pgguard/pgguard/policy"
)

// The memo answers what it kept until the session forgets it or the
// answer is MemoLifetime old, keeps at most memoMax answers per table, and
// a nil memo keeps nothing.
func TestSessionMemo(t *testing.T) {
	now := time.Unix(1000, 0)
	m := &SessionMemo{now: func() time.Time { return now }}
	if _, ok := m.effectsOf("public.t", "UPDATE"); ok || m.Kept() {
		t.Fatal("an empty memo answered")
	}
	e := policy.Effects{Rules: true}
	m.keepEffects("public.t", "UPDATE", e)
	m.keepBodies([]string{"f", "g"}, []policy.Function{{Name: "public.f"}})
	if got, ok := m.effectsOf("public.t", "UPDATE"); !ok || !got.Rules || !m.Kept() {
		t.Errorf("kept effects: %+v %v", got, ok)
	}
	if _, ok := m.effectsOf("public.t", "DELETE"); ok {
		t.Error("another event answered from the memo")
	}
	if fs, ok := m.bodiesOf([]string{"f", "g"}); !ok || len(fs) != 1 {
		t.Errorf("kept bodies: %v %v", fs, ok)
	}
	if _, ok := m.bodiesOf([]string{"f"}); ok {
		t.Error("another list of names answered from the memo")
	}
	now = now.Add(MemoLifetime)
	if _, ok := m.effectsOf("public.t", "UPDATE"); ok {
		t.Error("an answer MemoLifetime old was used")
	}
	m.keepEffects("public.t", "UPDATE", e)
	m.Forget()
	if _, ok := m.effectsOf("public.t", "UPDATE"); ok || m.Kept() {
		t.Error("a forgotten answer was used")
	}
	for i := 0; i < memoMax+10; i++ {
		m.keepEffects(string(rune('a'+i%26))+string(rune(i)), "UPDATE", e)
	}
	if len(m.effects) > memoMax {
		t.Errorf("%d answers kept, at most %d", len(m.effects), memoMax)
	}
	var none *SessionMemo
	none.keepEffects("t", "UPDATE", e)
	none.Forget()
	if _, ok := none.effectsOf("t", "UPDATE"); ok || none.Kept() {
		t.Error("a nil memo answered")
	}
}
