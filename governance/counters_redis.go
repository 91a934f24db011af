package governance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisMaxMoney is the largest amount RedisCounters accepts for a budget
// limit, a worst case or a cost: 2^53 nano-dollars (about $9.007 million).
// The counters are integers in Redis, but the Lua scripts that check them
// compute with doubles, which are exact only up to 2^53.
const RedisMaxMoney Money = 1 << 53

// Defaults for RedisOptions.
const (
	// DefaultRedisPrefix is the key prefix when RedisOptions.Prefix is empty.
	DefaultRedisPrefix = "llmgw"
	// DefaultRedisTimeout is the dial, read and write timeout when
	// RedisOptions leaves them (and the URL) unset: small, so that an
	// unreachable Redis fails a request fast instead of stalling it.
	DefaultRedisTimeout = 2 * time.Second
)

const (
	// redisSweepBatch is how many expired leases one script call releases.
	redisSweepBatch = 64
	// redisTicketMargin is how long a ticket hash outlives its lease. Only a
	// fleet that nobody sweeps for this long loses track of a reservation.
	redisTicketMargin = 7 * 24 * time.Hour
	// redisSettledTTL is how long the settled marker of a ticket lives: a
	// second Settle of the same ticket within it is a no-op.
	redisSettledTTL = 15 * time.Minute
	// redisBudgetGrace is how long a budget key outlives its period.
	redisBudgetGrace = 24 * time.Hour
	// redisRenewBatch is how many tickets one Renew script call handles.
	redisRenewBatch = 256
)

// RedisOptions configures NewRedisCounters.
type RedisOptions struct {
	// URL is redis://[user:password@]host:port/db or rediss://… for TLS,
	// parsed by redis.ParseURL (its query options, such as dial_timeout or
	// pool_size, apply). Ignored when Client is set.
	URL string
	// Client, when set, is used instead of dialing URL (tests, or a caller
	// that builds a cluster or sentinel client itself). Close leaves it open.
	Client redis.UniversalClient
	// Prefix names the key space; every key is "{Prefix}:…", the braces being
	// a Redis Cluster hash tag so all keys live in one slot. Default
	// DefaultRedisPrefix. It must not contain braces.
	Prefix string
	// DialTimeout, ReadTimeout and WriteTimeout bound each Redis operation
	// when the client is built from URL; zero keeps what the URL says or
	// DefaultRedisTimeout.
	DialTimeout, ReadTimeout, WriteTimeout time.Duration
	// Log, when set, receives the client's own log lines about its failed
	// dials (which the counters also return as errors) instead of standard
	// error. Other Redis clients in the process keep go-redis's logging
	// (see routeRedisLogs). Ignored when Client is set.
	Log func(msg string)
}

// RedisCounters keeps budgets, reservations and rate limits in Redis so that
// every Caddy instance of a fleet shares them. Each operation is one atomic
// Lua script (or a pipeline of reads); the caller's clock is passed in, never
// Redis's. Errors from Redis are returned as they are: whether to fail open
// or closed is the caller's decision.
//
// Amounts must stay within RedisMaxMoney.
type RedisCounters struct {
	client    redis.UniversalClient
	owned     bool
	prefix    string // "{llmgw}:"
	leasesKey string // "{llmgw}:leases"
}

var _ Counters = (*RedisCounters)(nil)

// NewRedisCounters connects to Redis as opts says. It does not contact Redis:
// Ping or Prepare do, so an unreachable Redis is reported by the first call.
// Errors never quote a password from the URL.
func NewRedisCounters(opts RedisOptions) (*RedisCounters, error) {
	prefix := opts.Prefix
	if prefix == "" {
		prefix = DefaultRedisPrefix
	}
	if strings.ContainsAny(prefix, "{}") {
		return nil, fmt.Errorf("redis counters: prefix %q must not contain braces", prefix)
	}
	r := &RedisCounters{
		client:    opts.Client,
		prefix:    "{" + prefix + "}:",
		leasesKey: "{" + prefix + "}:leases",
	}
	if r.client != nil {
		return r, nil
	}
	if opts.URL == "" {
		return nil, errors.New("redis counters: no Redis URL")
	}
	o, err := redis.ParseURL(opts.URL)
	if err != nil {
		return nil, redisURLError(opts.URL, err)
	}
	o.DialTimeout = redisTimeout(opts.DialTimeout, o.DialTimeout)
	o.ReadTimeout = redisTimeout(opts.ReadTimeout, o.ReadTimeout)
	o.WriteTimeout = redisTimeout(opts.WriteTimeout, o.WriteTimeout)
	// One dial attempt per command and one retry: an unreachable Redis
	// costs at most about two dial timeouts, not go-redis's default of
	// five dial attempts times four tries.
	o.DialerRetries = 1
	if o.MaxRetries == 0 {
		o.MaxRetries = 1
	}
	o.ContextTimeoutEnabled = true
	if opts.Log != nil {
		o.Dialer = logDialErrors(redis.NewDialer(o), opts.Log)
	}
	r.client = redis.NewClient(o)
	r.owned = true
	return r, nil
}

func redisTimeout(set, fromURL time.Duration) time.Duration {
	switch {
	case set != 0:
		return set
	case fromURL != 0:
		return fromURL
	}
	return DefaultRedisTimeout
}

// redisURLError reports a URL that does not parse without repeating the URL
// (net/url quotes it whole, password included).
func redisURLError(raw string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	msg := err.Error()
	if _, rest, ok := strings.Cut(raw, "://"); ok {
		if at := strings.LastIndex(rest, "@"); at > 0 {
			userinfo := rest[:at]
			secrets := []string{userinfo}
			if _, pw, ok := strings.Cut(userinfo, ":"); ok && pw != "" {
				secrets = append(secrets, pw)
				if dec, err := url.PathUnescape(pw); err == nil && dec != pw {
					secrets = append(secrets, dec)
				}
			}
			for _, s := range secrets {
				msg = strings.ReplaceAll(msg, s, "xxxxx")
			}
		}
	}
	return errors.New("redis counters: invalid Redis URL: " + msg)
}

func redisErr(op string, err error) error {
	return fmt.Errorf("redis counters: %s: %w", op, err)
}

// Ping checks that Redis answers.
func (r *RedisCounters) Ping(ctx context.Context) error {
	if err := r.client.Ping(ctx).Err(); err != nil {
		return redisErr("ping", err)
	}
	return nil
}

// Prepare checks the levels against what RedisCounters can hold and that
// Redis answers. Nothing needs restoring: Redis is the source of truth.
func (r *RedisCounters) Prepare(ctx context.Context, levels []Level, now time.Time, loc *time.Location) error {
	if err := redisCheckLevels(levels); err != nil {
		return err
	}
	return r.Ping(ctx)
}

// Close closes the Redis client if NewRedisCounters created it.
func (r *RedisCounters) Close() error {
	if r.owned {
		return r.client.Close()
	}
	return nil
}

// --- keys ---

// redisEscape appends s to b with every byte outside [A-Za-z0-9._@+-]
// written as %XX, so a name can never produce a ':' (or a brace) of its own
// and two names never share a key.
func redisEscape(b []byte, s string) []byte {
	const hexdigits = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '.', c == '_', c == '@', c == '+', c == '-':
			b = append(b, c)
		default:
			b = append(b, '%', hexdigits[c>>4], hexdigits[c&15])
		}
	}
	return b
}

func redisAppendScope(b []byte, s Scope) []byte {
	if s.Kind >= ScopeCustomer && s.Kind <= ScopeKey {
		b = append(b, s.Kind.String()...)
	} else {
		b = append(b, "kind"...)
		b = strconv.AppendUint(b, uint64(s.Kind), 10)
	}
	b = append(b, ':')
	return redisEscape(b, s.Name)
}

// budgetKey is "{p}:b:<kind>:<name>:<period>:<periodStartUnixSec>".
func (r *RedisCounters) budgetKey(s Scope, p Period, start time.Time) string {
	b := make([]byte, 0, len(r.prefix)+len(s.Name)+32)
	b = append(b, r.prefix...)
	b = append(b, "b:"...)
	b = redisAppendScope(b, s)
	b = append(b, ':')
	b = append(b, p.String()...)
	b = append(b, ':')
	b = strconv.AppendInt(b, start.Unix(), 10)
	return string(b)
}

// limiterKey is "{p}:rl:<kind>:<name>:<unit>:<windowMs>".
func (r *RedisCounters) limiterKey(s Scope, l RateLimit) string {
	b := make([]byte, 0, len(r.prefix)+len(s.Name)+32)
	b = append(b, r.prefix...)
	b = append(b, "rl:"...)
	b = redisAppendScope(b, s)
	b = append(b, ':')
	b = append(b, l.Unit.String()...)
	b = append(b, ':')
	b = strconv.AppendInt(b, l.Window.Milliseconds(), 10)
	return string(b)
}

func (r *RedisCounters) ticketKey(id string) string  { return r.prefix + "t:" + id }
func (r *RedisCounters) settledKey(id string) string { return r.prefix + "s:" + id }

// redisNewTicketID is 128 random bits in hex: unique across a fleet.
func redisNewTicketID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (it aborts the program instead)
	return hex.EncodeToString(b[:])
}

// redisCheckTicketID accepts the IDs RedisCounters makes (and any other
// plain token): they become part of keys and of the lease zset.
func redisCheckTicketID(id string) error {
	if id == "" || len(id) > 128 {
		return fmt.Errorf("redis counters: invalid ticket ID %q", id)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("redis counters: invalid ticket ID %q", id)
		}
	}
	return nil
}

// --- validation ---

// redisMoneyOK reports whether m survives the scripts' doubles exactly.
func redisMoneyOK(m Money) bool { return -RedisMaxMoney <= m && m <= RedisMaxMoney }

func redisCheckBudget(s Scope, b Budget) error {
	if b.Period > PeriodMonth {
		return fmt.Errorf("redis counters: %s: unknown budget period %d", s, b.Period)
	}
	if !redisMoneyOK(b.Limit) {
		return fmt.Errorf("redis counters: %s: budget limit %s is beyond what Redis counters hold exactly (%s)", s, FormatUSD(b.Limit), FormatUSD(RedisMaxMoney))
	}
	return nil
}

func redisCheckRateLimit(s Scope, l RateLimit) error {
	if l.Unit != RateRequests && l.Unit != RateTokens {
		return fmt.Errorf("redis counters: %s: unknown rate-limit unit %d", s, l.Unit)
	}
	if !redisMoneyOK(Money(l.Limit)) {
		return fmt.Errorf("redis counters: %s: rate limit %d is beyond 2^53", s, l.Limit)
	}
	if l.Window < time.Millisecond || l.Window%time.Millisecond != 0 {
		return fmt.Errorf("redis counters: %s: rate-limit window %s is not a positive whole number of milliseconds", s, l.Window)
	}
	return nil
}

// redisCheckLevels rejects limits the scripts cannot hold exactly and
// windows that are not whole milliseconds.
func redisCheckLevels(levels []Level) error {
	for _, lv := range levels {
		for _, b := range lv.Budgets {
			if err := redisCheckBudget(lv.Scope, b); err != nil {
				return err
			}
		}
		for _, l := range lv.RateLimits {
			if err := redisCheckRateLimit(lv.Scope, l); err != nil {
				return err
			}
		}
	}
	return nil
}

// --- time ---

func redisFloorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// redisBudgetTTL is how long a budget key for the period ending at end must
// live from now: until the end plus a grace day; 0 (no expiry) for totals.
func redisBudgetTTL(p Period, end, now time.Time) int64 {
	if p == PeriodTotal || end.IsZero() {
		return 0
	}
	d := end.Sub(now)
	if d < 0 {
		d = 0
	}
	return (d + redisBudgetGrace).Milliseconds()
}

// redisRetryAfter is how long a sliding-window limiter that refused a
// request must be left alone until the request fits, in whole milliseconds
// (at least one): curr and prev are the counts of the current and previous
// windows, e the milliseconds elapsed in the current window of w.
//
// Requests fit when est + 1 ≤ limit; tokens when est < limit (strict, so the
// wait is the first whole millisecond strictly after the boundary). A limit
// that nothing ever fits (below 1 request, 0 tokens) answers one window.
func redisRetryAfter(unit RateUnit, limit, curr, prev, e, w int64) time.Duration {
	if limit < 1 {
		return time.Duration(w) * time.Millisecond
	}
	L, c, p, E, W := float64(limit), float64(curr), float64(prev), float64(e), float64(w)
	// free is what the current window may still hold once prev has decayed
	// enough; need is what the next window's prev (today's curr) must decay
	// to.
	free, need := L-c-1, L-1
	if unit == RateTokens {
		free, need = L-c, L
	}
	within := p > 0 && free >= 0
	if unit == RateTokens {
		within = p > 0 && free > 0
	}
	var wait float64
	if within {
		// Within the current window: p·(W−e')/W ≤ free (tokens: <).
		wait = (W - W*free/p) - E
	} else {
		// In the next window: c·(W−s)/W ≤ need (tokens: <).
		s := 0.0
		if c > 0 {
			s = math.Max(0, W-W*need/c)
		}
		wait = (W - E) + s
	}
	// Snap away floating-point dust so exact boundaries stay exact.
	if r := math.Round(wait); math.Abs(wait-r) < 1e-6 {
		wait = r
	}
	var ms float64
	if unit == RateTokens {
		ms = math.Floor(wait) + 1
	} else {
		ms = math.Ceil(wait)
	}
	if ms < 1 {
		ms = 1
	}
	return time.Duration(ms) * time.Millisecond
}

// --- Admit ---

type redisBudgetSlot struct {
	scope      Scope
	budget     Budget
	start, end time.Time
}

type redisLimiterSlot struct {
	scope  Scope
	limit  RateLimit
	window int64 // ms
}

// Admit checks every budget (narrowest level first) and then every rate
// limit, and only if all pass reserves on every budget and counts on every
// limiter, in one Lua script. It also releases up to 64 expired leases first.
// A negative worst case or token estimate counts as 0; a lease ≤ 0 never
// expires.
func (r *RedisCounters) Admit(ctx context.Context, a *Admission) (*Ticket, *Rejection, error) {
	return r.admit(ctx, a, redisNewTicketID())
}

func (r *RedisCounters) admit(ctx context.Context, a *Admission, id string) (*Ticket, *Rejection, error) {
	if a == nil {
		return nil, nil, errors.New("redis counters: admit: nil admission")
	}
	worst, tokens := max(a.WorstCase, 0), max(a.Tokens, 0)
	if worst > RedisMaxMoney {
		return nil, nil, fmt.Errorf("redis counters: admit: worst case %s is beyond what Redis counters hold exactly (%s)", FormatUSD(worst), FormatUSD(RedisMaxMoney))
	}
	if tokens > int64(RedisMaxMoney) {
		return nil, nil, fmt.Errorf("redis counters: admit: token estimate %d is beyond 2^53", tokens)
	}
	if err := redisCheckLevels(a.Levels); err != nil {
		return nil, nil, err
	}

	nb, nr := 0, 0
	for i := range a.Levels {
		nb += len(a.Levels[i].Budgets)
		nr += len(a.Levels[i].RateLimits)
	}
	nowMs := a.Now.UnixMilli()
	budgets := make([]redisBudgetSlot, 0, nb)
	limiters := make([]redisLimiterSlot, 0, nr)
	keys := make([]string, 2, 2+nb+nr)
	keys[0], keys[1] = r.leasesKey, r.ticketKey(id)
	args := make([]any, 10, 10+2*nb+5*nr)

	var expiry, ticketTTL int64
	if a.Lease > 0 {
		expiry = nowMs + a.Lease.Milliseconds()
		ticketTTL = (a.Lease + redisTicketMargin).Milliseconds()
	}
	args[0], args[1], args[2], args[3] = nowMs, id, expiry, ticketTTL
	args[4], args[5], args[6], args[7] = r.prefix+"t:", redisSweepBatch, int64(worst), tokens
	args[8], args[9] = nb, nr

	for i := range a.Levels {
		lv := &a.Levels[i]
		for _, b := range lv.Budgets {
			start := b.Period.Start(a.Now, a.Location)
			end := b.Period.End(start)
			budgets = append(budgets, redisBudgetSlot{scope: lv.Scope, budget: b, start: start, end: end})
			keys = append(keys, r.budgetKey(lv.Scope, b.Period, start))
			args = append(args, int64(b.Limit), redisBudgetTTL(b.Period, end, a.Now))
		}
	}
	for i := range a.Levels {
		lv := &a.Levels[i]
		for _, l := range lv.RateLimits {
			w := l.Window.Milliseconds()
			idx := redisFloorDiv(nowMs, w)
			limiters = append(limiters, redisLimiterSlot{scope: lv.Scope, limit: l, window: w})
			keys = append(keys, r.limiterKey(lv.Scope, l))
			unit := "r"
			if l.Unit == RateTokens {
				unit = "t"
			}
			args = append(args, l.Limit, unit, w, idx, nowMs-idx*w)
		}
	}

	res, err := redisAdmitScript.Run(ctx, r.client, keys, args...).Int64Slice()
	if err != nil {
		return nil, nil, redisErr("admit", err)
	}
	if len(res) < 2 {
		return nil, nil, fmt.Errorf("redis counters: admit: unexpected reply %v", res)
	}
	switch res[0] {
	case 1:
		if res[1] != int64(nb) || len(res) != 2+3*nb+nr {
			return nil, nil, fmt.Errorf("redis counters: admit: unexpected reply %v", res)
		}
		t := &Ticket{ID: id, Admitted: a.Now}
		if nb > 0 {
			t.Reservations = make([]Reservation, nb)
		}
		for j, s := range budgets {
			t.Reservations[j] = Reservation{
				Scope:       s.scope,
				Budget:      s.budget,
				PeriodStart: s.start,
				Amount:      Money(res[2+3*j]),
				Partial:     res[3+3*j] == 1,
				Remaining:   Money(res[4+3*j]),
			}
		}
		for j, l := range limiters {
			if l.limit.Unit == RateTokens {
				// The window the tokens were counted in: the caller's, unless
				// another instance's clock has moved the limiter ahead.
				t.TokenCharges = append(t.TokenCharges, TokenCharge{Scope: l.scope, Limit: l.limit, Window: res[2+3*nb+j], Tokens: tokens})
			}
		}
		return t, nil, nil
	case 2:
		j := int(res[1]) - 1
		if j < 0 || j >= nb || len(res) != 6 {
			return nil, nil, fmt.Errorf("redis counters: admit: unexpected reply %v", res)
		}
		s := budgets[j]
		rej := &Rejection{
			Reason:        RejectBudget,
			Scope:         s.scope,
			Budget:        s.budget,
			Spent:         Money(res[2]),
			Reserved:      Money(res[3]),
			ResetAt:       s.end,
			HeldByPartial: res[4] == 1,
		}
		if rej.Held() {
			var until int64
			if res[5] > 0 {
				until = res[5] * int64(time.Millisecond)
			}
			rej.RetryAfter = heldRetryAfter(nowMs*int64(time.Millisecond), until)
		}
		return nil, rej, nil
	case 3:
		j := int(res[1]) - 1
		if j < 0 || j >= nr || len(res) != 5 {
			return nil, nil, fmt.Errorf("redis counters: admit: unexpected reply %v", res)
		}
		l := limiters[j]
		curr, prev, window := res[2], res[3], res[4]
		e := min(max(nowMs-window*l.window, 0), l.window)
		est := float64(curr) + float64(prev)*float64(l.window-e)/float64(l.window)
		retry := redisRetryAfter(l.limit.Unit, l.limit.Limit, curr, prev, e, l.window)
		return nil, &Rejection{
			Reason:     RejectRateLimit,
			Scope:      l.scope,
			RateLimit:  l.limit,
			RetryAfter: retry,
			ResetAt:    a.Now.Add(retry),
			Remaining:  max(0, l.limit.Limit-int64(math.Ceil(est))),
		}, nil
	}
	return nil, nil, fmt.Errorf("redis counters: admit: unexpected reply %v", res)
}

// --- Renew, Settle, Sweep, Status ---

// Renew moves the leases of tickets that are still live (not settled, not
// expired at now) to now + lease (lease ≤ 0: no expiry at all). Other
// tickets, and unchecked ones, are skipped.
func (r *RedisCounters) Renew(ctx context.Context, tickets []*Ticket, now time.Time, lease time.Duration) error {
	nowMs := now.UnixMilli()
	var expiry, ttl int64
	if lease > 0 {
		expiry = nowMs + lease.Milliseconds()
		ttl = (lease + redisTicketMargin).Milliseconds()
	}
	keys := []string{r.leasesKey}
	args := []any{nowMs, expiry, ttl}
	flush := func() error {
		if len(keys) == 1 {
			return nil
		}
		if err := redisRenewScript.Run(ctx, r.client, keys, args...).Err(); err != nil {
			return redisErr("renew", err)
		}
		keys, args = keys[:1], args[:3]
		return nil
	}
	for _, t := range tickets {
		if t == nil || t.Unchecked {
			continue
		}
		if err := redisCheckTicketID(t.ID); err != nil {
			return err
		}
		keys = append(keys, r.ticketKey(t.ID))
		args = append(args, t.ID)
		if len(keys) > redisRenewBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// Settle releases the ticket's reservations if it still holds them (its
// lease has not been swept), charges s.Cost to every budget in the period the
// ticket was admitted in (always, even after its lease was swept), and
// corrects its token charges by s.Tokens − the estimate, in the window
// charged if that is still the current or the previous one (counts never go
// below 0). Two budgets sharing a counter are charged once and report the
// same change. A second Settle of the same ticket returns (nil, nil) and
// changes nothing. An unchecked ticket (UncheckedTicket) reserved nothing:
// its cost is charged to the budgets it names and its tokens to its token
// limiters, once; an unchecked ticket that names none changes nothing.
func (r *RedisCounters) Settle(ctx context.Context, t *Ticket, s Settlement) ([]BudgetChange, error) {
	if t == nil || (t.Unchecked && len(t.Reservations) == 0 && len(t.TokenCharges) == 0) {
		return nil, nil
	}
	if err := redisCheckTicketID(t.ID); err != nil {
		return nil, err
	}
	if !redisMoneyOK(s.Cost) {
		return nil, fmt.Errorf("redis counters: settle: cost %s is beyond what Redis counters hold exactly (%s)", FormatUSD(s.Cost), FormatUSD(RedisMaxMoney))
	}
	nres, ntc := len(t.Reservations), len(t.TokenCharges)
	keys := make([]string, 3, 3+nres+ntc)
	keys[0], keys[1], keys[2] = r.leasesKey, r.ticketKey(t.ID), r.settledKey(t.ID)
	// Each distinct budget key once; slot[j] is reservation j's.
	slot := make([]int, nres)
	ttls := make([]int64, 0, nres)
	for j, res := range t.Reservations {
		k := r.budgetKey(res.Scope, res.Budget.Period, res.PeriodStart)
		slot[j] = redisIndexOf(keys[3:], k)
		if slot[j] < 0 {
			slot[j] = len(ttls)
			keys = append(keys, k)
			ttls = append(ttls, redisBudgetTTL(res.Budget.Period, res.Budget.Period.End(res.PeriodStart), s.Now))
		}
	}
	nb := len(ttls)
	args := make([]any, 5, 5+nb+4*ntc)
	args[0], args[1], args[2], args[3] = t.ID, int64(s.Cost), redisSettledTTL.Milliseconds(), nb
	for _, ttl := range ttls {
		args = append(args, ttl)
	}
	nowMs := s.Now.UnixMilli()
	for _, c := range t.TokenCharges {
		if err := redisCheckRateLimit(c.Scope, c.Limit); err != nil {
			return nil, err
		}
		k := r.limiterKey(c.Scope, c.Limit)
		if redisIndexOf(keys[3+nb:], k) >= 0 {
			continue // the same limiter twice on the path was counted once
		}
		w := c.Limit.Window.Milliseconds()
		keys = append(keys, k)
		args = append(args, redisFloorDiv(nowMs, w), c.Window, s.Tokens-c.Tokens, w)
	}
	args[4] = len(keys) - 3 - nb
	res, err := redisSettleScript.Run(ctx, r.client, keys, args...).Int64Slice()
	if err != nil {
		return nil, redisErr("settle", err)
	}
	if len(res) == 1 && res[0] == 0 {
		return nil, nil // settled before
	}
	if len(res) != 1+nb || res[0] != 1 {
		return nil, fmt.Errorf("redis counters: settle: unexpected reply %v", res)
	}
	if nres == 0 {
		return nil, nil
	}
	changes := make([]BudgetChange, nres)
	for j, rv := range t.Reservations {
		after := Money(res[1+slot[j]])
		changes[j] = BudgetChange{Scope: rv.Scope, Budget: rv.Budget, Before: after - s.Cost, After: after}
	}
	return changes, nil
}

func redisIndexOf(xs []string, x string) int {
	for i, y := range xs {
		if y == x {
			return i
		}
	}
	return -1
}

// Sweep releases the reservations of every lease that ended at or before
// now, 64 per script call. Idle budget and limiter keys need no sweeping:
// they expire by their TTLs.
func (r *RedisCounters) Sweep(ctx context.Context, now time.Time) error {
	keys := []string{r.leasesKey}
	nowMs := now.UnixMilli()
	for {
		n, err := redisSweepScript.Run(ctx, r.client, keys, nowMs, r.prefix+"t:", redisSweepBatch).Int64()
		if err != nil {
			return redisErr("sweep", err)
		}
		if n < redisSweepBatch {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return redisErr("sweep", err)
		}
	}
}

// Status reads the current period of every budget of the levels, in order,
// with one pipeline of HMGETs.
func (r *RedisCounters) Status(ctx context.Context, levels []Level, now time.Time, loc *time.Location) ([]BudgetStatus, error) {
	var out []BudgetStatus
	for _, lv := range levels {
		for _, b := range lv.Budgets {
			if err := redisCheckBudget(lv.Scope, b); err != nil {
				return nil, err
			}
			start := b.Period.Start(now, loc)
			out = append(out, BudgetStatus{Scope: lv.Scope, Budget: b, PeriodStart: start, ResetAt: b.Period.End(start)})
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	cmds := make([]*redis.SliceCmd, len(out))
	_, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range out {
			s := &out[i]
			cmds[i] = p.HMGet(ctx, r.budgetKey(s.Scope, s.Budget.Period, s.PeriodStart), "spent", "reserved")
		}
		return nil
	})
	if err != nil {
		return nil, redisErr("status", err)
	}
	for i, c := range cmds {
		vals := c.Val()
		if len(vals) != 2 {
			return nil, fmt.Errorf("redis counters: status: unexpected reply %v", vals)
		}
		spent, err1 := redisInt(vals[0])
		reserved, err2 := redisInt(vals[1])
		if err := errors.Join(err1, err2); err != nil {
			return nil, redisErr("status", err)
		}
		out[i].Spent, out[i].Reserved = Money(spent), Money(reserved)
	}
	return out, nil
}

// redisInt reads an integer field of an HMGET reply; a missing one is 0.
func redisInt(v any) (int64, error) {
	switch v := v.(type) {
	case nil:
		return 0, nil
	case string:
		return strconv.ParseInt(v, 10, 64)
	case int64:
		return v, nil
	}
	return 0, fmt.Errorf("unexpected value %v", v)
}
