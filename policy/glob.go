package policy

// globMatch reports whether name matches pattern, where * matches any run
// of characters (including none) and ? any single byte. Nothing else is
// special, so database, role and application names may hold any character.
func globMatch(pattern, name string) bool {
	px, nx := 0, 0
	starPx, starNx := -1, 0
	for px < len(pattern) || nx < len(name) {
		if px < len(pattern) {
			switch c := pattern[px]; c {
			case '*':
				starPx, starNx = px, nx+1
				px++
				continue
			case '?':
				if nx < len(name) {
					px++
					nx++
					continue
				}
			default:
				if nx < len(name) && name[nx] == c {
					px++
					nx++
					continue
				}
			}
		}
		if starPx >= 0 && starNx <= len(name) {
			px, nx = starPx+1, starNx
			starNx++
			continue
		}
		return false
	}
	return true
}
