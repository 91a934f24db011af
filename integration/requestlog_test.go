package integration

import "sync"

// requestLog is what every mock upstream keeps of the requests it saw;
// embedded, it gives the mock its requests and count methods.
type requestLog[T any] struct {
	logMu sync.Mutex
	seen  []T
}

// record keeps one request.
func (l *requestLog[T]) record(r T) {
	l.logMu.Lock()
	defer l.logMu.Unlock()
	l.seen = append(l.seen, r)
}

// requests is every request seen so far, in order.
func (l *requestLog[T]) requests() []T {
	l.logMu.Lock()
	defer l.logMu.Unlock()
	return append([]T(nil), l.seen...)
}

// count is how many requests were seen.
func (l *requestLog[T]) count() int {
	l.logMu.Lock()
	defer l.logMu.Unlock()
	return len(l.seen)
}
