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
