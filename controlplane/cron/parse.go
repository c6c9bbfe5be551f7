// Package cron parses cron schedules and computes their next activation.
//
// The syntax is Vixie cron's five fields, minute hour day-of-month month
// day-of-week, each a '*', a number, a name (JAN-DEC, SUN-SAT), a range
// a-b, a step */n or a-b/n, or a comma-separated list of those. Macros:
// @yearly (@annually), @monthly, @weekly, @daily (@midnight), @hourly, and
// @every <duration> (a fixed interval, as robfig/cron has it).
//
// Flotilla extension: a schedule of exactly SIX fields has a leading
// seconds field ("*/2 * * * * *" fires every two seconds). Kubernetes has
// no sub-minute schedules; Flotilla has them so that a CronJob can be seen
// firing within a test-sized interval.
package cron

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Schedule is a parsed schedule.
type Schedule interface {
	// Next returns the first activation strictly after t, in t's location,
	// or the zero time when there is none within five years (30 February).
	Next(t time.Time) time.Time
}

// field describes one position of a schedule.
type field struct {
	name     string
	min, max int
	names    map[string]int
}

var (
	secondField = field{name: "second", min: 0, max: 59}
	minuteField = field{name: "minute", min: 0, max: 59}
	hourField   = field{name: "hour", min: 0, max: 23}
	domField    = field{name: "day-of-month", min: 1, max: 31}
	monthField  = field{name: "month", min: 1, max: 12, names: map[string]int{
		"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
		"jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12,
	}}
	// Day-of-week accepts 7 for Sunday, as Vixie cron does.
	dowField = field{name: "day-of-week", min: 0, max: 7, names: map[string]int{
		"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6,
	}}
)

var macros = map[string]string{
	"@yearly":   "0 0 1 1 *",
	"@annually": "0 0 1 1 *",
	"@monthly":  "0 0 1 * *",
	"@weekly":   "0 0 * * 0",
	"@daily":    "0 0 * * *",
	"@midnight": "0 0 * * *",
	"@hourly":   "0 * * * *",
}

// Parse reads a schedule. Errors quote the schedule and name the field,
// e.g. `"61 * * * *": minute 61 out of range 0-59`.
func Parse(spec string) (Schedule, error) {
	s, err := parse(strings.TrimSpace(spec))
	if err != nil {
		return nil, fmt.Errorf("%q: %w", spec, err)
	}
	return s, nil
}

func parse(spec string) (Schedule, error) {
	if spec == "" {
		return nil, fmt.Errorf("empty schedule")
	}
	if strings.HasPrefix(spec, "@") {
		if rest, ok := strings.CutPrefix(spec, "@every "); ok {
			d, err := time.ParseDuration(strings.TrimSpace(rest))
			if err != nil {
				return nil, fmt.Errorf("@every: %w", err)
			}
			if d < time.Second {
				return nil, fmt.Errorf("@every: interval %s is shorter than 1s", d)
			}
			return every{d: d.Truncate(time.Second)}, nil
		}
		m, ok := macros[strings.ToLower(spec)]
		if !ok {
			return nil, fmt.Errorf("unknown macro %s: want @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly or @every <duration>", spec)
		}
		spec = m
	}
	parts := strings.Fields(spec)
	fields := []field{minuteField, hourField, domField, monthField, dowField}
	s := &spec6{}
	targets := []*uint64{&s.minute, &s.hour, &s.dom, &s.month, &s.dow}
	switch len(parts) {
	case 5:
		s.second = 1 // second 0
	case 6:
		fields = append([]field{secondField}, fields...)
		targets = append([]*uint64{&s.second}, targets...)
	default:
		return nil, fmt.Errorf("expected 5 fields (minute hour day-of-month month day-of-week) or 6 with leading seconds, got %d", len(parts))
	}
	for i, p := range parts {
		bits, err := parseField(p, fields[i])
		if err != nil {
			return nil, err
		}
		*targets[i] = bits
	}
	off := len(parts) - 5
	// Vixie cron: when either day field starts with '*', both must match;
	// otherwise a day matching either one is enough.
	s.domStar = strings.HasPrefix(parts[off+2], "*")
	s.dowStar = strings.HasPrefix(parts[off+4], "*")
	if s.dow&(1<<7) != 0 {
		s.dow |= 1 // 7 is Sunday
	}
	return s, nil
}

// parseField turns one field into a bit set of the values it allows.
func parseField(expr string, f field) (uint64, error) {
	var bits uint64
	for _, item := range strings.Split(expr, ",") {
		if item == "" {
			return 0, fmt.Errorf("%s: empty list item in %q", f.name, expr)
		}
		rng, stepStr, hasStep := strings.Cut(item, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepStr)
			if err != nil || n < 1 {
				return 0, fmt.Errorf("%s: step %q is not a positive number", f.name, stepStr)
			}
			step = n
		}
		var lo, hi int
		switch {
		case rng == "*":
			lo, hi = f.min, f.max
			if f.name == dowField.name {
				hi = 6 // 7 would repeat Sunday
			}
		case strings.Contains(rng, "-"):
			a, b, _ := strings.Cut(rng, "-")
			var err error
			if lo, err = value(a, f); err != nil {
				return 0, err
			}
			if hi, err = value(b, f); err != nil {
				return 0, err
			}
			if f.name == dowField.name && hi == 0 && lo > 0 {
				hi = 7 // "FRI-SUN": Sunday closes the week
			}
			if lo > hi {
				return 0, fmt.Errorf("%s: range %s-%s runs backwards", f.name, a, b)
			}
		default:
			v, err := value(rng, f)
			if err != nil {
				return 0, err
			}
			lo, hi = v, v
			if hasStep {
				hi = f.max // "5/15" means 5-max/15, as in Vixie cron
			}
		}
		for v := lo; v <= hi; v += step {
			bits |= 1 << uint(v)
		}
	}
	return bits, nil
}

func value(s string, f field) (int, error) {
	if v, ok := f.names[strings.ToLower(s)]; ok {
		return v, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		if f.names != nil {
			return 0, fmt.Errorf("%s %q is not a number or a name", f.name, s)
		}
		return 0, fmt.Errorf("%s %q is not a number", f.name, s)
	}
	if v < f.min || v > f.max {
		return 0, fmt.Errorf("%s %d out of range %d-%d", f.name, v, f.min, f.max)
	}
	return v, nil
}
