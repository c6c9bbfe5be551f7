package api

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Quantity is a resource amount written the Kubernetes way: "250m" or
// "0.5" CPUs, "64Mi" or "128M" bytes. It keeps its text and its value in
// thousandths.
type Quantity struct {
	text  string
	milli int64
}

var quantitySuffixes = []struct {
	s string
	f float64
}{
	{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40},
	{"k", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12}, {"m", 1e-3},
}

// ParseQuantity parses a quantity such as "100m", "2", "64Mi".
func ParseQuantity(s string) (Quantity, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Quantity{}, fmt.Errorf("quantity is empty")
	}
	num, mult := s, 1.0
	for _, suf := range quantitySuffixes {
		if strings.HasSuffix(s, suf.s) {
			num, mult = strings.TrimSuffix(s, suf.s), suf.f
			break
		}
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return Quantity{}, fmt.Errorf("quantity %q: must be a non-negative number with an optional suffix (m, k, M, G, Ki, Mi, Gi)", s)
	}
	m := v * mult * 1000
	if m > math.MaxInt64/2 {
		return Quantity{}, fmt.Errorf("quantity %q is too large", s)
	}
	return Quantity{text: s, milli: int64(math.Ceil(m))}, nil
}

// MustParseQuantity is ParseQuantity for constants; it panics on error.
func MustParseQuantity(s string) Quantity {
	q, err := ParseQuantity(s)
	if err != nil {
		panic(err)
	}
	return q
}

// MilliValue is the amount in thousandths (millicores for CPU).
func (q Quantity) MilliValue() int64 { return q.milli }

// Value is the amount rounded up to a whole unit (bytes for memory).
func (q Quantity) Value() int64 { return (q.milli + 999) / 1000 }

// String returns the quantity as written.
func (q Quantity) String() string {
	if q.text == "" {
		return "0"
	}
	return q.text
}

// MarshalJSON writes the quantity as a string.
func (q Quantity) MarshalJSON() ([]byte, error) { return json.Marshal(q.String()) }

// UnmarshalJSON accepts a string or a number.
func (q *Quantity) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n json.Number
		if err2 := json.Unmarshal(b, &n); err2 != nil {
			return fmt.Errorf("quantity must be a string or number")
		}
		s = n.String()
	}
	p, err := ParseQuantity(s)
	if err != nil {
		return err
	}
	*q = p
	return nil
}
