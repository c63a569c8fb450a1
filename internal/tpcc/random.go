package tpcc

import (
	"fmt"
	"math/rand/v2"
)

// rng is the random source of one loader or terminal; not safe for
// concurrent use.
type rng struct {
	r *rand.Rand
	// cLast, cID and olIID are the run-time constants C of NURand (clause
	// 2.1.6) for customer last names, customer ids and item ids.
	cLast, cID, olIID int
}

func newRNG(seed uint64) *rng {
	r := rand.New(rand.NewPCG(seed, 0x7470_6363))
	return &rng{r: r, cLast: r.IntN(256), cID: r.IntN(1024), olIID: r.IntN(8192)}
}

// between returns a uniform integer in [lo, hi].
func (g *rng) between(lo, hi int) int { return lo + g.r.IntN(hi-lo+1) }

// nurand is NURand(A, x, y) of clause 2.1.6, with c the run-time constant.
func (g *rng) nurand(a, x, y, c int) int {
	return (((g.between(0, a) | g.between(x, y)) + c) % (y - x + 1)) + x
}

const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// astring is a random a-string of length in [lo, hi].
func (g *rng) astring(lo, hi int) string {
	b := make([]byte, g.between(lo, hi))
	for i := range b {
		b[i] = alnum[g.r.IntN(len(alnum))]
	}
	return string(b)
}

// nstring is a random n-string (digits) of length in [lo, hi].
func (g *rng) nstring(lo, hi int) string {
	b := make([]byte, g.between(lo, hi))
	for i := range b {
		b[i] = byte('0' + g.r.IntN(10))
	}
	return string(b)
}

// zip is a zip code: four digits and "11111".
func (g *rng) zip() string { return g.nstring(4, 4) + "11111" }

// original puts "ORIGINAL" into 10% of the data strings (I_DATA, S_DATA).
func (g *rng) original(s string) string {
	if g.r.IntN(10) != 0 {
		return s
	}
	at := g.r.IntN(len(s) - 7)
	return s[:at] + "ORIGINAL" + s[at+8:]
}

var syllables = [...]string{"BAR", "OUGHT", "ABLE", "PRI", "PRES", "ESE", "ANTI", "CALLY", "ATION", "EING"}

// lastName is C_LAST for the number n in [0, 999] (clause 4.3.2.3).
func lastName(n int) string {
	return syllables[n/100] + syllables[(n/10)%10] + syllables[n%10]
}

// lastNameFor returns a last name that customers of a population with
// customers per district can have: numbers beyond their count are folded
// into it, as the population's names are assigned below.
func lastNameNumber(c Config, n int) int {
	if m := min(c.Customers, 1000); n >= m {
		return n % m
	}
	return n
}

// decimal formats a random amount in [lo, hi] hundredths as "12.34".
func (g *rng) decimal(lo, hi int) string { return cents(int64(g.between(lo, hi))) }

// cents formats hundredths as a decimal string.
func cents(n int64) string {
	sign := ""
	if n < 0 {
		sign, n = "-", -n
	}
	return fmt.Sprintf("%s%d.%02d", sign, n/100, n%100)
}

// fraction formats a random value in [lo, hi] ten-thousandths as "0.1234".
func (g *rng) fraction(lo, hi int) string {
	return "0." + fmt.Sprintf("%04d", g.between(lo, hi))
}
