package governance

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PostgresMigrationsTable records which schema versions of each component
// a PostgreSQL database has: one row per (component, version) applied.
const PostgresMigrationsTable = "llm_gateway_schema_migrations"

// PostgresLedgerComponent is the ledger's component name in
// PostgresMigrationsTable.
const PostgresLedgerComponent = "ledger"

// postgresMigrationLock is the pg_advisory_lock key every migration takes,
// so two instances starting at once migrate one after the other.
const postgresMigrationLock int64 = 0x6c6c6d67775f6d67 // "llmgw_mg"

// postgresLedgerSchema are the ledger's migrations: element i brings the
// schema from version i to version i+1. A released step is never edited;
// a change is a new step.
var postgresLedgerSchema = []string{
	// 1: the ledger (one row per request, keyed by the writing store's
	// random id and its sequence number so a retried batch inserts nothing
	// twice; id is the fleet-wide write order) and the running totals per
	// scope, all-time (bucket 0) and per 15-minute bucket (its start, Unix
	// seconds; the epoch's is 1).
	`CREATE TABLE llm_gateway_ledger (
		id                    BIGINT  GENERATED ALWAYS AS IDENTITY,
		writer_id             BIGINT  NOT NULL,
		seq                   BIGINT  NOT NULL,
		time_ns               BIGINT  NOT NULL,
		bucket                BIGINT  NOT NULL,
		key                   TEXT    NOT NULL,
		team                  TEXT    NOT NULL,
		customer              TEXT    NOT NULL,
		provider              TEXT    NOT NULL,
		model                 TEXT    NOT NULL,
		requested_model       TEXT    NOT NULL,
		surface               TEXT    NOT NULL,
		status                INTEGER NOT NULL,
		stream                BOOLEAN NOT NULL,
		input_tokens          BIGINT  NOT NULL,
		output_tokens         BIGINT  NOT NULL,
		cache_read_tokens     BIGINT  NOT NULL,
		cache_write_5m_tokens BIGINT  NOT NULL,
		cache_write_1h_tokens BIGINT  NOT NULL,
		web_search_requests   BIGINT  NOT NULL,
		cost_nano_usd         BIGINT  NOT NULL,
		complete              BOOLEAN NOT NULL,
		output_estimated      BOOLEAN NOT NULL,
		input_estimated       BOOLEAN NOT NULL,
		session_id            TEXT    NOT NULL,
		duration_us           BIGINT  NOT NULL,
		price_model           TEXT    NOT NULL,
		price_effective_from  TEXT    NOT NULL,
		speed                 TEXT    NOT NULL,
		inference_geo         TEXT    NOT NULL,
		request_id            TEXT    NOT NULL,
		provider_request_id   TEXT    NOT NULL,
		labels                JSONB   NOT NULL,
		user_agent            TEXT    NOT NULL,
		ttft_us               BIGINT  NOT NULL,
		attempts              INTEGER NOT NULL,
		rejection             TEXT    NOT NULL,
		error_type            TEXT    NOT NULL,
		cache_hit             BOOLEAN NOT NULL,
		saved_nano_usd        BIGINT  NOT NULL,
		PRIMARY KEY (writer_id, seq)
	);
	CREATE INDEX llm_gateway_ledger_time ON llm_gateway_ledger (time_ns, id);
	CREATE INDEX llm_gateway_ledger_key_time ON llm_gateway_ledger (key, time_ns, id);
	CREATE TABLE llm_gateway_totals (
		kind                  TEXT   NOT NULL,
		name                  TEXT   NOT NULL,
		bucket                BIGINT NOT NULL,
		requests              BIGINT NOT NULL,
		input_tokens          BIGINT NOT NULL,
		output_tokens         BIGINT NOT NULL,
		cache_read_tokens     BIGINT NOT NULL,
		cache_write_5m_tokens BIGINT NOT NULL,
		cache_write_1h_tokens BIGINT NOT NULL,
		web_search_requests   BIGINT NOT NULL,
		cost_nano_usd         BIGINT NOT NULL,
		cache_hits            BIGINT NOT NULL,
		saved_nano_usd        BIGINT NOT NULL,
		PRIMARY KEY (kind, name, bucket)
	);
	CREATE INDEX llm_gateway_totals_all_time ON llm_gateway_totals (kind, name) WHERE bucket = 0;`,
	// 2: the rollup (see postgresRollupSchema).
	postgresRollupSchema,
	// 3: the day rollup (see postgresRollupDaySchema).
	postgresRollupDaySchema,
}

// PostgresMigrate brings component's tables in the database up to
// len(steps) versions: steps[i] takes it from version i to i+1, each in its
// own transaction that also records the version in
// PostgresMigrationsTable. It holds a session advisory lock throughout, so
// instances starting at once migrate one at a time and the later ones find
// nothing to do. A database with a version newer than len(steps) (written
// by a newer release) is refused. Other users of the ledger's database
// (the live keys) migrate their own component the same way.
func PostgresMigrate(ctx context.Context, pool *pgxpool.Pool, component string, steps []string) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, postgresMigrationLock); err != nil {
		return err
	}
	defer func() {
		// A failed unlock (lost connection) releases the lock anyway.
		_, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, postgresMigrationLock)
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+PostgresMigrationsTable+` (
		component  TEXT        NOT NULL,
		version    INTEGER     NOT NULL,
		applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
		PRIMARY KEY (component, version))`); err != nil {
		return err
	}
	var version int
	if err := conn.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM `+PostgresMigrationsTable+
		` WHERE component = $1`, component).Scan(&version); err != nil {
		return err
	}
	if version > len(steps) {
		return fmt.Errorf("%s schema version %d is newer than this build understands (%d)", component, version, len(steps))
	}
	for v := version; v < len(steps); v++ {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, steps[v]); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO `+PostgresMigrationsTable+` (component, version) VALUES ($1, $2)`, component, v+1)
			return err
		})
		if err != nil {
			return fmt.Errorf("migrating the %s schema to version %d: %w", component, v+1, err)
		}
	}
	return nil
}

// postgresSchemaVersion reads component's schema version (tests).
func postgresSchemaVersion(ctx context.Context, pool *pgxpool.Pool, component string) (int, error) {
	var v int
	err := pool.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM `+PostgresMigrationsTable+
		` WHERE component = $1`, component).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	return v, err
}
