package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

func sha256hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

type usageRow struct {
	Group              string  `json:"group"`
	Requests           int64   `json:"requests"`
	InputTokens        int64   `json:"input_tokens"`
	OutputTokens       int64   `json:"output_tokens"`
	CacheReadTokens    int64   `json:"cache_read_tokens"`
	CacheWrite5mTokens int64   `json:"cache_write_5m_tokens"`
	CacheWrite1hTokens int64   `json:"cache_write_1h_tokens"`
	CostUSD            float64 `json:"cost_usd"`
	CostNanoUSD        int64   `json:"cost_nano_usd"`
}

type adminKey struct {
	Name     string   `json:"name"`
	Team     string   `json:"team"`
	Customer string   `json:"customer"`
	Spend    usageRow `json:"spend"`
}

func adminKeys(g *gateway) map[string]adminKey {
	var doc struct {
		Keys []adminKey `json:"keys"`
	}
	g.adminGet("/llm_gateway/keys", &doc)
	out := map[string]adminKey{}
	for _, k := range doc.Keys {
		out[k.Name] = k
	}
	return out
}

func adminUsage(g *gateway, groupBy string) map[string]usageRow {
	var doc struct {
		Rows []usageRow `json:"rows"`
	}
	g.adminGet("/llm_gateway/usage?group_by="+groupBy, &doc)
	out := map[string]usageRow{}
	for _, r := range doc.Rows {
		out[r.Group] = r
	}
	return out
}

type adminBudget struct {
	Period          string  `json:"period"`
	LimitNanoUSD    int64   `json:"limit_nano_usd"`
	SpentNanoUSD    int64   `json:"spent_nano_usd"`
	ReservedNanoUSD int64   `json:"reserved_nano_usd"`
	RemainingUSD    float64 `json:"remaining_usd"`
	ResetsAt        string  `json:"resets_at"`
}

type adminEntity struct {
	Name     string        `json:"name"`
	Team     string        `json:"team"`
	Customer string        `json:"customer"`
	Budgets  []adminBudget `json:"budgets"`
	Spend    usageRow      `json:"spend"`
}

func adminEntities(g *gateway, kind string) map[string]adminEntity {
	var doc map[string][]adminEntity
	g.adminGet("/llm_gateway/"+kind, &doc)
	out := map[string]adminEntity{}
	for _, e := range doc[kind] {
		out[e.Name] = e
	}
	return out
}

func adminKeysFull(g *gateway) map[string]adminEntity { return adminEntities(g, "keys") }
func adminTeams(g *gateway) map[string]adminEntity    { return adminEntities(g, "teams") }

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
