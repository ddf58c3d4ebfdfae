package enforce

import (
	"testing"
	"time"
)

// When every reader that holds memory waits for more, the youngest is
// refused and the oldest goes on with what it held; a closed session's
// wait ends at once.
func TestMemoryRefusesTheYoungestWhenStuck(t *testing.T) {
	mm := NewMemory(100, time.Minute)
	collected := 0
	mm.collect = func() { collected++ }
	done := make(chan struct{})
	old, young := mm.reader(done), mm.reader(done)
	if old.Reserve(50) != nil || young.Reserve(40) != nil {
		t.Fatal("reserve within the limit failed")
	}
	oldErr := make(chan error, 1)
	go func() { oldErr <- old.Reserve(30) }()
	for {
		mm.mu.Lock()
		n := len(mm.waiting)
		mm.mu.Unlock()
		if n == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if err := young.Reserve(20); err != errNoMemory {
		t.Fatalf("young: %v, want errNoMemory", err)
	}
	young.finish() // its 40 bytes are garbage until collected
	if err := <-oldErr; err != nil {
		t.Fatalf("old: %v", err)
	}
	if collected == 0 || mm.InUse() != 80 || mm.Peak() > 100 {
		t.Fatalf("collected %d times, in use %d, peak %d", collected, mm.InUse(), mm.Peak())
	}
	old.finish()
	closing := mm.reader(done)
	if closing.Reserve(20) != nil { // fills it: old's 80 bytes are garbage still
		t.Fatal("reserve within the limit failed")
	}
	close(done)
	if err := mm.reader(done).Reserve(90); err != errSessionClosed {
		t.Fatalf("closed session: %v", err)
	}
	closing.finish()
}

// The reader refused to unblock the others is one that holds memory: a
// younger waiter that holds nothing would free nothing, and every waiter
// then waited out its whole wait (seen as 8 of 8 statements refused under
// load in TestStatementMemoryBound).
func TestMemoryRefusesAHolderWhenStuck(t *testing.T) {
	mm := NewMemory(100, time.Minute)
	mm.collect = func() {}
	done := make(chan struct{})
	old, mid, fresh := mm.reader(done), mm.reader(done), mm.reader(done)
	if old.Reserve(50) != nil || mid.Reserve(40) != nil {
		t.Fatal("reserve within the limit failed")
	}
	errs := make(chan error, 3)
	go func() { errs <- fresh.Reserve(30) }() // holds nothing, youngest
	waitFor := func(n int) {
		for {
			mm.mu.Lock()
			w := len(mm.waiting)
			mm.mu.Unlock()
			if w == n {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitFor(1)
	go func() { errs <- old.Reserve(30) }()
	waitFor(2)
	// Now every holder waits: mid, the youngest holder, must be the one.
	if err := mid.Reserve(30); err != errNoMemory {
		t.Fatalf("mid: %v, want errNoMemory", err)
	}
	mid.finish()
	// old (the oldest) fits now; fresh once old is done.
	for _, then := range []func(){old.finish, func() {}} {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatalf("a waiter got %v once memory was free", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a waiter was not served once memory was free")
		}
		then()
	}
	fresh.finish()
}
