package governance

import (
	"testing"

	"github.com/llmgateway/caddy-llm-gateway/internal/testkit"
)

// The PostgreSQL key store runs the key store conformance test against a
// real server: two stores on one database are two instances of a fleet.
func init() {
	keyStoreFactories["postgres"] = func(t *testing.T) (KeyStore, func() KeyStore) {
		pg := testkit.StartPostgres(t)
		dsn := pg.CreateDatabase("keys")
		open := func() KeyStore {
			ks, err := openPostgres(t, dsn, PostgresOptions{}).OpenKeyStore()
			if err != nil {
				t.Fatal(err)
			}
			return ks
		}
		return open(), open
	}
}
