package integration

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/llmgateway/caddy-llm-gateway/governance"
	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

// dashboardBenchEnv runs TestDashboardBenchmark: its value is the ledger's
// row count (1 for the default, one million).
const dashboardBenchEnv = "LLMGW_DASHBOARD_BENCH"

// fillBenchLedger writes rows Claude Code-like ledger rows spread over this
// month so far (200 keys in 20 teams, 5 models, 5,000 sessions, 2% of them
// refused) straight through the governance API.
func fillBenchLedger(t *testing.T, path string, rows int) {
	t.Helper()
	st, err := governance.OpenSQLiteStore(path, governance.SQLiteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	start := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	span := now.Sub(start)
	if span < 24*time.Hour { // the first of the month: spread over the last day
		start, span = now.Add(-24*time.Hour), 24*time.Hour
	}
	models := []string{"claude-sonnet-4-5", "claude-opus-4-5", "claude-haiku-4-5", "claude-sonnet-4-5", "claude-sonnet-4-5"}
	rng := rand.New(rand.NewPCG(1, 2))
	began := time.Now()
	for i := range rows {
		k := rng.IntN(200)
		r := &governance.Record{
			Time:      start.Add(time.Duration(rng.Int64N(int64(span)))),
			Key:       "key-" + strconv.Itoa(k),
			Team:      "team-" + strconv.Itoa(k%20),
			Customer:  "customer-" + strconv.Itoa(k%4),
			Provider:  "anthropic",
			Model:     models[rng.IntN(len(models))],
			Surface:   "anthropic.messages",
			Status:    200,
			Stream:    true,
			SessionID: fmt.Sprintf("session-%04d", rng.IntN(5000)),
			RequestID: strconv.Itoa(i),
			Usage: llm.Usage{InputTokens: int64(rng.IntN(50)), OutputTokens: int64(rng.IntN(2000)),
				CacheReadTokens: int64(rng.IntN(150_000)), CacheWrite5mTokens: int64(rng.IntN(3000)), Complete: true},
			Duration: time.Duration(rng.IntN(30_000)) * time.Millisecond,
		}
		r.Cost = governance.Money(r.Usage.InputTokens*3000 + r.Usage.OutputTokens*15000 + r.Usage.CacheReadTokens*300 + r.Usage.CacheWrite5mTokens*3750)
		r.RequestedModel = r.Model
		if i%50 == 0 {
			r.Status, r.Rejection, r.Provider, r.Usage, r.Cost = 402, "budget", "", llm.Usage{}, 0
		}
		st.Record(r)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("ledger: %d rows written in %v", rows, time.Since(began).Round(time.Millisecond))
}

// rollUpBenchLedger brings the ledger's rollups up to now in the gateway's
// zone (UTC), as a running gateway keeps them (a step a minute), so that
// the benchmark measures the page on a live ledger rather than the first
// roll-up of a file filled offline.
func rollUpBenchLedger(t *testing.T, path string) {
	t.Helper()
	st, err := governance.OpenSQLiteStore(path, governance.SQLiteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st.SetLocation(time.UTC)
	began := time.Now()
	if err := st.Maintain(context.Background(), time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("ledger rolled up to now in %v", time.Since(began).Round(time.Millisecond))
}

// TestDashboardBenchmark measures the first render of the overview, in
// chromium, on a ledger of a million rows (LLMGW_DASHBOARD_BENCH=1, or the
// row count): from navigation to the view drawn, the page's own
// performance.now() and the wall clock, five cold loads, plus each of the
// overview's queries alone. A benchmark, not an assertion: it only logs
// (docs/benchmarks.md, "Dashboard").
func TestDashboardBenchmark(t *testing.T) {
	env := os.Getenv(dashboardBenchEnv)
	if env == "" {
		t.Skipf("set %s=1 (a million ledger rows) or a row count to run it", dashboardBenchEnv)
	}
	rows := 1_000_000
	if n, err := strconv.Atoi(env); err == nil && n > 1 {
		rows = n
	}
	// LLMGW_DASHBOARD_BENCH_DB keeps the filled ledger for the next run
	// (filling a million rows takes minutes); a file there is reused as is.
	db := os.Getenv("LLMGW_DASHBOARD_BENCH_DB")
	if db == "" {
		db = filepath.Join(t.TempDir(), "ledger.db")
	}
	if _, err := os.Stat(db); err != nil {
		fillBenchLedger(t, db, rows)
	} else {
		t.Logf("reusing the ledger %s", db)
	}
	rollUpBenchLedger(t, db)
	m := newMockAnthropic(t)
	g := startGateway(t, gatewayOptions{Block: dashboardBlock(m, "store sqlite "+db), SiteExtra: dashboardSite(t)})
	b := newChromium(t)

	// Each query of the overview alone, as the page sends it.
	now := time.Now().UTC()
	month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	monthQ := "&from=" + month.Format(time.DateOnly) + "&to=" + month.AddDate(0, 1, 0).Format(time.DateOnly)
	from := governance.PeriodWeek.Start(now, time.UTC)
	if month.Before(from) {
		from = month
	}
	weekQ := "&from=" + from.Format(time.DateOnly) + "&to=" + month.AddDate(0, 1, 0).Format(time.DateOnly)
	// The overview's two reads first, then single dimensions for comparison.
	for _, q := range []string{"group_by=day,team,model,provider" + weekQ, "group_by=key&limit=10" + monthQ,
		"group_by=day" + weekQ, "group_by=team" + monthQ, "group_by=day,model" + monthQ, "group_by=day,team,model,provider" + weekQ} {
		req, _ := http.NewRequest("GET", g.URL+"/spend/api/usage?"+q, nil)
		req.Header.Set("Authorization", dashboardAuth())
		began := time.Now()
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		t.Logf("query %-36s %5d ms, %d bytes", q[:strings.Index(q, "&from")], time.Since(began).Milliseconds(), n)
	}

	var wall, page, own []float64
	for i := 0; i < 5; i++ {
		b.do(chromedp.Navigate("about:blank"))
		began := time.Now()
		b.do(chromedp.Navigate(g.URL + "/spend/#/overview"))
		b.waitView()
		wall = append(wall, float64(time.Since(began).Milliseconds()))
		page = append(page, eval[float64](b, `Number(document.getElementById('view').dataset.renderedMs)`))
		// The page's own work: from the last API answer to the view drawn.
		own = append(own, eval[float64](b, `Number(document.getElementById('view').dataset.renderedMs) -
			Math.max(...performance.getEntriesByType('resource').filter((e) => e.name.includes('/api/')).map((e) => e.responseEnd))`))
	}
	slices.Sort(own)
	slices.Sort(wall)
	slices.Sort(page)
	t.Logf("overview first render on %d rows: median %.0f ms in the page (min %.0f, max %.0f), %.0f ms wall clock (min %.0f)",
		rows, page[2], page[0], page[4], wall[2], wall[0])
	t.Logf("the page's own work after the last API answer: median %.0f ms (max %.0f)", own[2], own[4])
	if errs := b.consoleErrors(); len(errs) > 0 {
		t.Errorf("console errors: %v", errs)
	}
}
