package governance

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PostgresKeysComponent is the live keys' component name in
// PostgresMigrationsTable.
const PostgresKeysComponent = "keys"

// postgresKeySchema are the live key tables' migrations (component "keys"):
// element i brings them from version i to i+1. A released step is never
// edited. llm_gateway_keystore's single row holds the change counter every
// write raises (under its row lock, so versions follow commit order).
var postgresKeySchema = []string{
	`CREATE TABLE llm_gateway_keystore (
		id      INTEGER PRIMARY KEY CHECK (id = 1),
		version BIGINT  NOT NULL
	);
	INSERT INTO llm_gateway_keystore (id, version) VALUES (1, 0);
	CREATE TABLE llm_gateway_keys (
		name       TEXT   PRIMARY KEY,
		version    BIGINT NOT NULL,
		source     TEXT   NOT NULL,
		fields     TEXT   NOT NULL,
		secrets    TEXT   NOT NULL,
		created_at BIGINT NOT NULL,
		updated_at BIGINT NOT NULL,
		created_by TEXT   NOT NULL,
		revoked_at BIGINT NOT NULL DEFAULT 0
	);
	CREATE INDEX llm_gateway_keys_version ON llm_gateway_keys (version);
	CREATE TABLE llm_gateway_key_audit (
		id     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		at     BIGINT NOT NULL,
		actor  TEXT   NOT NULL,
		action TEXT   NOT NULL,
		key    TEXT   NOT NULL,
		detail TEXT   NOT NULL
	);
	CREATE INDEX llm_gateway_key_audit_key ON llm_gateway_key_audit (key, id);`,
}

// PostgresKeyStore keeps live keys and their audit trail in the fleet's
// PostgreSQL ledger database: every instance reads the others' changes by
// polling the change counter.
type PostgresKeyStore struct {
	pool *pgxpool.Pool
}

// OpenKeyStore opens the live key tables in the ledger's database,
// creating or migrating them. The key store shares the ledger's pool;
// closing it leaves the pool to the ledger.
func (s *PostgresStore) OpenKeyStore() (KeyStore, error) {
	return OpenPostgresKeyStore(context.Background(), s.Pool())
}

// OpenPostgresKeyStore opens the live key tables over pool.
func OpenPostgresKeyStore(ctx context.Context, pool *pgxpool.Pool) (*PostgresKeyStore, error) {
	if err := PostgresMigrate(ctx, pool, PostgresKeysComponent, postgresKeySchema); err != nil {
		return nil, fmt.Errorf("live key tables: %w", err)
	}
	return &PostgresKeyStore{pool: pool}, nil
}

// Changes implements KeyStore.
func (ks *PostgresKeyStore) Changes(ctx context.Context, since int64) ([]*LiveKey, int64, error) {
	// The version first: rows written after it are read again next time.
	var version int64
	if err := ks.pool.QueryRow(ctx, `SELECT version FROM llm_gateway_keystore WHERE id = 1`).Scan(&version); err != nil {
		return nil, 0, err
	}
	if version == since {
		return nil, version, nil
	}
	rows, err := ks.pool.Query(ctx, `SELECT `+sqliteKeyColumns+` FROM llm_gateway_keys WHERE version > $1 ORDER BY version`, since)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []*LiveKey
	for rows.Next() {
		k, err := scanLiveKey(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, k)
	}
	return out, version, rows.Err()
}

// Update implements KeyStore. The change counter's row lock, taken first,
// excludes every other writer of the fleet until commit.
func (ks *PostgresKeyStore) Update(ctx context.Context, name string, fn func(cur *LiveKey) (*LiveKey, *AuditEntry, error)) (*LiveKey, error) {
	var out *LiveKey
	err := pgx.BeginFunc(ctx, ks.pool, func(tx pgx.Tx) error {
		var version int64
		if err := tx.QueryRow(ctx, `SELECT version FROM llm_gateway_keystore WHERE id = 1 FOR UPDATE`).Scan(&version); err != nil {
			return err
		}
		cur, err := scanLiveKey(tx.QueryRow(ctx, `SELECT `+sqliteKeyColumns+` FROM llm_gateway_keys WHERE name = $1`, name))
		if errors.Is(err, pgx.ErrNoRows) {
			cur, err = nil, nil
		}
		if err != nil {
			return err
		}
		next, a, err := fn(cur)
		if err != nil {
			return err
		}
		if next == nil {
			out = cur
			return nil
		}
		next.Version = version + 1
		if _, err := tx.Exec(ctx, `UPDATE llm_gateway_keystore SET version = $1 WHERE id = 1`, next.Version); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO llm_gateway_keys (`+sqliteKeyColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
			ON CONFLICT (name) DO UPDATE SET version = excluded.version, source = excluded.source, fields = excluded.fields,
				secrets = excluded.secrets, created_at = excluded.created_at, updated_at = excluded.updated_at,
				created_by = excluded.created_by, revoked_at = excluded.revoked_at`,
			next.Name, next.Version, next.Source, encodeFields(next), encodeSecrets(next.Secrets),
			nanosOrZero(next.Created), nanosOrZero(next.Updated), next.CreatedBy, nanosOrZero(next.Revoked)); err != nil {
			return err
		}
		if a != nil {
			if _, err := tx.Exec(ctx, `INSERT INTO llm_gateway_key_audit (at, actor, action, key, detail) VALUES ($1, $2, $3, $4, $5)`,
				nanosOrZero(a.At), a.Actor, a.Action, a.Key, a.Detail); err != nil {
				return err
			}
		}
		out = next
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Audit implements KeyStore.
func (ks *PostgresKeyStore) Audit(ctx context.Context, q AuditQuery) ([]AuditEntry, error) {
	rows, err := ks.pool.Query(ctx, `SELECT id, at, actor, action, key, detail FROM llm_gateway_key_audit
		WHERE ($1 = '' OR key = $1) AND ($2 <= 0 OR id < $2) ORDER BY id DESC LIMIT $3`,
		q.Key, q.Before, auditLimit(q.Limit))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Key, &e.Detail); err != nil {
			return nil, err
		}
		e.At = timeOrZero(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// Close implements KeyStore: the pool belongs to the ledger.
func (ks *PostgresKeyStore) Close() error { return nil }

var _ KeyStore = (*PostgresKeyStore)(nil)
