package policy

// Table lock modes, as pg_locks.mode names them in LockStrength order.
const (
	LockAccessShare          = "ACCESS SHARE"
	LockRowShare             = "ROW SHARE"
	LockRowExclusive         = "ROW EXCLUSIVE"
	LockShareUpdateExclusive = "SHARE UPDATE EXCLUSIVE"
	LockShare                = "SHARE"
	LockShareRowExclusive    = "SHARE ROW EXCLUSIVE"
	LockExclusive            = "EXCLUSIVE"
	LockAccessExclusive      = "ACCESS EXCLUSIVE"
)

var lockOrder = []string{LockAccessShare, LockRowShare, LockRowExclusive, LockShareUpdateExclusive,
	LockShare, LockShareRowExclusive, LockExclusive, LockAccessExclusive}

// LockStrength orders lock modes: 0 for "" (none or unknown), 1 for ACCESS
// SHARE, up to 8 for ACCESS EXCLUSIVE. It also accepts pg_locks spellings
// such as "ShareUpdateExclusiveLock".
func LockStrength(mode string) int {
	for i, m := range lockOrder {
		if m == mode || pgLocksName(m) == mode {
			return i + 1
		}
	}
	return 0
}

// strongerLock returns the stronger of two lock modes.
func strongerLock(a, b string) string {
	if LockStrength(b) > LockStrength(a) {
		return b
	}
	return a
}

// BlocksWrites reports whether a lock mode conflicts with ROW EXCLUSIVE,
// the lock INSERT, UPDATE and DELETE take: SHARE and stronger.
func BlocksWrites(mode string) bool {
	return LockStrength(mode) >= LockStrength(LockShare)
}

// pgLocksName spells a lock mode as pg_locks.mode does, e.g.
// "SHARE UPDATE EXCLUSIVE" → "ShareUpdateExclusiveLock".
func pgLocksName(mode string) string {
	out := make([]byte, 0, len(mode)+4)
	up := true
	for i := 0; i < len(mode); i++ {
		c := mode[i]
		if c == ' ' {
			up = true
			continue
		}
		if !up && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		up = false
		out = append(out, c)
	}
	return string(out) + "Lock"
}
