package integration

import (
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"golang.org/x/crypto/bcrypt"

	_ "github.com/llmgateway/caddy-llm-gateway/module/dashboard"
)

// chromiumPath is Debian's chromium, which scripts/test.sh installs.
const chromiumPath = "/usr/bin/chromium"

// The dashboard's basic_auth credentials in these tests.
const (
	dashboardUser     = "lead"
	dashboardPassword = "dashboard-password-for-tests"
)

// Virtual keys of the dashboard traffic besides alice and bob.
const (
	carolKey = "sk-llmgw-carol-virtual-key-UVWXYZ0123"
	daveKey  = "sk-llmgw-dave-virtual-key-456789ABCD"
	erinKey  = "sk-llmgw-erin-virtual-key-EFGHIJKLMN"
)

// dashboardBlock is a gateway with two teams, keys with budgets and rate
// limits, and a customer.
func dashboardBlock(m *mockAnthropic, store string) string {
	return fmt.Sprintf(`%s
		provider anthropic {
			type anthropic
			api_key %s
			base_url %s
		}
		customer acme {
			budget 1000 usd per month
		}
		team platform {
			customer acme
			budget 100 usd per month
			rate_limit 600 requests per minute
		}
		team payments {
			customer acme
			budget 50 usd per day
		}
		key alice {
			secret %s
			team platform
			budget 5 usd per day
			budget 40 usd per month
		}
		key carol {
			secret %s
			team platform
			rate_limit 200000 tokens per minute
		}
		key dave {
			secret %s
			team payments
			budget 0.001 usd per day
		}
		key erin {
			secret %s
			team payments
			rate_limit 2 requests per minute
		}
		key bob {
			secret %s
			customer acme
			models claude-haiku-*
		}
		metrics_label project header X-Project`, store, m.APIKey, m.URL(), aliceKey, carolKey, daveKey, erinKey, bobKey)
}

// dashboardSite mounts the dashboard at /spend/ behind basic_auth.
func dashboardSite(t testing.TB) string {
	hash, err := bcrypt.GenerateFromPassword([]byte(dashboardPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`handle_path /spend/* {
		basic_auth {
			%s %s
		}
		llm_gateway_dashboard
	}`, dashboardUser, hash)
}

func dashboardAuth() string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(dashboardUser+":"+dashboardPassword))
}

// dashboardTraffic sends Claude Code-like traffic: sessions, several models,
// streams, and requests refused by a budget and by a rate limit. It returns
// how many requests the gateway refused.
func dashboardTraffic(t *testing.T, g *gateway) (refused int) {
	t.Helper()
	ctx := context.Background()
	send := func(key, model, session, scenario string, stream bool, maxTokens int64) error {
		opts := []option.RequestOption{option.WithAuthToken(key), option.WithHeader("X-Project", "apollo")}
		if session != "" {
			opts = append(opts, option.WithHeader("X-Claude-Code-Session-Id", session))
		}
		if scenario != "" {
			opts = append(opts, option.WithHeader("X-Mock-Scenario", scenario))
		}
		c := newClient(g, "", opts...)
		p := messageParams(model)
		if maxTokens > 0 {
			p.MaxTokens = maxTokens
		}
		if !stream {
			_, err := c.Messages.New(ctx, p)
			return err
		}
		s := c.Messages.NewStreaming(ctx, p)
		for s.Next() {
		}
		return s.Err()
	}
	ok := func(err error) {
		t.Helper()
		must(t, err)
	}
	// alice: a long Claude Code session on Sonnet and Opus, cache-heavy.
	for i := 0; i < 4; i++ {
		ok(send(aliceKey, "claude-sonnet-4-5", "session-alice-1", "", i%2 == 0, 0))
	}
	ok(send(aliceKey, "claude-opus-4-5", "session-alice-1", "", true, 0))
	ok(send(aliceKey, "claude-sonnet-4-5", "session-alice-2", "small", false, 0))
	// carol: Haiku, another session, and a request without a session.
	ok(send(carolKey, "claude-haiku-4-5", "session-carol-1", "", false, 0))
	ok(send(carolKey, "claude-haiku-4-5", "session-carol-1", "small", true, 0))
	ok(send(carolKey, "claude-sonnet-4-5", "", "small", false, 0))
	// bob: a key without a team.
	ok(send(bobKey, "claude-haiku-4-5", "", "small", false, 0))
	// erin: 2 requests a minute, the third is refused (429).
	for i := 0; i < 3; i++ {
		if err := send(erinKey, "claude-haiku-4-5", "", "small", false, 0); err != nil {
			refused++
		}
	}
	// dave: a $0.001 daily budget, spent after a few small requests (402).
	for i := 0; i < 6; i++ {
		if err := send(daveKey, "claude-sonnet-4-5", "", "small", false, 10); err != nil {
			refused++
		}
	}
	if refused < 2 {
		t.Fatalf("only %d requests refused; the traffic should hit a budget and a rate limit", refused)
	}
	return refused
}

// dashboardOutputDir is where screenshots go: $TEST_OUTPUT_DIR/<test> or
// the test's temporary directory.
func dashboardOutputDir(t testing.TB) string {
	dir := t.TempDir()
	if d := os.Getenv("TEST_OUTPUT_DIR"); d != "" {
		dir = filepath.Join(d, strings.ReplaceAll(t.Name(), "/", "_"))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// browser is a headless chromium tab with basic auth credentials, collecting
// every console error and uncaught exception.
type chromiumTab struct {
	t    testing.TB
	ctx  context.Context
	mu   sync.Mutex
	errs []string
}

func newChromium(t testing.TB) *chromiumTab {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("%s is missing (scripts/test.sh installs Debian's chromium): %v", chromiumPath, err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox, // chromium runs as root here
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		// The machine's closed network refuses chromium's own connections.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-features", "Translate,MediaRouter,OptimizationHints"),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	b := &chromiumTab{t: t, ctx: ctx}
	// Start the browser, then listen to its console before any page loads.
	if _, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
		Headers: network.Headers{"Authorization": dashboardAuth()}}); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				b.mu.Lock()
				b.errs = append(b.errs, fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line))
				b.mu.Unlock()
			}
		}
	}()
	return b
}

// consoleErrors are the errors seen so far.
func (b *chromiumTab) consoleErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errs...)
}

func (b *chromiumTab) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatal(err)
	}
}

// eval evaluates a JavaScript expression and decodes its JSON value.
func eval[T any](b *chromiumTab, js string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v", js, err)
	}
	return v
}

// waitView waits until the page rendered the current hash, and fails on a
// view that could not load.
func (b *chromiumTab) waitView() {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Minute) // the benchmark's ledger is large
	defer cancel()
	poll := chromedp.Poll[string](`(() => { const v = document.getElementById('view');
		return v && v.dataset.route === location.hash && v.dataset.state !== 'loading' ? v.dataset.state : false })()`,
		chromedp.WithPollingTimeout(0), chromedp.WithPollingInterval(10*time.Millisecond))
	state, err := chromedp.Run(ctx, poll)
	for i := 0; err != nil && strings.Contains(err.Error(), "Cannot find context") && i < 3; i++ {
		// The poll began in the document a navigation was replacing.
		state, err = chromedp.Run(ctx, poll)
	}
	if err != nil {
		b.t.Fatalf("waiting for the view: %v", err)
	}
	if state != "ready" {
		msg := eval[string](b, `document.getElementById('view').textContent`)
		b.t.Fatalf("view %s: %s", eval[string](b, `location.hash`), msg)
	}
}

// goTo opens a view by its hash and waits for it.
func (b *chromiumTab) goTo(hash string) {
	b.t.Helper()
	b.do(chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`location.hash = %q`, hash)))
	b.waitView()
}

// click follows a link and waits for the view it opens.
func (b *chromiumTab) click(css string) {
	b.t.Helper()
	b.do(chromedp.Click(chromedp.CSS(css)))
	b.waitView()
}

func (b *chromiumTab) screenshot(dir, name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", path)
}

// tableRow is a row of a dashboard table as the page shows it.
type tableRow struct {
	Name string `json:"name"` // the first cell
	Cost string `json:"cost"` // the cost cell's text
	Nano string `json:"nano"` // the cost cell's data-nano
}

func tableRows(b *chromiumTab, table string) []tableRow {
	b.t.Helper()
	return eval[[]tableRow](b, fmt.Sprintf(`[...document.querySelectorAll('[data-table=%q] tbody tr:not(.total)')].map((tr) => {
		const c = tr.querySelector('[data-col=cost_nano_usd]');
		return { name: tr.cells[0].textContent, cost: c ? c.textContent : '', nano: c ? c.dataset.nano : '' };
	})`, table))
}

// cents is a nano-dollar amount as the page shows it: dollars to the cent,
// half up, with thousands separators.
func cents(nano int64) string {
	c := (nano + 5_000_000) / 10_000_000
	whole := strconv.FormatInt(c/100, 10)
	for i := len(whole) - 3; i > 0; i -= 3 {
		whole = whole[:i] + "," + whole[i:]
	}
	return fmt.Sprintf("$%s.%02d", whole, c%100)
}

// apiReport is a usage report of the admin API.
type apiReport struct {
	Rows  []map[string]any `json:"rows"`
	Total struct {
		Requests        int64 `json:"requests"`
		InputTokens     int64 `json:"input_tokens"`
		CacheReadTokens int64 `json:"cache_read_tokens"`
		CW5m            int64 `json:"cache_write_5m_tokens"`
		CW1h            int64 `json:"cache_write_1h_tokens"`
		CostNanoUSD     int64 `json:"cost_nano_usd"`
	} `json:"total"`
}

func nanoOf(v any) int64 {
	switch n := v.(type) {
	case float64:
		return int64(n)
	case json.Number:
		i, _ := n.Int64()
		return i
	}
	return 0
}

// checkTable compares a dashboard table with an admin API report, row by
// row (by the report's dim), to the nano-dollar and to the cent shown.
func checkTable(t *testing.T, b *chromiumTab, table string, rep apiReport, dim string) {
	t.Helper()
	got := tableRows(b, table)
	want := map[string]int64{}
	for _, r := range rep.Rows {
		name, _ := r[dim].(string)
		if name == "" {
			name = "(none)"
		}
		want[name] = nanoOf(r["cost_nano_usd"])
	}
	if len(got) != len(want) {
		t.Errorf("table %s has %d rows, the API %d: %+v vs %v", table, len(got), len(want), got, want)
	}
	for _, r := range got {
		w, ok := want[r.Name]
		if !ok {
			t.Errorf("table %s: row %q not in the API's report", table, r.Name)
			continue
		}
		if r.Nano != strconv.FormatInt(w, 10) || r.Cost != cents(w) {
			t.Errorf("table %s row %s: shows %s (%s nano), API %d nano (%s)", table, r.Name, r.Cost, r.Nano, w, cents(w))
		}
	}
}

// metric is a card's figure: its data-nano and its text.
func metric(b *chromiumTab, name string) (nano, text string) {
	b.t.Helper()
	v := eval[[]string](b, fmt.Sprintf(`(() => { const c = document.querySelector('[data-metric=%q]');
		return c ? [c.dataset.nano || c.dataset.count || '', c.querySelector('.value').textContent] : ['', ''] })()`, name))
	return v[0], v[1]
}

func checkMetric(t *testing.T, b *chromiumTab, name string, want int64) {
	t.Helper()
	nano, text := metric(b, name)
	if nano != strconv.FormatInt(want, 10) || text != cents(want) {
		t.Errorf("card %s shows %s (%s nano), the API %d nano (%s)", name, text, nano, want, cents(want))
	}
}

// TestDashboard drives the dashboard in a real chromium against a real Caddy
// filled with traffic through the mock provider: every view loads without
// console errors, its totals equal the admin API's, the teams → keys
// drill-down navigates, CSV exports are exact, basic_auth protects every
// path, and a screenshot of each view is written.
func TestDashboard(t *testing.T) {
	m := newMockAnthropic(t)
	g := startGateway(t, gatewayOptions{Block: dashboardBlock(m, "store sqlite "+t.TempDir()+"/ledger.db"), SiteExtra: dashboardSite(t)})
	refused := dashboardTraffic(t, g)
	out := dashboardOutputDir(t)

	// basic_auth protects the page and its API; the gateway's API is untouched.
	for _, path := range []string{"/spend/", "/spend/app.js", "/spend/api/usage?group_by=key", "/spend/api/keys"} {
		resp, err := http.Get(g.URL + path)
		must(t, err)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s without credentials: %d, want 401", path, resp.StatusCode)
		}
		req, _ := http.NewRequest("GET", g.URL+path, nil)
		req.SetBasicAuth(dashboardUser, "wrong")
		resp, err = http.DefaultClient.Do(req)
		must(t, err)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s with a wrong password: %d, want 401", path, resp.StatusCode)
		}
	}

	now := time.Now().UTC() // the gateway's timezone is UTC
	monthStart := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).Format(time.DateOnly)
	nextMonth := time.Date(now.Year(), now.Month()+1, 1, 0, 0, 0, 0, time.UTC).Format(time.DateOnly)
	today := now.Format(time.DateOnly)
	tomorrow := now.AddDate(0, 0, 1).Format(time.DateOnly)
	month := "from=" + monthStart + "&to=" + nextMonth
	report := func(q string) apiReport {
		t.Helper()
		var r apiReport
		g.adminGet("/llm_gateway/usage?"+q, &r)
		return r
	}
	var ctxDoc struct {
		Endpoints []string `json:"endpoints"`
	}
	b := newChromium(t)

	t.Run("overview", func(t *testing.T) {
		b.do(chromedp.Navigate(g.URL + "/spend/"))
		b.waitView()
		monthRep := report("group_by=team,model,provider&" + month)
		checkMetric(t, b, "month", monthRep.Total.CostNanoUSD)
		checkMetric(t, b, "range", monthRep.Total.CostNanoUSD)
		checkMetric(t, b, "today", report("group_by=day&from="+today+"&to="+tomorrow).Total.CostNanoUSD)
		checkTable(t, b, "by-team", report("group_by=team&"+month), "team")
		checkTable(t, b, "by-model", report("group_by=model&"+month), "model")
		checkTable(t, b, "by-provider", report("group_by=provider&"+month), "provider")
		checkTable(t, b, "top-keys", report("group_by=key&limit=10&"+month), "key")
		if n := eval[int](b, `document.querySelectorAll('[data-chart] svg rect').length`); n == 0 {
			t.Error("the overview draws no chart bars")
		}
		b.screenshot(out, "overview")
	})

	t.Run("csv export", func(t *testing.T) {
		dir := t.TempDir()
		ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
		defer cancel()
		events := chromedp.BrowserEvents(ctx, browser.DownloadProgress)
		if _, err := chromedp.CallBrowser(b.ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
			Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir, EventsEnabled: new(true)}); err != nil {
			t.Fatal(err)
		}
		b.do(chromedp.Click(chromedp.CSS(`[data-csv="by-team"]`)))
		for ev, err := range events {
			if err != nil {
				t.Fatal(err)
			}
			if ev.State == browser.DownloadProgressStateCompleted {
				break
			}
		}
		f, err := os.Open(filepath.Join(dir, "by-team.csv"))
		must(t, err)
		defer f.Close()
		lines, err := csv.NewReader(f).ReadAll()
		must(t, err)
		api := report("group_by=team&" + month)
		if len(lines) != len(api.Rows)+1 || strings.Join(lines[0], ",") != "team,requests,tokens,cost_usd,cost_nano_usd,share" {
			t.Fatalf("CSV: %q", lines)
		}
		want := map[string]int64{}
		for _, r := range api.Rows {
			want[r["team"].(string)] = nanoOf(r["cost_nano_usd"])
		}
		for _, l := range lines[1:] {
			w := want[l[0]]
			if l[4] != strconv.FormatInt(w, 10) || l[3] != fmt.Sprintf("%d.%09d", w/1e9, w%1e9) {
				t.Errorf("CSV row %q: want %d nano", l, w)
			}
		}
	})

	t.Run("teams drill-down", func(t *testing.T) {
		b.goTo("#/teams")
		checkTable(t, b, "teams", report("group_by=team&team=?*&"+month), "team") // keys without a team have their own table
		b.screenshot(out, "teams")

		b.click(`[data-table="teams"] a[href^="#/teams/platform"]`)
		if h := eval[string](b, `document.querySelector('main h2').textContent`); h != "Team platform" {
			t.Errorf("drill-down to a team shows %q", h)
		}
		checkTable(t, b, "team-keys", report("group_by=key&team=platform&"+month), "key")
		var teams struct {
			Teams []adminEntity `json:"teams"`
		}
		g.adminGet("/llm_gateway/teams", &teams)
		for _, e := range teams.Teams {
			if e.Name != "platform" {
				continue
			}
			spent := eval[[]string](b, `[...document.querySelectorAll('main > .grid2 .budget')].map((x) => x.dataset.spentNano)`)
			if len(spent) != len(e.Budgets) {
				t.Errorf("team budgets shown %v, API %+v", spent, e.Budgets)
			}
			for i, bu := range e.Budgets {
				if i < len(spent) && spent[i] != strconv.FormatInt(bu.SpentNanoUSD, 10) {
					t.Errorf("team budget %d: spent %s shown, API %d", i, spent[i], bu.SpentNanoUSD)
				}
			}
		}
		b.screenshot(out, "team")

		b.click(`[data-table="team-keys"] a[href^="#/keys/alice"]`)
		if h := eval[string](b, `document.querySelector('main h2').textContent`); h != "Key alice" {
			t.Errorf("drill-down to a key shows %q", h)
		}
		checkMetric(t, b, "range", report("group_by=key&key=alice&"+month).Total.CostNanoUSD)
		keys := adminKeysFull(g)
		spent := eval[[]string](b, `[...document.querySelectorAll('main > .grid2 .budget')].map((x) => x.dataset.spentNano)`)
		if a := keys["alice"]; len(spent) != len(a.Budgets) || len(spent) != 2 {
			t.Errorf("alice's budgets shown %v, API %+v", spent, a.Budgets)
		} else {
			for i, bu := range a.Budgets {
				if spent[i] != strconv.FormatInt(bu.SpentNanoUSD, 10) {
					t.Errorf("alice's budget %d: spent %s shown, API %d", i, spent[i], bu.SpentNanoUSD)
				}
			}
		}
		b.screenshot(out, "key")
	})

	t.Run("sessions", func(t *testing.T) {
		b.goTo("#/sessions")
		sessions := report("group_by=session&session=?*&" + month)
		checkTable(t, b, "sessions", sessions, "session")
		b.screenshot(out, "sessions")
		b.click(`[data-table="sessions"] a[href^="#/sessions/session-alice-1"]`)
		checkMetric(t, b, "session", report("group_by=session&session=session-alice-1").Total.CostNanoUSD)
		b.screenshot(out, "session")
	})

	g.adminGet("/llm_gateway/usage?group_by=key", &struct{}{}) // flushed
	resp, err := http.DefaultClient.Do(func() *http.Request {
		r, _ := http.NewRequest("GET", g.URL+"/spend/api/context", nil)
		r.Header.Set("Authorization", dashboardAuth())
		return r
	}())
	must(t, err)
	must(t, json.NewDecoder(resp.Body).Decode(&ctxDoc))
	resp.Body.Close()
	hasRequests := false
	for _, e := range ctxDoc.Endpoints {
		hasRequests = hasRequests || e == "requests"
	}

	t.Run("requests", func(t *testing.T) {
		b.goTo("#/requests")
		b.screenshot(out, "requests")
		if !hasRequests {
			t.Fatalf("the dashboard cannot read the request log: endpoints %v", ctxDoc.Endpoints)
		}
		all := report("group_by=key&" + month)
		if n := len(tableRows(b, "requests")); int64(n) != min(50, all.Total.Requests) {
			t.Errorf("request log shows %d rows, want %d", n, min(50, all.Total.Requests))
		}
		b.goTo("#/requests?key=dave")
		for _, r := range eval[[]string](b, `[...document.querySelectorAll('[data-table=requests] tbody td[data-col=key]')].map((td) => td.textContent)`) {
			if r != "dave" {
				t.Errorf("key=dave filter shows a row of %q", r)
			}
		}
	})

	t.Run("refusals", func(t *testing.T) {
		b.goTo("#/refusals")
		b.screenshot(out, "refusals")
		if n, _ := metric(b, "refusals"); n != strconv.Itoa(refused) {
			t.Errorf("refusals card shows %s, the traffic had %d", n, refused)
		}
		keys := eval[[]string](b, `[...document.querySelectorAll('[data-table="refusals-by-key"] tbody tr:not(.total) td[data-col=key]')].map((td) => td.textContent)`)
		sort.Strings(keys)
		if strings.Join(keys, ",") != "dave,erin" {
			t.Errorf("refused keys %v, want dave and erin", keys)
		}
	})

	t.Run("cache efficiency", func(t *testing.T) {
		b.goTo("#/cache")
		checkTable(t, b, "cache-by-key", report("group_by=key&"+month), "key")
		checkTable(t, b, "cache-by-team", report("group_by=team&"+month), "team")
		tot := report("group_by=key&" + month).Total
		prompt := tot.InputTokens + tot.CacheReadTokens + tot.CW5m + tot.CW1h
		want := fmt.Sprintf("%.1f%%", float64(int64(1000*float64(tot.CacheReadTokens)/float64(prompt)+0.5))/10)
		if _, text := metric(b, "read-share"); text != want {
			t.Errorf("cache read share %s, want %s", text, want)
		}
		// Cache-write spend and unread 1-hour writes are the cache insight's.
		var insight struct {
			Total map[string]any `json:"total"`
		}
		g.adminGet("/llm_gateway/cache_insight?group_by=key&"+month, &insight)
		for _, f := range []string{"cache_write_cost_nano_usd", "cache_write_1h_unread_cost_nano_usd"} {
			checkMetric(t, b, f, nanoOf(insight.Total[f]))
		}
		if nanoOf(insight.Total["cache_write_cost_nano_usd"]) == 0 {
			t.Error("the traffic wrote no prompt cache: the check above proves nothing")
		}
		b.screenshot(out, "cache")
	})

	t.Run("range picker", func(t *testing.T) {
		b.goTo("#/overview?range=today")
		checkMetric(t, b, "range", report("group_by=key&from="+today+"&to="+tomorrow).Total.CostNanoUSD)
		yesterday := now.AddDate(0, 0, -1).Format(time.DateOnly)
		b.goTo("#/overview?range=custom&from=" + yesterday + "&to=" + yesterday)
		checkMetric(t, b, "range", 0)
		if v := eval[string](b, `document.getElementById('range').value`); v != "custom" {
			t.Errorf("range picker shows %q for a custom range", v)
		}
		// Picking a range in the bar makes a shareable URL of it.
		b.do(chromedp.Evaluate[chromedp.Void](`(() => { const s = document.getElementById('range'); s.value = '7d';
			s.dispatchEvent(new Event('change')) })()`))
		b.waitView()
		if h := eval[string](b, `location.hash`); h != "#/overview?range=7d" {
			t.Errorf("picking the last 7 days: hash %q", h)
		}
		checkMetric(t, b, "range", report("group_by=key&from="+now.AddDate(0, 0, -6).Format(time.DateOnly)+"&to="+tomorrow).Total.CostNanoUSD)
	})

	if errs := b.consoleErrors(); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
}
