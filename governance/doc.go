// Package governance holds everything about who may spend what:
//
//   - identities: the Registry of customers → teams → keys (by SHA-256
//     hash), their limits and model allow-lists, and the policies that
//     apply to them (unpriced models, budget_warn thresholds);
//   - integer money (nano-USD), the price table (built-in rows, overrides,
//     long-context tiers, largest outputs) and cost arithmetic;
//   - budgets in calendar periods of a time zone and sliding-window rate
//     limits, and the admission that reserves a request's worst case on
//     every level (Ticket or Rejection) and the settlement that replaces
//     it by the actual cost;
//   - the counter stores that enforce them: memory, and Redis for a fleet
//     (atomic Lua scripts, settlements queued while Redis is unreachable);
//   - the usage ledger (memory for tests, SQLite embedded with group
//     commit) and the reports read from it.
//
// It knows nothing of Caddy or of any provider's wire format; it speaks only
// the leaf vocabulary in providers/llm.
package governance
