package sso

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/llmgateway/caddy-llm-gateway/governance"
)

// Bounds on what an identity provider (or an authenticating proxy) hands
// the gateway: names become key names, ledger rows and metric labels.
const (
	// MaxUserLen bounds a developer's key name, in bytes.
	MaxUserLen = 200
	// maxGroups is how many values of the team claim are considered.
	maxGroups = 256
)

// GroupTeam maps one group of the identity provider to a team.
type GroupTeam struct {
	Group, Team string
}

// Mapping turns what identifies a developer (a token's claims, or the
// user and groups an authenticating proxy established) into an Identity:
// the developer's key name and team.
type Mapping struct {
	// TeamMap maps groups to teams, in order: the first entry whose group
	// the developer belongs to chooses the team. Empty: the groups' values
	// are team names themselves, and the first that KnownTeam knows is
	// the team.
	TeamMap []GroupTeam
	// KnownTeam reports whether a team exists (nil: none does).
	KnownTeam func(string) bool
	// DefaultTeam is the team of a developer no group places ("": none).
	DefaultTeam string
	// RequireTeam refuses (Forbidden) a developer no group places when
	// there is no DefaultTeam; otherwise such a developer has no team.
	RequireTeam bool
}

// Resolve checks the developer's name and chooses the team from groups.
func (m *Mapping) Resolve(user string, groups []string) (Identity, error) {
	if err := CheckUser(user); err != nil {
		return Identity{}, err
	}
	id := Identity{User: user, Team: m.team(groups)}
	if id.Team == "" && m.RequireTeam {
		shown := groups
		if len(shown) > 5 {
			shown = shown[:5]
		}
		return Identity{}, &Error{Kind: Forbidden, Msg: fmt.Sprintf(
			"%s is in no group this gateway maps to a team (groups %s)", user, quoteList(shown, len(groups)))}
	}
	return id, nil
}

// team is the team groups choose, else DefaultTeam.
func (m *Mapping) team(groups []string) string {
	if len(groups) > maxGroups {
		groups = groups[:maxGroups]
	}
	if len(m.TeamMap) > 0 {
		for _, gt := range m.TeamMap {
			for _, g := range groups {
				if g == gt.Group {
					return gt.Team
				}
			}
		}
	} else if m.KnownTeam != nil {
		for _, g := range groups {
			if g != "" && m.KnownTeam(g) {
				return g
			}
		}
	}
	return m.DefaultTeam
}

// CheckUser refuses a developer name that cannot be a key name: empty,
// longer than MaxUserLen, or refused by governance.CheckName.
func CheckUser(user string) error {
	if user == "" {
		return &Error{Kind: Invalid, Msg: "no user name"}
	}
	if len(user) > MaxUserLen {
		return &Error{Kind: Invalid, Msg: fmt.Sprintf("the user name is longer than %d bytes", MaxUserLen)}
	}
	if err := governance.CheckName("key", user); err != nil {
		// The message quotes the name: keep it valid UTF-8 for the client.
		return &Error{Kind: Invalid, Msg: strings.ToValidUTF8(err.Error(), string(utf8.RuneError))}
	}
	return nil
}

// claimString reads a claim that must be a string.
func claimString(claims map[string]json.RawMessage, name string) (string, bool, error) {
	raw, ok := lookupClaim(claims, name)
	if !ok {
		return "", false, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", true, fmt.Errorf("claim %q is not a string", name)
	}
	return s, true, nil
}

// claimStrings reads a claim that is a string or an array of strings (a
// string holding commas or spaces is one value).
func claimStrings(claims map[string]json.RawMessage, name string) ([]string, error) {
	raw, ok := lookupClaim(claims, name)
	if !ok {
		return nil, nil
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []string{one}, nil
	}
	var many []any
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, fmt.Errorf("claim %q is neither a string nor an array of strings", name)
	}
	out := make([]string, 0, min(len(many), maxGroups))
	for _, v := range many {
		if s, ok := v.(string); ok {
			out = append(out, s)
			if len(out) == maxGroups {
				break
			}
		}
	}
	return out, nil
}

// lookupClaim finds a claim by its exact name ("email",
// "https://example.com/groups"), else by a dotted path into nested objects
// ("realm_access.roles").
func lookupClaim(claims map[string]json.RawMessage, name string) (json.RawMessage, bool) {
	if raw, ok := claims[name]; ok {
		return raw, !isNull(raw)
	}
	head, rest, nested := strings.Cut(name, ".")
	if !nested {
		return nil, false
	}
	raw, ok := claims[head]
	if !ok {
		return nil, false
	}
	var inner map[string]json.RawMessage
	if json.Unmarshal(raw, &inner) != nil {
		return nil, false
	}
	return lookupClaim(inner, rest)
}

func isNull(raw json.RawMessage) bool { return string(raw) == "null" }

// quoteList quotes a few values for a message, saying how many there were.
func quoteList(vals []string, total int) string {
	if total == 0 {
		return "none"
	}
	q := make([]string, len(vals))
	for i, v := range vals {
		if len(v) > 64 {
			v = v[:64] + "…"
		}
		q[i] = fmt.Sprintf("%q", strings.ToValidUTF8(v, string(utf8.RuneError)))
	}
	s := strings.Join(q, ", ")
	if total > len(vals) {
		s += fmt.Sprintf(" and %d more", total-len(vals))
	}
	return s
}
