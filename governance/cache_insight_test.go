package governance

import (
	"testing"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

func TestCacheInsight(t *testing.T) {
	// cache_write_5m $3.75, cache_write_1h $6 per million.
	price := &Price{Rates: Rates{Input: 3_000_000_000, Output: 15_000_000_000, CacheWrite5m: 3_750_000_000, CacheWrite1h: 6_000_000_000, CacheRead: 300_000_000}}
	t0 := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	rec := func(at time.Duration, key, session string, u llm.Usage) *Record {
		return &Record{Time: t0.Add(at), Key: key, Model: "claude-sonnet-4-5", SessionID: session, Usage: u}
	}
	var b InsightBuilder
	// Session s1: a 1h write of 10,000 read by the next turn 10 minutes on.
	b.Add(rec(0, "alice", "s1", llm.Usage{InputTokens: 10, CacheWrite1hTokens: 10_000}), price)
	b.Add(rec(10*time.Minute, "alice", "s1", llm.Usage{InputTokens: 10, CacheReadTokens: 10_000, CacheWrite5mTokens: 500}), price)
	// Session s2: a 1h write never read (the next turn is two hours later).
	b.Add(rec(0, "alice", "s2", llm.Usage{InputTokens: 10, CacheWrite1hTokens: 20_000}), price)
	b.Add(rec(2*time.Hour, "alice", "s2", llm.Usage{InputTokens: 10, CacheReadTokens: 20_000}), price)
	// Another key's read does not read alice's write.
	b.Add(rec(0, "bob", "s3", llm.Usage{InputTokens: 10, CacheWrite1hTokens: 5_000}), price)
	b.Add(rec(time.Minute, "carol", "s3", llm.Usage{CacheReadTokens: 5_000}), price)
	got := b.Result()
	want := CacheInsight{
		InputTokens:         10 + 10_000 + 10 + 10_000 + 500 + 10 + 20_000 + 10 + 20_000 + 10 + 5_000 + 5_000,
		CacheReadTokens:     35_000,
		CacheWriteCost:      Money(35_000*6_000_000_000/1_000_000 + 500*3_750_000_000/1_000_000),
		Write1hTokens:       35_000,
		Write1hUnreadTokens: 25_000,
		Write1hUnreadCost:   Money(25_000 * 6_000_000_000 / 1_000_000),
	}
	want.CacheReadShare = float64(want.CacheReadTokens) / float64(want.InputTokens)
	if got != want {
		t.Errorf("insight\n%+v\nwant\n%+v", got, want)
	}
	var empty InsightBuilder
	if r := empty.Result(); r != (CacheInsight{}) {
		t.Errorf("empty insight %+v", r)
	}
}
