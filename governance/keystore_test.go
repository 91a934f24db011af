package governance

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// keyStoreFactories open a fresh store and a second handle on the same
// data (another instance of a fleet); cleanup is registered on t.
var keyStoreFactories = map[string]func(t *testing.T) (KeyStore, func() KeyStore){
	"memory": func(t *testing.T) (KeyStore, func() KeyStore) {
		s := NewMemoryKeyStore()
		return s, func() KeyStore { return s }
	},
	"sqlite": func(t *testing.T) (KeyStore, func() KeyStore) {
		path := filepath.Join(t.TempDir(), "usage.db")
		open := func() KeyStore {
			ledger, err := OpenSQLiteStore(path, SQLiteOptions{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ledger.Close() })
			ks, err := ledger.OpenKeyStore()
			if err != nil {
				t.Fatal(err)
			}
			return ks
		}
		return open(), open
	},
}

func TestKeyStoreConformance(t *testing.T) {
	for name, factory := range keyStoreFactories {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			first, other := factory(t)
			a, clk := newTestKeyring(t, first)
			b, _ := newTestKeyring(t, other())
			_, secret, err := a.Create(ctx, LiveKeySpec{Name: "alice", Team: "payments",
				Limits: Limits{Budgets: []Budget{{Limit: 5 * Dollar, Period: PeriodDay}},
					RateLimits: []RateLimit{{Limit: 60, Unit: RateRequests, Window: time.Minute}},
					Expires:    time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
				MaxTokensCap: 8192}, "admin@corp")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := b.Directory().Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			k := b.Authenticate(secret)
			if k == nil {
				t.Fatal("the other instance does not see the key")
			}
			if k.TeamName() != "payments" || len(k.Budgets) != 1 || k.Budgets[0].Limit != 5*Dollar ||
				len(k.RateLimits) != 1 || k.RateLimits[0].Window != time.Minute || k.MaxTokensCap != 8192 ||
				!k.Expires.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) {
				t.Fatalf("round trip: %+v", k)
			}
			// A rotation on b is seen by a, old secret in grace.
			_, fresh, err := b.Rotate(ctx, "alice", time.Hour, "admin2")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.Directory().Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			if a.Authenticate(fresh) == nil || a.Authenticate(secret) == nil {
				t.Fatal("rotation not seen, or grace lost")
			}
			clk.add(time.Hour)
			if a.Authenticate(secret) != nil {
				t.Fatal("grace outlived")
			}
			// Concurrent creates of one name on two instances: one wins.
			_, _, err1 := a.Create(ctx, LiveKeySpec{Name: "bob"}, "")
			_, _, err2 := b.Create(ctx, LiveKeySpec{Name: "bob"}, "")
			if err1 != nil || !errors.Is(err2, ErrKeyExists) {
				t.Fatalf("duplicate across instances: %v, %v", err1, err2)
			}
			if _, err := b.Revoke(ctx, "alice", "admin2"); err != nil {
				t.Fatal(err)
			}
			if _, err := a.Directory().Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			if a.Authenticate(fresh) != nil {
				t.Fatal("revoked key works on the other instance")
			}
			// The audit trail, newest first, paged.
			all, err := first.Audit(ctx, AuditQuery{})
			if err != nil {
				t.Fatal(err)
			}
			var actions []string
			for _, e := range all {
				actions = append(actions, e.Action+":"+e.Key+":"+e.Actor)
			}
			want := []string{"revoke:alice:admin2", "create:bob:", "rotate:alice:admin2", "create:alice:admin@corp"}
			if len(actions) != len(want) {
				t.Fatalf("audit %v", actions)
			}
			for i := range want {
				if actions[i] != want[i] {
					t.Fatalf("audit %v, want %v", actions, want)
				}
			}
			page, err := first.Audit(ctx, AuditQuery{Key: "alice", Before: all[0].ID, Limit: 1})
			if err != nil || len(page) != 1 || page[0].Action != "rotate" {
				t.Fatalf("page %v %v", page, err)
			}
			// A fresh directory (a restart) loads everything.
			c, _ := newTestKeyring(t, other())
			if lk := c.Directory().Lookup("alice"); lk == nil || lk.Active() {
				t.Fatalf("restart: %+v", lk)
			}
			if c.Directory().Lookup("bob") == nil {
				t.Fatal("restart lost bob")
			}
		})
	}
}

func TestSQLiteKeyStoreKeepsOnlyHashes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "usage.db")
	ledger, err := OpenSQLiteStore(path, SQLiteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ks, err := ledger.OpenKeyStore()
	if err != nil {
		t.Fatal(err)
	}
	kr, _ := newTestKeyring(t, ks)
	_, secret, err := kr.Create(context.Background(), LiveKeySpec{Name: "alice"}, "")
	if err != nil {
		t.Fatal(err)
	}
	_, rotated, err := kr.Rotate(context.Background(), "alice", time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	ledger.Close()
	for _, f := range []string{path, path + "-wal"} {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, s := range []string{secret, rotated} {
			if bytes.Contains(data, []byte(s)) || bytes.Contains(data, []byte(s[len(SecretPrefix):])) {
				t.Fatalf("%s holds a secret", f)
			}
		}
		h := HashSecret(rotated)
		if f == path && !bytes.Contains(data, []byte(h.String())) {
			t.Logf("hash not found in %s (may still be in the WAL)", f)
		}
	}
}

func TestSQLiteKeyStoreRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "usage.db")
	ledger, err := OpenSQLiteStore(path, SQLiteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ledger.Close()
	if _, err := ledger.OpenKeyStore(); err != nil {
		t.Fatal(err)
	}
	if _, err := ledger.db.Exec(`UPDATE llm_gateway_keystore SET schema = 99`); err != nil {
		t.Fatal(err)
	}
	if _, err := ledger.OpenKeyStore(); err == nil {
		t.Fatal("a newer schema is accepted")
	}
}
