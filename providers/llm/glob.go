package llm

// Glob is a model-name pattern: '*' matches any run of characters (including
// none, and including '/'), '?' matches one character, everything else
// matches itself. Model ids such as "anthropic/claude-3.5" are therefore
// matched as whole strings, unlike path.Match.
type Glob string

// Match reports whether name matches the pattern.
func (g Glob) Match(name string) bool {
	return globMatch(string(g), name)
}

// MatchAny reports whether name matches any of globs.
func MatchAny(globs []Glob, name string) bool {
	for _, g := range globs {
		if g.Match(name) {
			return true
		}
	}
	return false
}

// globMatch is the classic iterative wildcard match with single backtracking
// point, linear in practice and allocation-free.
func globMatch(pattern, name string) bool {
	p, n := 0, 0
	starP, starN := -1, 0
	for n < len(name) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == name[n]):
			p++
			n++
		case p < len(pattern) && pattern[p] == '*':
			starP, starN = p, n
			p++
		case starP >= 0:
			p = starP + 1
			starN++
			n = starN
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
