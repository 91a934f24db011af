package governance

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testRegistry has team payments ($10 daily, customer acme) and the config
// key "ops" with secret "sk-ops".
func testRegistry(t testing.TB) *Registry {
	t.Helper()
	reg, err := NewRegistry(
		[]CustomerSpec{{Name: "acme"}, {Name: "other"}},
		[]TeamSpec{{Name: "payments", Customer: "acme", Limits: Limits{Budgets: []Budget{{Limit: 10 * Dollar, Period: PeriodDay}}}}, {Name: "solo"}},
		[]KeySpec{{Name: "ops", Hash: HashSecret("sk-ops"), Team: "payments"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func newTestKeyring(t testing.TB, store KeyStore) (*Keyring, *fakeClock) {
	t.Helper()
	clk := &fakeClock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	dir, err := NewDirectory(context.Background(), store, clk.now)
	if err != nil {
		t.Fatal(err)
	}
	return NewKeyring(testRegistry(t), dir), clk
}

func TestKeyringCreateAuthenticate(t *testing.T) {
	kr, _ := newTestKeyring(t, NewMemoryKeyStore())
	ctx := context.Background()
	lk, secret, err := kr.Create(ctx, LiveKeySpec{Name: "alice", Team: "payments",
		Limits: Limits{Budgets: []Budget{{Limit: 5 * Dollar, Period: PeriodDay}}}}, "admin@corp")
	if err != nil {
		t.Fatal(err)
	}
	if lk.Source != SourceAPI || lk.CreatedBy != "admin@corp" || len(lk.Secrets) != 1 {
		t.Fatalf("created %+v", lk)
	}
	k := kr.Authenticate(secret)
	if k == nil || k.Name != "alice" || k.TeamName() != "payments" || k.CustomerName() != "acme" {
		t.Fatalf("authenticate: %+v", k)
	}
	if got := len(k.Levels()); got != 3 {
		t.Fatalf("levels: %d", got)
	}
	if kr.Authenticate("sk-ops").Name != "ops" {
		t.Fatal("config key lost")
	}
	if kr.Authenticate("sk-wrong") != nil || kr.Authenticate("") != nil {
		t.Fatal("wrong secret accepted")
	}
	if kr.Source("alice") != SourceAPI || kr.Source("ops") != SourceConfig || kr.Source("nobody") != "" {
		t.Fatal("sources")
	}
	names := []string{}
	for _, k := range kr.Keys() {
		names = append(names, k.Name)
	}
	if len(names) != 2 || names[0] != "alice" || names[1] != "ops" {
		t.Fatalf("keys %v", names)
	}
	levels := kr.AllLevels()
	found := false
	for _, l := range levels {
		if l.Scope == (Scope{ScopeKey, "alice"}) {
			found = true
		}
	}
	if !found {
		t.Fatalf("AllLevels misses alice: %v", levels)
	}
}

func TestKeyringBadInput(t *testing.T) {
	kr, _ := newTestKeyring(t, NewMemoryKeyStore())
	ctx := context.Background()
	if _, _, err := kr.Create(ctx, LiveKeySpec{Name: "bob"}, ""); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		spec LiveKeySpec
		want error
	}{
		{"unknown team", LiveKeySpec{Name: "x", Team: "nope"}, ErrInvalidKey},
		{"unknown customer", LiveKeySpec{Name: "x", Customer: "nope"}, ErrInvalidKey},
		{"customer differs", LiveKeySpec{Name: "x", Team: "payments", Customer: "other"}, ErrInvalidKey},
		{"over the team cap", LiveKeySpec{Name: "x", Team: "payments", Limits: Limits{Budgets: []Budget{{Limit: 11 * Dollar, Period: PeriodDay}}}}, ErrInvalidKey},
		{"over the max", LiveKeySpec{Name: "x", Limits: Limits{Budgets: []Budget{{Limit: MaxBudget + 1, Period: PeriodDay}}}}, ErrInvalidKey},
		{"zero budget", LiveKeySpec{Name: "x", Limits: Limits{Budgets: []Budget{{Limit: 0, Period: PeriodDay}}}}, ErrInvalidKey},
		{"two day budgets", LiveKeySpec{Name: "x", Limits: Limits{Budgets: []Budget{{Limit: 1, Period: PeriodDay}, {Limit: 2, Period: PeriodDay}}}}, ErrInvalidKey},
		{"control char", LiveKeySpec{Name: "x\ny"}, ErrInvalidKey},
		{"empty name", LiveKeySpec{}, ErrInvalidKey},
		{"config name", LiveKeySpec{Name: "ops"}, ErrKeyExists},
		{"duplicate", LiveKeySpec{Name: "bob"}, ErrKeyExists},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := kr.Create(ctx, tc.spec, "")
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	// Nothing half-applied: only bob exists.
	if n := len(kr.Directory().List()); n != 1 {
		t.Fatalf("%d live keys", n)
	}
	// A budget within the cap is fine; a patch over it is refused whole.
	team := "payments"
	over := []Budget{{Limit: 20 * Dollar, Period: PeriodDay}}
	if _, err := kr.Update(ctx, "bob", LiveKeyPatch{Team: &team, Budgets: &over}, ""); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("patch over cap: %v", err)
	}
	if lk := kr.Directory().Lookup("bob"); lk.Team != "" || len(lk.Budgets) != 0 {
		t.Fatalf("half applied: %+v", lk)
	}
	for _, f := range []func() error{
		func() error { _, err := kr.Update(ctx, "ops", LiveKeyPatch{}, ""); return err },
		func() error { _, _, err := kr.Rotate(ctx, "ops", time.Hour, ""); return err },
		func() error { _, err := kr.Revoke(ctx, "ops", ""); return err },
	} {
		if err := f(); !errors.Is(err, ErrKeyReadOnly) {
			t.Fatalf("config key write: %v", err)
		}
	}
	if _, err := kr.Update(ctx, "ghost", LiveKeyPatch{}, ""); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("unknown: %v", err)
	}
}

func TestKeyringRotateGraceRevoke(t *testing.T) {
	kr, clk := newTestKeyring(t, NewMemoryKeyStore())
	ctx := context.Background()
	_, old, err := kr.Create(ctx, LiveKeySpec{Name: "alice"}, "")
	if err != nil {
		t.Fatal(err)
	}
	_, fresh, err := kr.Rotate(ctx, "alice", time.Hour, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if kr.Authenticate(old) == nil || kr.Authenticate(fresh) == nil {
		t.Fatal("both secrets work during the grace period")
	}
	clk.add(59 * time.Minute)
	if kr.Authenticate(old) == nil {
		t.Fatal("old secret stopped before its grace ended")
	}
	clk.add(time.Minute)
	if kr.Authenticate(old) != nil {
		t.Fatal("old secret works after its grace")
	}
	if kr.Authenticate(fresh) == nil {
		t.Fatal("new secret lost")
	}
	// Rotating without grace cuts the current secret at once.
	_, third, err := kr.Rotate(ctx, "alice", 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if kr.Authenticate(fresh) != nil || kr.Authenticate(third) == nil {
		t.Fatal("grace 0")
	}
	if n := len(kr.Directory().Lookup("alice").Secrets); n != 1 {
		t.Fatalf("expired secrets kept: %d", n)
	}
	if _, err := kr.Revoke(ctx, "alice", "admin"); err != nil {
		t.Fatal(err)
	}
	if kr.Authenticate(third) != nil || kr.Key("alice") != nil {
		t.Fatal("revoked key works")
	}
	if _, err := kr.Revoke(ctx, "alice", ""); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("revoke twice: %v", err)
	}
	// The audit trail, newest first.
	audit, err := kr.Directory().Store().Audit(ctx, AuditQuery{Key: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, a := range audit {
		actions = append(actions, a.Action)
	}
	if got := len(actions); got != 4 || actions[0] != "revoke" || actions[3] != "create" {
		t.Fatalf("audit %v", actions)
	}
	// An admin may create the name anew.
	if _, _, err := kr.Create(ctx, LiveKeySpec{Name: "alice"}, ""); err != nil {
		t.Fatal(err)
	}
}

func TestKeyringProvision(t *testing.T) {
	store := NewMemoryKeyStore()
	kr, _ := newTestKeyring(t, store)
	ctx := context.Background()
	tmpl := KeyTemplate{Limits: Limits{Budgets: []Budget{{Limit: 2 * Dollar, Period: PeriodDay}}}, Source: "oidc"}
	k, err := kr.Provision(ctx, "dev@corp.example", "payments", tmpl)
	if err != nil {
		t.Fatal(err)
	}
	if k.Name != "dev@corp.example" || k.TeamName() != "payments" || len(k.Budgets) != 1 {
		t.Fatalf("provisioned %+v", k)
	}
	v := store.version
	k2, err := kr.Provision(ctx, "dev@corp.example", "payments", tmpl)
	if err != nil || k2 != k || store.version != v {
		t.Fatalf("second provision wrote or changed: %v %v", err, store.version)
	}
	if kr.Source("dev@corp.example") != "oidc" {
		t.Fatal("source")
	}
	// The team follows the identity provider.
	k3, err := kr.Provision(ctx, "dev@corp.example", "solo", tmpl)
	if err != nil || k3.TeamName() != "solo" || k3.CustomerName() != "" {
		t.Fatalf("team change: %v %+v", err, k3)
	}
	// A config key of that name is returned as is.
	if k, err := kr.Provision(ctx, "ops", "", tmpl); err != nil || k.Name != "ops" || kr.Source("ops") != SourceConfig {
		t.Fatalf("config key: %v", err)
	}
	if _, err := kr.Provision(ctx, "x@corp", "nope", tmpl); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("unknown team: %v", err)
	}
	if _, err := kr.Revoke(ctx, "dev@corp.example", "admin"); err != nil {
		t.Fatal(err)
	}
	if _, err := kr.Provision(ctx, "dev@corp.example", "payments", tmpl); !errors.Is(err, ErrKeyRevoked) {
		t.Fatalf("revoked: %v", err)
	}
}

func TestKeyringConcurrentProvision(t *testing.T) {
	store := NewMemoryKeyStore()
	kr, _ := newTestKeyring(t, store)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := kr.Provision(context.Background(), "dev", "", KeyTemplate{}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if store.version != 1 {
		t.Fatalf("%d writes", store.version)
	}
}

func TestKeyringTeamLeavesConfig(t *testing.T) {
	store := NewMemoryKeyStore()
	kr, clk := newTestKeyring(t, store)
	ctx := context.Background()
	_, secret, err := kr.Create(ctx, LiveKeySpec{Name: "alice", Team: "solo"}, "")
	if err != nil {
		t.Fatal(err)
	}
	// The next config load has no team solo.
	reg, err := NewRegistry(nil, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	next := NewKeyring(reg, kr.Directory())
	k := next.Authenticate(secret)
	if k == nil || k.Usable(clk.now()) == nil || next.Problem("alice") == "" {
		t.Fatalf("a key whose team left is disabled: %+v %q", k, next.Problem("alice"))
	}
}

func TestKeyringConflicts(t *testing.T) {
	kr, _ := newTestKeyring(t, NewMemoryKeyStore())
	ctx := context.Background()
	if _, _, err := kr.Create(ctx, LiveKeySpec{Name: "carol"}, ""); err != nil {
		t.Fatal(err)
	}
	reg, err := NewRegistry(nil, nil, []KeySpec{{Name: "carol", Hash: HashSecret("sk-carol")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	next := NewKeyring(reg, kr.Directory())
	if c := next.Conflicts(); len(c) != 1 || c[0] != "carol" {
		t.Fatalf("conflicts %v", c)
	}
	// At run time the config key wins on this instance.
	if next.Key("carol").Hash != HashSecret("sk-carol") {
		t.Fatal("config key should win")
	}
}

func TestDirectoryRefreshSeesOtherWriters(t *testing.T) {
	store := NewMemoryKeyStore()
	a, _ := newTestKeyring(t, store)
	b, _ := newTestKeyring(t, store) // another instance on the same store
	ctx := context.Background()
	_, secret, err := a.Create(ctx, LiveKeySpec{Name: "alice"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if b.Authenticate(secret) != nil {
		t.Fatal("b saw the key before refreshing")
	}
	if changed, err := b.Directory().Refresh(ctx); err != nil || !changed {
		t.Fatalf("refresh: %v %v", changed, err)
	}
	if b.Authenticate(secret) == nil {
		t.Fatal("b does not see the key after refreshing")
	}
	if _, err := a.Revoke(ctx, "alice", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Directory().Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if b.Authenticate(secret) != nil {
		t.Fatal("b still accepts the revoked key")
	}
	if changed, _ := b.Directory().Refresh(ctx); changed {
		t.Fatal("refresh without changes reports changes")
	}
}

func TestDirectoryPrepareBeforePublish(t *testing.T) {
	kr, _ := newTestKeyring(t, NewMemoryKeyStore())
	var prepared []Level
	kr.Directory().Prepare = func(_ context.Context, levels []Level) error {
		// The key is not visible yet.
		if kr.Key(levels[0].Scope.Name) != nil {
			t.Error("published before Prepare")
		}
		prepared = append(prepared, levels...)
		return nil
	}
	ctx := context.Background()
	if _, _, err := kr.Create(ctx, LiveKeySpec{Name: "alice", Limits: Limits{Budgets: []Budget{{Limit: Dollar, Period: PeriodDay}}}}, ""); err != nil {
		t.Fatal(err)
	}
	if len(prepared) != 1 || prepared[0].Scope.Name != "alice" {
		t.Fatalf("prepared %v", prepared)
	}
	disabled := true
	if _, err := kr.Update(ctx, "alice", LiveKeyPatch{Disabled: &disabled}, ""); err != nil {
		t.Fatal(err)
	}
	if len(prepared) != 1 {
		t.Fatal("unchanged budgets prepared again")
	}
}

// BenchmarkKeyringAuthenticate measures the per-request key lookup: a
// config key (the registry's map), a live key among 1,000 (the directory's
// snapshot) and an unknown secret (both missed).
func BenchmarkKeyringAuthenticate(b *testing.B) {
	kr, _ := newTestKeyring(b, NewMemoryKeyStore())
	ctx := context.Background()
	var live string
	for i := range 1000 {
		_, s, err := kr.Create(ctx, LiveKeySpec{Name: fmt.Sprintf("dev%04d", i), Team: "payments"}, "")
		if err != nil {
			b.Fatal(err)
		}
		live = s
	}
	for _, bc := range []struct{ name, secret string }{{"config", "sk-ops"}, {"live", live}, {"unknown", "sk-llmgw-nobody"}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				kr.Authenticate(bc.secret)
			}
		})
	}
}

// BenchmarkKeyringProvisionKnown measures a first-call provision for a
// developer already provisioned: the SSO path's per-request cost.
func BenchmarkKeyringProvisionKnown(b *testing.B) {
	kr, _ := newTestKeyring(b, NewMemoryKeyStore())
	ctx := context.Background()
	if _, err := kr.Provision(ctx, "dev@corp.example", "payments", KeyTemplate{}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := kr.Provision(ctx, "dev@corp.example", "payments", KeyTemplate{}); err != nil {
			b.Fatal(err)
		}
	}
}
