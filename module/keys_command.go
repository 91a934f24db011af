package module

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/llmgateway/caddy-llm-gateway/governance"
)

// keysCommand is `caddy llm-gateway keys create|list|show|update|rotate|revoke|audit`,
// a client of the admin API's live key endpoints.
func keysCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "keys",
		Short: "Create, list, rotate and revoke live keys through the admin API",
		Long: `Manage live keys through a running server's admin API (docs/keys.md):
keys created here are stored in the ledger database and survive reloads and
restarts; Caddyfile keys are listed but read-only.

  caddy llm-gateway keys create alice --team payments --budget 5/day --rate-limit 60/minute
  caddy llm-gateway keys list
  caddy llm-gateway keys rotate alice --grace 24h
  caddy llm-gateway keys revoke alice`,
	}
	c.PersistentFlags().String("address", "localhost:2019", "the server's admin address")
	c.PersistentFlags().String("as", "", "your admin identity for the audit trail (sent as X-Llm-Gateway-Admin; a proxy in front of the admin endpoint may overwrite it)")
	c.PersistentFlags().StringArray("header", nil, `an extra request header "Name: value" (e.g. the authenticating proxy's credentials); repeatable`)
	c.PersistentFlags().Bool("json", false, "print the admin API's JSON")

	create := &cobra.Command{
		Use:   "create <name>",
		Short: "Create a key; its secret is printed once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := map[string]any{"name": args[0]}
			if err := limitFlags(cmd, body); err != nil {
				return err
			}
			var out keyJSON
			if err := keysCall(cmd, http.MethodPost, "/llm_gateway/keys", body, &out); err != nil {
				return err
			}
			return printKeySecret(cmd, out, "created")
		},
	}
	addLimitFlags(create)

	update := &cobra.Command{
		Use:   "update <name>",
		Short: "Change a key's team, limits, expiry; --disable or --enable it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := map[string]any{}
			if err := limitFlags(cmd, body); err != nil {
				return err
			}
			dis, _ := cmd.Flags().GetBool("disable")
			en, _ := cmd.Flags().GetBool("enable")
			switch {
			case dis && en:
				return fmt.Errorf("--disable and --enable together")
			case dis:
				body["disabled"] = true
			case en:
				body["disabled"] = false
			}
			if len(body) == 0 {
				return fmt.Errorf("nothing to change: give --team, --budget, --rate-limit, --token-limit, --model, --expires, --max-tokens-cap, --disable or --enable")
			}
			var out keyJSON
			if err := keysCall(cmd, http.MethodPatch, keyPath(args[0]), body, &out); err != nil {
				return err
			}
			return printKeys(cmd, []keyJSON{out})
		},
	}
	addLimitFlags(update)
	update.Flags().Bool("disable", false, "refuse every request of the key (403) until --enable")
	update.Flags().Bool("enable", false, "undo --disable")

	list := &cobra.Command{
		Use:   "list",
		Short: "List every key (Caddyfile and live) with its source and budgets",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out struct {
				Keys []keyJSON `json:"keys"`
			}
			if err := keysCall(cmd, http.MethodGet, "/llm_gateway/keys", nil, &out); err != nil {
				return err
			}
			return printKeys(cmd, out.Keys)
		},
	}
	show := &cobra.Command{
		Use:   "show <name>",
		Short: "Show one key",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out keyJSON
			if err := keysCall(cmd, http.MethodGet, keyPath(args[0]), nil, &out); err != nil {
				return err
			}
			return printKeys(cmd, []keyJSON{out})
		},
	}
	rotate := &cobra.Command{
		Use:   "rotate <name>",
		Short: "Give a key a new secret; the old one keeps working for --grace",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			grace, _ := cmd.Flags().GetString("grace")
			var out keyJSON
			if err := keysCall(cmd, http.MethodPost, keyPath(args[0])+"/rotate", map[string]any{"grace": grace}, &out); err != nil {
				return err
			}
			return printKeySecret(cmd, out, "rotated")
		},
	}
	rotate.Flags().String("grace", "0s", "how long the old secret keeps working (e.g. 24h, 30m; 0s: not at all)")
	revoke := &cobra.Command{
		Use:   "revoke <name>",
		Short: "Revoke a key: every secret answers 401 at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out keyJSON
			if err := keysCall(cmd, http.MethodDelete, keyPath(args[0]), nil, &out); err != nil {
				return err
			}
			if asJSON(cmd) {
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked %s at %s\n", out.Name, out.Revoked)
			return nil
		},
	}
	audit := &cobra.Command{
		Use:   "audit",
		Short: "List changes to live keys, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			if k, _ := cmd.Flags().GetString("key"); k != "" {
				q.Set("key", k)
			}
			if n, _ := cmd.Flags().GetInt("limit"); n > 0 {
				q.Set("limit", strconv.Itoa(n))
			}
			path := "/llm_gateway/audit"
			if len(q) > 0 {
				path += "?" + q.Encode()
			}
			var out struct {
				Entries []auditJSON `json:"entries"`
			}
			if err := keysCall(cmd, http.MethodGet, path, nil, &out); err != nil {
				return err
			}
			if asJSON(cmd) {
				return nil
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "TIME\tACTION\tKEY\tBY")
			for _, e := range out.Entries {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.Time, e.Action, e.Key, e.Actor)
			}
			return tw.Flush()
		},
	}
	audit.Flags().String("key", "", "only this key's changes")
	audit.Flags().Int("limit", 0, "at most this many entries (default 100)")
	c.AddCommand(create, list, show, update, rotate, revoke, audit)
	return c
}

func asJSON(cmd *cobra.Command) bool {
	v, _ := cmd.Flags().GetBool("json")
	return v
}

func keyPath(name string) string { return "/llm_gateway/keys/" + url.PathEscape(name) }

// addLimitFlags adds the flags create and update share.
func addLimitFlags(c *cobra.Command) {
	c.Flags().String("team", "", "the key's team (defined in the Caddyfile)")
	c.Flags().String("customer", "", "the key's customer, for a key without a team")
	c.Flags().StringArray("budget", nil, "a budget <usd>/<hour|day|week|month|total>, e.g. 5/day; repeatable (update: replaces them; \"none\" removes them)")
	c.Flags().StringArray("rate-limit", nil, "a request rate limit <n>/<second|minute|hour|day>, e.g. 60/minute; repeatable")
	c.Flags().StringArray("token-limit", nil, "a token rate limit <n>/<second|minute|hour|day>; repeatable")
	c.Flags().StringArray("model", nil, "a model id or glob the key may use; repeatable")
	c.Flags().String("expires", "", "when the key stops working: RFC 3339 (2027-01-01T00:00:00Z) or a duration from now (90d, 12h)")
	c.Flags().Int64("max-tokens-cap", 0, "refuse requests asking for more output tokens than this")
}

// limitFlags copies the flags given into a request body.
func limitFlags(cmd *cobra.Command, body map[string]any) error {
	f := cmd.Flags()
	if f.Changed("team") {
		v, _ := f.GetString("team")
		body["team"] = v
	}
	if f.Changed("customer") {
		v, _ := f.GetString("customer")
		body["customer"] = v
	}
	if f.Changed("budget") {
		vals, _ := f.GetStringArray("budget")
		budgets := []governance.BudgetJSON{}
		for _, v := range vals {
			if v == "none" {
				continue
			}
			usd, period, ok := strings.Cut(v, "/")
			if !ok {
				return fmt.Errorf("--budget %q: want <usd>/<period>, e.g. 5/day", v)
			}
			budgets = append(budgets, governance.BudgetJSON{USD: strings.TrimPrefix(usd, "$"), Period: period})
		}
		body["budgets"] = budgets
	}
	if f.Changed("rate-limit") || f.Changed("token-limit") {
		rates := []governance.RateLimitJSON{}
		for _, flag := range []struct{ name, unit string }{{"rate-limit", "requests"}, {"token-limit", "tokens"}} {
			vals, _ := f.GetStringArray(flag.name)
			for _, v := range vals {
				n, per, ok := strings.Cut(v, "/")
				limit, err := strconv.ParseInt(n, 10, 64)
				if !ok || err != nil {
					return fmt.Errorf("--%s %q: want <n>/<window>, e.g. 60/minute", flag.name, v)
				}
				rates = append(rates, governance.RateLimitJSON{Limit: limit, Unit: flag.unit, Per: per})
			}
		}
		body["rate_limits"] = rates
	}
	if f.Changed("model") {
		v, _ := f.GetStringArray("model")
		body["models"] = v
	}
	if f.Changed("expires") {
		v, _ := f.GetString("expires")
		if v != "" {
			if _, err := time.Parse(time.RFC3339, v); err != nil {
				d, derr := parseCLIDuration(v)
				if derr != nil {
					return fmt.Errorf("--expires %q: want an RFC 3339 time or a duration such as 90d", v)
				}
				v = time.Now().Add(d).UTC().Format(time.RFC3339)
			}
		}
		body["expires"] = v
	}
	if f.Changed("max-tokens-cap") {
		v, _ := f.GetInt64("max-tokens-cap")
		body["max_tokens_cap"] = v
	}
	return nil
}

// parseCLIDuration reads a Go duration or whole days ("90d").
func parseCLIDuration(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("bad days")
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("bad duration")
	}
	return d, nil
}

// keysCall sends one request to the admin API and decodes its answer into
// out (printing it raw with --json). An error answer becomes the error.
func keysCall(cmd *cobra.Command, method, path string, body any, out any) error {
	addr, _ := cmd.Flags().GetString("address")
	base := addr
	if !strings.HasPrefix(base, "http://") && !strings.HasPrefix(base, "https://") {
		base = "http://" + base
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(cmd.Context(), method, strings.TrimSuffix(base, "/")+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if as, _ := cmd.Flags().GetString("as"); as != "" {
		req.Header.Set("X-Llm-Gateway-Admin", as)
	}
	hdrs, _ := cmd.Flags().GetStringArray("header")
	for _, h := range hdrs {
		name, value, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(name) == "" {
			return fmt.Errorf("--header %q: want \"Name: value\"", h)
		}
		req.Header.Set(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("asking the server's admin API at %s: %v", addr, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, e.Error)
		}
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(data)))
	}
	if asJSON(cmd) {
		_, err := cmd.OutOrStdout().Write(data)
		return err
	}
	return json.Unmarshal(data, out)
}

// printKeySecret prints a created or rotated key's secret, once.
func printKeySecret(cmd *cobra.Command, k keyJSON, what string) error {
	if asJSON(cmd) {
		return nil
	}
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "%s key %s\n", what, k.Name)
	fmt.Fprintf(w, "secret: %s\n", k.Secret)
	for _, s := range k.Secrets[min(1, len(k.Secrets)):] {
		if s.ValidUntil != "" {
			fmt.Fprintf(w, "the previous secret (sha256 %s…) works until %s\n", s.SHA256Prefix, s.ValidUntil)
		}
	}
	fmt.Fprintf(w, "\nThe secret is shown only now. For Claude Code:\n\texport ANTHROPIC_AUTH_TOKEN=%s\n", k.Secret)
	return nil
}

// printKeys prints keys as a table.
func printKeys(cmd *cobra.Command, keys []keyJSON) error {
	if asJSON(cmd) {
		return nil
	}
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSOURCE\tTEAM\tCUSTOMER\tBUDGETS\tRATE LIMITS\tSTATE\tSPENT")
	for _, k := range keys {
		var budgets, rates []string
		for _, b := range k.Budgets {
			budgets = append(budgets, fmt.Sprintf("%s/%s (%s left)", governance.FormatUSD(governance.Money(b.LimitNanoUSD)), b.Period,
				governance.FormatUSD(governance.Money(max(b.LimitNanoUSD-b.SpentNanoUSD-b.ReservedNanoUSD, 0)))))
		}
		for _, r := range k.RateLimits {
			rates = append(rates, fmt.Sprintf("%d %s/%s", r.Limit, r.Unit, r.Per))
		}
		state := "active"
		switch {
		case k.Revoked != "":
			state = "revoked " + k.Revoked
		case k.Disabled:
			state = "disabled"
		case k.Expires != "":
			state = "expires " + k.Expires
		}
		if k.Problem != "" {
			state += " (" + k.Problem + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.Name, dash(k.Source), dash(k.Team), dash(k.Customer),
			dash(strings.Join(budgets, ", ")), dash(strings.Join(rates, ", ")), state,
			governance.FormatUSD(governance.Money(k.Spend.CostNanoUSD)))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
