package governance

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// sqliteKeySchema are the live key tables' migrations, in the ledger's
// SQLite file: element i brings them from version i to i+1. Their version
// is kept in llm_gateway_keystore (not the ledger's user_version), so the
// ledger's and the keys' schemas evolve apart.
var sqliteKeySchema = []string{
	`CREATE TABLE llm_gateway_keys (
		name       TEXT    PRIMARY KEY,
		version    INTEGER NOT NULL,
		source     TEXT    NOT NULL,
		fields     TEXT    NOT NULL,
		secrets    TEXT    NOT NULL,
		created_at INTEGER NOT NULL,
		updated_at INTEGER NOT NULL,
		created_by TEXT    NOT NULL,
		revoked_at INTEGER NOT NULL DEFAULT 0
	);
	CREATE INDEX llm_gateway_keys_version ON llm_gateway_keys (version);
	CREATE TABLE llm_gateway_key_audit (
		id     INTEGER PRIMARY KEY AUTOINCREMENT,
		at     INTEGER NOT NULL,
		actor  TEXT    NOT NULL,
		action TEXT    NOT NULL,
		key    TEXT    NOT NULL,
		detail TEXT    NOT NULL
	);
	CREATE INDEX llm_gateway_key_audit_key ON llm_gateway_key_audit (key, id);`,
}

// SQLiteKeyStore keeps live keys and their audit trail in a SQLite
// database, normally the ledger's file. Writers in several processes are
// serialised by SQLite's write lock (BEGIN IMMEDIATE).
type SQLiteKeyStore struct {
	db *sql.DB
}

// OpenKeyStore opens the live key tables in the ledger's file, creating or
// migrating them. The key store shares the ledger's connections; closing
// it leaves them to the ledger.
func (s *SQLiteStore) OpenKeyStore() (KeyStore, error) {
	return OpenSQLiteKeyStore(context.Background(), s.db)
}

// OpenSQLiteKeyStore opens the live key tables in db, which must have been
// opened with _txlock=immediate (as OpenSQLiteStore does), creating or
// migrating them.
func OpenSQLiteKeyStore(ctx context.Context, db *sql.DB) (*SQLiteKeyStore, error) {
	ks := &SQLiteKeyStore{db: db}
	if err := ks.migrate(ctx); err != nil {
		return nil, fmt.Errorf("live key tables: %w", err)
	}
	return ks, nil
}

func (ks *SQLiteKeyStore) migrate(ctx context.Context) error {
	tx, err := ks.db.BeginTx(ctx, nil) // BEGIN IMMEDIATE: one migrator at a time
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS llm_gateway_keystore (
		id      INTEGER PRIMARY KEY CHECK (id = 1),
		schema  INTEGER NOT NULL,
		version INTEGER NOT NULL)`); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO llm_gateway_keystore (id, schema, version) VALUES (1, 0, 0)`); err != nil {
		return err
	}
	var schema int
	if err := tx.QueryRowContext(ctx, `SELECT schema FROM llm_gateway_keystore WHERE id = 1`).Scan(&schema); err != nil {
		return err
	}
	if schema > len(sqliteKeySchema) {
		return fmt.Errorf("schema version %d is newer than this build understands (%d)", schema, len(sqliteKeySchema))
	}
	for v := schema; v < len(sqliteKeySchema); v++ {
		if _, err := tx.ExecContext(ctx, sqliteKeySchema[v]); err != nil {
			return fmt.Errorf("migrating to version %d: %w", v+1, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE llm_gateway_keystore SET schema = ? WHERE id = 1`, len(sqliteKeySchema)); err != nil {
		return err
	}
	return tx.Commit()
}

const sqliteKeyColumns = `name, version, source, fields, secrets, created_at, updated_at, created_by, revoked_at`

// rowScanner is *sql.Row or *sql.Rows.
type rowScanner interface{ Scan(dest ...any) error }

// scanLiveKey reads one row of sqliteKeyColumns (also the PostgreSQL
// store's column order).
func scanLiveKey(row rowScanner) (*LiveKey, error) {
	k := &LiveKey{}
	var fields, secrets string
	var created, updated, revoked int64
	if err := row.Scan(&k.Name, &k.Version, &k.Source, &fields, &secrets, &created, &updated, &k.CreatedBy, &revoked); err != nil {
		return nil, err
	}
	if err := decodeFields(fields, k); err != nil {
		return nil, fmt.Errorf("key %q: fields: %v", k.Name, err)
	}
	var err error
	if k.Secrets, err = decodeSecrets(secrets); err != nil {
		return nil, fmt.Errorf("key %q: secrets: %v", k.Name, err)
	}
	k.Created, k.Updated, k.Revoked = timeOrZero(created), timeOrZero(updated), timeOrZero(revoked)
	return k, nil
}

// Changes implements KeyStore.
func (ks *SQLiteKeyStore) Changes(ctx context.Context, since int64) ([]*LiveKey, int64, error) {
	// The version first: rows written after it are read again next time.
	var version int64
	if err := ks.db.QueryRowContext(ctx, `SELECT version FROM llm_gateway_keystore WHERE id = 1`).Scan(&version); err != nil {
		return nil, 0, err
	}
	if version == since {
		return nil, version, nil
	}
	rows, err := ks.db.QueryContext(ctx, `SELECT `+sqliteKeyColumns+` FROM llm_gateway_keys WHERE version > ? ORDER BY version`, since)
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

// Update implements KeyStore.
func (ks *SQLiteKeyStore) Update(ctx context.Context, name string, fn func(cur *LiveKey) (*LiveKey, *AuditEntry, error)) (*LiveKey, error) {
	tx, err := ks.db.BeginTx(ctx, nil) // BEGIN IMMEDIATE: excludes every other writer
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	cur, err := scanLiveKey(tx.QueryRowContext(ctx, `SELECT `+sqliteKeyColumns+` FROM llm_gateway_keys WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		cur, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	next, a, err := fn(cur)
	if err != nil {
		return nil, err
	}
	if next == nil {
		return cur, tx.Commit()
	}
	if err := tx.QueryRowContext(ctx, `UPDATE llm_gateway_keystore SET version = version + 1 WHERE id = 1 RETURNING version`).Scan(&next.Version); err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO llm_gateway_keys (`+sqliteKeyColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET version = excluded.version, source = excluded.source, fields = excluded.fields,
			secrets = excluded.secrets, created_at = excluded.created_at, updated_at = excluded.updated_at,
			created_by = excluded.created_by, revoked_at = excluded.revoked_at`,
		next.Name, next.Version, next.Source, encodeFields(next), encodeSecrets(next.Secrets),
		nanosOrZero(next.Created), nanosOrZero(next.Updated), next.CreatedBy, nanosOrZero(next.Revoked)); err != nil {
		return nil, err
	}
	if a != nil {
		if _, err := tx.ExecContext(ctx, `INSERT INTO llm_gateway_key_audit (at, actor, action, key, detail) VALUES (?, ?, ?, ?, ?)`,
			nanosOrZero(a.At), a.Actor, a.Action, a.Key, a.Detail); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	return next, nil
}

// Audit implements KeyStore.
func (ks *SQLiteKeyStore) Audit(ctx context.Context, q AuditQuery) ([]AuditEntry, error) {
	query := `SELECT id, at, actor, action, key, detail FROM llm_gateway_key_audit WHERE 1 = 1`
	var args []any
	if q.Key != "" {
		query += ` AND key = ?`
		args = append(args, q.Key)
	}
	if q.Before > 0 {
		query += ` AND id < ?`
		args = append(args, q.Before)
	}
	query += ` ORDER BY id DESC LIMIT ?`
	args = append(args, auditLimit(q.Limit))
	rows, err := ks.db.QueryContext(ctx, query, args...)
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

// Close implements KeyStore: the database belongs to the ledger.
func (ks *SQLiteKeyStore) Close() error { return nil }

var _ KeyStore = (*SQLiteKeyStore)(nil)
