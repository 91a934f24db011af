package governance

import (
	"errors"
	"math/bits"
	"strconv"
	"strings"
)

// Money is an amount of US dollars in nano-dollars (1e-9 USD). Every cost,
// total and price in the gateway is a Money, so sums never drift.
type Money int64

// Common amounts.
const (
	Nano   Money = 1
	Dollar Money = 1_000_000_000
)

// USD returns m as a float64 number of dollars, for metrics and JSON only;
// never compute with it.
func (m Money) USD() float64 { return float64(m) / float64(Dollar) }

// String formats m as dollars with all nine decimals, e.g. "0.000123450".
func (m Money) String() string {
	neg := m < 0
	u := uint64(m)
	if neg {
		u = uint64(-m)
	}
	whole, frac := u/uint64(Dollar), u%uint64(Dollar)
	s := strconv.FormatUint(whole, 10) + "." + leftPad9(strconv.FormatUint(frac, 10))
	if neg {
		return "-" + s
	}
	return s
}

func leftPad9(s string) string {
	if len(s) >= 9 {
		return s
	}
	return strings.Repeat("0", 9-len(s)) + s
}

// ParseMoney reads a non-negative decimal dollar amount ("3", "0.30",
// "22.50", "0.000000001") exactly; more than nine decimals is an error
// rather than a silent rounding.
func ParseMoney(s string) (Money, error) {
	s = strings.TrimPrefix(s, "$")
	if s == "" {
		return 0, errors.New("empty amount")
	}
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" && (!hasDot || frac == "") {
		return 0, errors.New("invalid amount " + strconv.Quote(s))
	}
	if len(frac) > 9 {
		return 0, errors.New("amount " + strconv.Quote(s) + " has more than nine decimals")
	}
	var w uint64
	if whole != "" {
		var err error
		w, err = strconv.ParseUint(whole, 10, 63)
		if err != nil {
			return 0, errors.New("invalid amount " + strconv.Quote(s))
		}
	}
	var f uint64
	if frac != "" {
		var err error
		f, err = strconv.ParseUint(frac+strings.Repeat("0", 9-len(frac)), 10, 64)
		if err != nil {
			return 0, errors.New("invalid amount " + strconv.Quote(s))
		}
	}
	hi, lo := bits.Mul64(w, uint64(Dollar))
	lo, carry := bits.Add64(lo, f, 0)
	if hi != 0 || carry != 0 || lo > 1<<63-1 {
		return 0, errors.New("amount " + strconv.Quote(s) + " is too large")
	}
	return Money(lo), nil
}

// accumulator sums token × price products (nano-dollars per million tokens)
// in 128 bits so no realistic request can overflow before the single
// division at the end.
type accumulator struct{ hi, lo uint64 }

func (a *accumulator) add(tokens int64, perMillion Money) {
	if tokens <= 0 || perMillion <= 0 {
		return
	}
	hi, lo := bits.Mul64(uint64(tokens), uint64(perMillion))
	var c uint64
	a.lo, c = bits.Add64(a.lo, lo, 0)
	a.hi, _ = bits.Add64(a.hi, hi, c)
}

// perMillionRoundHalfUp divides the sum by one million, rounding half up, and
// saturates at the largest Money.
func (a *accumulator) perMillionRoundHalfUp() Money {
	lo, c := bits.Add64(a.lo, 500_000, 0)
	hi := a.hi + c
	if hi >= 1_000_000 {
		return Money(1<<63 - 1)
	}
	q, _ := bits.Div64(hi, lo, 1_000_000)
	if q > 1<<63-1 {
		return Money(1<<63 - 1)
	}
	return Money(q)
}
