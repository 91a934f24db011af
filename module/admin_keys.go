package module

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/llmgateway/caddy-llm-gateway/governance"
)

// Live key admin endpoints (docs/keys.md):
//
//	GET    /llm_gateway/keys                 every key (config and live), with its source
//	POST   /llm_gateway/keys                 create: {"name", "team"|"customer", "budgets", "rate_limits",
//	                                         "models", "expires", "disabled", "max_tokens_cap"} → 201 + "secret" once
//	GET    /llm_gateway/keys/<name>          one key (revoked live keys included)
//	PATCH  /llm_gateway/keys/<name>          change the same fields (not the name)
//	DELETE /llm_gateway/keys/<name>          revoke
//	POST   /llm_gateway/keys/<name>/rotate   {"grace": "24h"} → a new secret; the old one works for grace
//	GET    /llm_gateway/audit[?key=][&limit=][&before=]   changes, newest first
//
// Config keys are read-only here (409). The admin identity recorded in the
// audit trail comes from AdminIdentityHeaders.

// AdminIdentityHeaders are the request headers, in order, whose first
// non-empty value names the admin making a change in the audit trail: what
// an authenticating proxy in front of Caddy's admin endpoint sets
// (oauth2-proxy, Authelia, Pomerium, forward_auth's copy_headers). The
// proxy must overwrite them. Without one, a TLS client certificate's
// subject (remote admin) is used, else "anonymous".
var AdminIdentityHeaders = []string{"X-Llm-Gateway-Admin", "X-Forwarded-User", "X-Forwarded-Email", "X-Auth-Request-Email", "X-Auth-Request-User", "Remote-User"}

// maxKeyRequestBody bounds a key request's body.
const maxKeyRequestBody = 64 << 10

// MaxRotationGrace is the longest grace period a rotation may give the
// secret it replaces.
const MaxRotationGrace = 90 * 24 * time.Hour

// keyCreateJSON is the body of POST /llm_gateway/keys.
type keyCreateJSON struct {
	Name         string                     `json:"name"`
	Team         string                     `json:"team"`
	Customer     string                     `json:"customer"`
	Budgets      []governance.BudgetJSON    `json:"budgets"`
	RateLimits   []governance.RateLimitJSON `json:"rate_limits"`
	Models       []string                   `json:"models"`
	Expires      string                     `json:"expires"`
	Disabled     bool                       `json:"disabled"`
	MaxTokensCap int64                      `json:"max_tokens_cap"`
}

// keyPatchJSON is the body of PATCH /llm_gateway/keys/<name>: absent
// fields stay as they are.
type keyPatchJSON struct {
	Name         *string                     `json:"name"`
	Team         *string                     `json:"team"`
	Customer     *string                     `json:"customer"`
	Budgets      *[]governance.BudgetJSON    `json:"budgets"`
	RateLimits   *[]governance.RateLimitJSON `json:"rate_limits"`
	Models       *[]string                   `json:"models"`
	Expires      *string                     `json:"expires"`
	Disabled     *bool                       `json:"disabled"`
	MaxTokensCap *int64                      `json:"max_tokens_cap"`
}

// keyRotateJSON is the body of POST /llm_gateway/keys/<name>/rotate.
type keyRotateJSON struct {
	Grace string `json:"grace"`
}

// keyJSON is one key in the live key endpoints: its listing entry and the
// live key's history. Never a secret, except Secret right after a create
// or rotate.
type keyJSON struct {
	entityJSON
	MaxTokensCap int64  `json:"max_tokens_cap,omitempty"`
	Created      string `json:"created,omitempty"`
	Updated      string `json:"updated,omitempty"`
	CreatedBy    string `json:"created_by,omitempty"`
	Revoked      string `json:"revoked,omitempty"`
	// Problem says why a live key is disabled by this config (its team is
	// gone).
	Problem string `json:"problem,omitempty"`
	// Secrets are the key's secrets by the start of their hash, with when
	// the rotated-out ones stop working.
	Secrets []secretJSON `json:"secrets,omitempty"`
	// Secret is the new secret, once: in the answer to create and rotate.
	Secret string `json:"secret,omitempty"`
}

type secretJSON struct {
	SHA256Prefix string `json:"sha256_prefix"`
	Created      string `json:"created"`
	ValidUntil   string `json:"valid_until,omitempty"`
}

// auditJSON is one audit entry.
type auditJSON struct {
	ID     int64           `json:"id"`
	Time   string          `json:"time"`
	Actor  string          `json:"actor"`
	Action string          `json:"action"`
	Key    string          `json:"key"`
	Detail json.RawMessage `json:"detail"`
}

// serveKeys answers /llm_gateway/keys: GET lists, POST creates.
func serveKeys(w http.ResponseWriter, r *http.Request) error {
	switch r.Method {
	case http.MethodGet:
		refreshLiveKeys(r)
		return serveEntities(governance.ScopeKey)(w, r)
	case http.MethodPost:
		return createKey(w, r)
	}
	return methodNotAllowed("GET, POST")
}

// serveKey answers /llm_gateway/keys/<name>[/rotate].
func serveKey(w http.ResponseWriter, r *http.Request) error {
	rest := strings.TrimPrefix(r.URL.EscapedPath(), "/llm_gateway/keys/")
	seg, action, _ := strings.Cut(rest, "/")
	name, err := url.PathUnescape(seg)
	if err != nil || name == "" {
		return badRequest("the path must be /llm_gateway/keys/<name> with the name URL-escaped")
	}
	st, err := newestGateway()
	if err != nil {
		return err
	}
	switch action {
	case "":
		switch r.Method {
		case http.MethodGet:
			return showKey(w, r, st, name)
		case http.MethodPatch:
			return patchKey(w, r, st, name)
		case http.MethodDelete:
			lk, err := st.keys.Revoke(r.Context(), name, adminIdentity(r))
			if err != nil {
				return keyError(err)
			}
			return writeKey(w, r, st, http.StatusOK, lk, "")
		}
		return methodNotAllowed("GET, PATCH, DELETE")
	case "rotate":
		if r.Method != http.MethodPost {
			return methodNotAllowed("POST")
		}
		return rotateKey(w, r, st, name)
	}
	return caddy.APIError{HTTPStatus: http.StatusNotFound, Err: fmt.Errorf("unknown key action %q (want /llm_gateway/keys/<name> or /llm_gateway/keys/<name>/rotate)", action)}
}

func methodNotAllowed(allow string) error {
	return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: fmt.Errorf("method not allowed (allowed: %s)", allow)}
}

// decodeStrict reads a JSON body into v, refusing unknown fields, trailing
// data and bodies over maxKeyRequestBody. An empty body is allowed when
// emptyOK.
func decodeStrict(r *http.Request, v any, emptyOK bool) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxKeyRequestBody+1))
	if err != nil {
		return badRequest("reading the body: %v", err)
	}
	if len(body) > maxKeyRequestBody {
		return badRequest("the body is larger than %d bytes", maxKeyRequestBody)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if emptyOK {
			return nil
		}
		return badRequest("a JSON object is required")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("malformed JSON: %v", err)
	}
	if dec.More() {
		return badRequest("malformed JSON: data after the object")
	}
	return nil
}

// parseLimits turns the JSON fields into limits.
func parseLimits(budgets []governance.BudgetJSON, rates []governance.RateLimitJSON, models []string, expires string) (governance.Limits, error) {
	var l governance.Limits
	var err error
	if l.Budgets, err = governance.ParseBudgets(budgets); err != nil {
		return l, badRequest("%v", err)
	}
	if l.RateLimits, err = governance.ParseRateLimits(rates); err != nil {
		return l, badRequest("%v", err)
	}
	for _, m := range models {
		if m == "" || !utf8.ValidString(m) || len(m) > 200 {
			return l, badRequest("models: each entry must be a model id or glob of at most 200 bytes")
		}
	}
	l.Models = globs(models)
	if l.Expires, err = governance.ParseExpires(expires); err != nil {
		return l, badRequest("%v", err)
	}
	return l, nil
}

func createKey(w http.ResponseWriter, r *http.Request) error {
	st, err := newestGateway()
	if err != nil {
		return err
	}
	var in keyCreateJSON
	if err := decodeStrict(r, &in, false); err != nil {
		return err
	}
	if in.Name == "" {
		return badRequest("name is required")
	}
	l, err := parseLimits(in.Budgets, in.RateLimits, in.Models, in.Expires)
	if err != nil {
		return err
	}
	l.Disabled = in.Disabled
	lk, secret, err := st.keys.Create(r.Context(), governance.LiveKeySpec{
		Name: in.Name, Team: in.Team, Customer: in.Customer, Limits: l, MaxTokensCap: in.MaxTokensCap,
	}, adminIdentity(r))
	if err != nil {
		return keyError(err)
	}
	return writeKey(w, r, st, http.StatusCreated, lk, secret)
}

func patchKey(w http.ResponseWriter, r *http.Request, st *state, name string) error {
	var in keyPatchJSON
	if err := decodeStrict(r, &in, false); err != nil {
		return err
	}
	if in.Name != nil && *in.Name != name {
		return badRequest("name cannot change (create a new key and revoke this one)")
	}
	p := governance.LiveKeyPatch{Team: in.Team, Customer: in.Customer, Disabled: in.Disabled, MaxTokensCap: in.MaxTokensCap, Models: in.Models}
	var expires string
	var budgets []governance.BudgetJSON
	var rates []governance.RateLimitJSON
	var models []string
	if in.Expires != nil {
		expires = *in.Expires
	}
	if in.Budgets != nil {
		budgets = *in.Budgets
	}
	if in.RateLimits != nil {
		rates = *in.RateLimits
	}
	if in.Models != nil {
		models = *in.Models
	}
	l, err := parseLimits(budgets, rates, models, expires)
	if err != nil {
		return err
	}
	if in.Budgets != nil {
		p.Budgets = &l.Budgets
	}
	if in.RateLimits != nil {
		p.RateLimits = &l.RateLimits
	}
	if in.Expires != nil {
		p.Expires = &l.Expires
	}
	lk, err := st.keys.Update(r.Context(), name, p, adminIdentity(r))
	if err != nil {
		return keyError(err)
	}
	return writeKey(w, r, st, http.StatusOK, lk, "")
}

func rotateKey(w http.ResponseWriter, r *http.Request, st *state, name string) error {
	var in keyRotateJSON
	if err := decodeStrict(r, &in, true); err != nil {
		return err
	}
	var grace time.Duration
	if in.Grace != "" {
		var err error
		if grace, err = caddy.ParseDuration(in.Grace); err != nil {
			return badRequest("grace: want a duration such as 24h or 30m, got %q", in.Grace)
		}
		if grace < 0 || grace > MaxRotationGrace {
			return badRequest("grace must be between 0 and %s", MaxRotationGrace)
		}
	}
	lk, secret, err := st.keys.Rotate(r.Context(), name, grace, adminIdentity(r))
	if err != nil {
		return keyError(err)
	}
	return writeKey(w, r, st, http.StatusOK, lk, secret)
}

// refreshLiveKeys reads the changes other instances made before an admin
// read, so it shows the fleet's keys as they are now (the poll catches up
// within LiveKeyPollInterval anyway); a store that does not answer leaves
// the keys as last read.
func refreshLiveKeys(r *http.Request) {
	st, err := newestGateway()
	if err != nil || st.keys.Directory() == nil {
		return
	}
	if _, err := st.keys.Directory().Refresh(r.Context()); err != nil {
		st.logger.Warn("reading live key changes for the admin API", zap.Error(err))
	}
}

func showKey(w http.ResponseWriter, r *http.Request, st *state, name string) error {
	refreshLiveKeys(r)
	if k := st.keys.Registry().Key(name); k != nil {
		e, err := entity(r.Context(), st, governance.Scope{Kind: governance.ScopeKey, Name: name}, &k.Limits)
		if err != nil {
			return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: fmt.Errorf("reading budgets: %v", err)}
		}
		fillKey(st, k, &e)
		return writeAdminJSON(w, keyJSON{entityJSON: e, MaxTokensCap: k.MaxTokensCap})
	}
	var lk *governance.LiveKey
	if d := st.keys.Directory(); d != nil {
		lk = d.Lookup(name)
	}
	if lk == nil {
		return caddy.APIError{HTTPStatus: http.StatusNotFound, Err: fmt.Errorf("no key named %q", name)}
	}
	return writeKey(w, r, st, http.StatusOK, lk, "")
}

// writeKey answers with a live key (and its new secret, once).
func writeKey(w http.ResponseWriter, r *http.Request, st *state, status int, lk *governance.LiveKey, secret string) error {
	scope := governance.Scope{Kind: governance.ScopeKey, Name: lk.Name}
	lim := lk.Limits
	if !lk.Active() {
		lim.Budgets = nil // a revoked key has no counters to read
	}
	e, err := entity(r.Context(), st, scope, &lim)
	if err != nil {
		// The change is made: answer it without the budgets' state.
		e = entityJSON{Name: lk.Name, Spend: toUsageJSON(st.store.ledger.Totals(scope))}
	}
	e.Team, e.Customer, e.Source = lk.Team, lk.Customer, lk.Source
	if k := st.keys.Key(lk.Name); k != nil && k.CustomerName() != "" {
		e.Customer = k.CustomerName() // the team's
	}
	out := keyJSON{
		entityJSON: e, MaxTokensCap: lk.MaxTokensCap, CreatedBy: lk.CreatedBy, Secret: secret,
		Created: lk.Created.UTC().Format(time.RFC3339), Updated: lk.Updated.UTC().Format(time.RFC3339),
		Problem: st.keys.Problem(lk.Name),
	}
	if !lk.Active() {
		out.Revoked = lk.Revoked.UTC().Format(time.RFC3339)
	}
	for _, s := range lk.Secrets {
		sj := secretJSON{SHA256Prefix: s.Hash.String()[:12], Created: s.Created.UTC().Format(time.RFC3339)}
		if !s.NotAfter.IsZero() {
			sj.ValidUntil = s.NotAfter.UTC().Format(time.RFC3339)
		}
		out.Secrets = append(out.Secrets, sj)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// keyError maps the key layer's errors to statuses.
func keyError(err error) error {
	switch {
	case errors.Is(err, governance.ErrInvalidKey), errors.Is(err, governance.ErrKeyExists):
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: err}
	case errors.Is(err, governance.ErrKeyReadOnly):
		return caddy.APIError{HTTPStatus: http.StatusConflict, Err: fmt.Errorf("%v; change it in the Caddyfile", err)}
	case errors.Is(err, governance.ErrKeyNotFound):
		return caddy.APIError{HTTPStatus: http.StatusNotFound, Err: err}
	}
	return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: fmt.Errorf("the key store did not answer: %v", err)}
}

// adminIdentity names the admin making a change: the first identity
// header, a TLS client certificate's subject, or "anonymous". Bounded and
// valid UTF-8.
func adminIdentity(r *http.Request) string {
	id := ""
	for _, h := range AdminIdentityHeaders {
		if v := strings.TrimSpace(r.Header.Get(h)); v != "" {
			id = v
			break
		}
	}
	if id == "" && r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		id = "cert:" + r.TLS.PeerCertificates[0].Subject.String()
	}
	if id == "" {
		return "anonymous"
	}
	id = strings.ToValidUTF8(id, "\uFFFD")
	id = strings.Map(func(c rune) rune {
		if c < 0x20 || c == 0x7f {
			return -1
		}
		return c
	}, id)
	if len(id) > 200 {
		id = strings.ToValidUTF8(id[:200], "")
	}
	return id
}

// auditParams are GET /llm_gateway/audit's parameters.
var auditParams = map[string]bool{"key": true, "limit": true, "before": true}

// serveAudit answers GET /llm_gateway/audit: changes to live keys, newest
// first; next_before pages on.
func serveAudit(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return methodNotAllowed("GET")
	}
	st, err := newestGateway()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	for p := range q {
		if !auditParams[p] {
			return badRequest("unknown parameter %q (want key, limit, before)", p)
		}
	}
	aq := governance.AuditQuery{Key: q.Get("key")}
	if s := q.Get("limit"); s != "" {
		if aq.Limit, err = strconv.Atoi(s); err != nil || aq.Limit <= 0 || aq.Limit > 1000 {
			return badRequest("limit must be an integer from 1 to 1000, got %q", s)
		}
	}
	if s := q.Get("before"); s != "" {
		if aq.Before, err = strconv.ParseInt(s, 10, 64); err != nil || aq.Before <= 0 {
			return badRequest("before must be a positive audit id, got %q", s)
		}
	}
	d := st.keys.Directory()
	if d == nil {
		return writeAdminJSON(w, map[string]any{"entries": []auditJSON{}})
	}
	entries, err := d.Store().Audit(r.Context(), aq)
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: fmt.Errorf("reading the audit trail: %v", err)}
	}
	out := make([]auditJSON, len(entries))
	for i, e := range entries {
		detail := json.RawMessage(e.Detail)
		if !json.Valid(detail) {
			detail = json.RawMessage("{}")
		}
		out[i] = auditJSON{ID: e.ID, Time: e.At.UTC().Format(time.RFC3339Nano), Actor: e.Actor, Action: e.Action, Key: e.Key, Detail: detail}
	}
	resp := map[string]any{"entries": out}
	limit := aq.Limit
	if limit == 0 {
		limit = 100
	}
	if len(entries) == limit {
		resp["next_before"] = entries[len(entries)-1].ID
	}
	return writeAdminJSON(w, resp)
}
