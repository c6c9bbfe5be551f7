package cron

import "time"

// spec6 is a field schedule as bit sets, one bit per allowed value.
type spec6 struct {
	second, minute, hour, dom, month, dow uint64
	domStar, dowStar                      bool
}

// Next walks forward field by field, from the month down to the second,
// resetting the smaller fields whenever a larger one moves (the algorithm
// of robfig/cron, which Kubernetes uses). Wall-clock arithmetic happens in
// t's location, so daylight saving time behaves as in Kubernetes: a time
// that does not exist on a spring-forward day is skipped, and a time in
// the repeated hour of a fall-back day fires in both of its occurrences.
func (s *spec6) Next(t time.Time) time.Time {
	loc := t.Location()
	t = t.Add(time.Second - time.Duration(t.Nanosecond()))
	reset := false
	limit := t.Year() + 5

wrap:
	if t.Year() > limit {
		return time.Time{}
	}
	for s.month&(1<<uint(t.Month())) == 0 {
		if !reset {
			reset = true
			t = time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, loc)
		}
		t = t.AddDate(0, 1, 0)
		if t.Month() == time.January {
			goto wrap
		}
	}
	for !s.dayMatches(t) {
		if !reset {
			reset = true
			t = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
		}
		t = t.AddDate(0, 0, 1)
		// Midnight may not exist where DST starts at 00:00; land on the
		// day's first hour rather than drift into the previous day.
		if t.Hour() != 0 {
			if t.Hour() > 12 {
				t = t.Add(time.Duration(24-t.Hour()) * time.Hour)
			} else {
				t = t.Add(-time.Duration(t.Hour()) * time.Hour)
			}
		}
		if t.Day() == 1 {
			goto wrap
		}
	}
	for s.hour&(1<<uint(t.Hour())) == 0 {
		if !reset {
			reset = true
			t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), 0, 0, 0, loc)
		}
		t = t.Add(time.Hour)
		if t.Hour() == 0 {
			goto wrap
		}
	}
	for s.minute&(1<<uint(t.Minute())) == 0 {
		if !reset {
			reset = true
			t = t.Truncate(time.Minute)
		}
		t = t.Add(time.Minute)
		if t.Minute() == 0 {
			goto wrap
		}
	}
	for s.second&(1<<uint(t.Second())) == 0 {
		if !reset {
			reset = true
			t = t.Truncate(time.Second)
		}
		t = t.Add(time.Second)
		if t.Second() == 0 {
			goto wrap
		}
	}
	return t.In(loc)
}

// dayMatches applies Vixie cron's rule: if either day field is a star, a
// day must match both; otherwise matching either is enough ("0 0 1,15 *
// MON" fires on the 1st, the 15th and every Monday).
func (s *spec6) dayMatches(t time.Time) bool {
	dom := s.dom&(1<<uint(t.Day())) != 0
	dow := s.dow&(1<<uint(t.Weekday())) != 0
	if s.domStar || s.dowStar {
		return dom && dow
	}
	return dom || dow
}

// every is "@every <duration>": activations a fixed interval apart,
// counted from whatever time Next is given.
type every struct{ d time.Duration }

func (e every) Next(t time.Time) time.Time {
	return t.Add(e.d - time.Duration(t.Nanosecond()))
}
