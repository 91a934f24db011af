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

func TestInsightReport(t *testing.T) {
	price := &Price{Rates: Rates{CacheWrite1h: 6_000_000_000, CacheWrite5m: 3_750_000_000}}
	t0 := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	b := NewInsightReport([]Dim{DimTeam}, nil)
	// payments writes and reads; research writes and never reads.
	b.Add(&Record{Time: t0, Key: "a", Team: "payments", Model: "m", SessionID: "s", Usage: llm.Usage{CacheWrite1hTokens: 1000}}, price)
	b.Add(&Record{Time: t0.Add(time.Minute), Key: "a", Team: "payments", Model: "m", SessionID: "s", Usage: llm.Usage{CacheReadTokens: 1000}}, price)
	b.Add(&Record{Time: t0, Key: "r", Team: "research", Model: "m", SessionID: "x", Usage: llm.Usage{CacheWrite1hTokens: 500}}, nil)
	b.Add(&Record{Time: t0, Key: "r", Team: "research", Model: "m", SessionID: "y", Usage: llm.Usage{CacheWrite1hTokens: 2000}}, price)
	rep := b.Report()
	if len(rep.Rows) != 2 || rep.Rows[0].Values[0] != "research" || rep.Rows[1].Values[0] != "payments" {
		t.Fatalf("rows %+v", rep.Rows)
	}
	r := rep.Rows[0].Insight
	if r.Write1hUnreadTokens != 2500 || r.Write1hUnreadCost != 12_000_000 || r.CacheWriteCost != 12_000_000 {
		t.Errorf("research %+v", r)
	}
	if p := rep.Rows[1].Insight; p.Write1hUnreadTokens != 0 || p.CacheReadShare != 0.5 || p.CacheWriteCost != 6_000_000 {
		t.Errorf("payments %+v", p)
	}
	if rep.Total.Write1hTokens != 3500 || rep.Total.Write1hUnreadTokens != 2500 {
		t.Errorf("total %+v", rep.Total)
	}
}
