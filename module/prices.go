package module

import (
	"fmt"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/llmgateway/caddy-llm-gateway/governance"
	"github.com/llmgateway/caddy-llm-gateway/providers/llm"
)

// priceRowJSON is a price row as GET /llm_gateway/prices and `caddy
// llm-gateway prices` show it: the prices-file format, so a row can be
// copied into a prices_file, plus in_force when superseded and future rows
// are listed too.
type priceRowJSON struct {
	governance.PriceFileRow
	InForce *bool `json:"in_force,omitempty"`
}

// pricesJSON is the answer of GET /llm_gateway/prices.
type pricesJSON struct {
	At   string         `json:"at"`
	Rows []priceRowJSON `json:"rows"`
}

// listPrices lists the rows of a table in force at at (every row with all),
// or only the rows that price model when model is set.
func listPrices(t *governance.PriceTable, model string, at time.Time, all bool) pricesJSON {
	out := pricesJSON{At: at.UTC().Format(time.RFC3339), Rows: []priceRowJSON{}}
	var only string
	if model != "" {
		p := t.LookupModelAt(model, llm.CanonicalModel(model), at)
		if p == nil {
			return out
		}
		only = p.Model
	}
	for _, r := range t.Rows(at, all) {
		if only != "" && r.Price.Model != only {
			continue
		}
		row := priceRowJSON{PriceFileRow: governance.FileRow(r)}
		if all {
			in := r.InForce
			row.InForce = &in
		}
		out.Rows = append(out.Rows, row)
	}
	return out
}

// servePrices answers GET /llm_gateway/prices[?model=<id>][&all=1][&at=<time>]:
// the price table in force (built-in rows merged with prices_file and
// price lines) of the first gateway handler.
func servePrices(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: fmt.Errorf("method not allowed")}
	}
	q := r.URL.Query()
	for k := range q {
		if k != "model" && k != "all" && k != "at" {
			return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf("unknown parameter %q (want model, all, at)", k)}
		}
	}
	st, err := newestGateway()
	if err != nil {
		return err
	}
	at := time.Now()
	if s := q.Get("at"); s != "" {
		t, err := parseAdminTime(s, st.location)
		if err != nil {
			return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf("at: %v", err)}
		}
		at = t
	}
	all := q.Get("all") == "1" || q.Get("all") == "true"
	return writeAdminJSON(w, listPrices(st.registry.Prices, q.Get("model"), at, all))
}
