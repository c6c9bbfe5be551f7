package cron

import (
	"strings"
	"testing"
	"time"
)

func mustLoad(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Skipf("time zone %s unavailable: %v", name, err)
	}
	return loc
}

func TestNext(t *testing.T) {
	// 2024-01-10 is a Wednesday.
	utc := func(s string) time.Time {
		v, err := time.Parse("2006-01-02 15:04:05", s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name, spec, from, want string
	}{
		{"every minute moves to the next whole minute", "* * * * *", "2024-01-10 10:00:30", "2024-01-10 10:01:00"},
		{"an exact match is not returned again", "* * * * *", "2024-01-10 10:01:00", "2024-01-10 10:02:00"},
		{"step over minutes", "*/15 * * * *", "2024-01-10 10:16:00", "2024-01-10 10:30:00"},
		{"step wraps into the next hour", "*/15 * * * *", "2024-01-10 10:45:00", "2024-01-10 11:00:00"},
		{"range with step", "10-30/10 * * * *", "2024-01-10 10:25:00", "2024-01-10 10:30:00"},
		{"number with step runs to the end of the range", "50/5 * * * *", "2024-01-10 10:51:00", "2024-01-10 10:55:00"},
		{"list", "5,35 * * * *", "2024-01-10 10:06:00", "2024-01-10 10:35:00"},
		{"fixed time of day tomorrow", "30 6 * * *", "2024-01-10 07:00:00", "2024-01-11 06:30:00"},
		{"month names", "0 0 1 MAR,jun *", "2024-01-10 00:00:00", "2024-03-01 00:00:00"},
		{"day-of-week names", "0 9 * * FRI", "2024-01-10 10:00:00", "2024-01-12 09:00:00"},
		{"day-of-week range of names", "0 9 * * thu-sat", "2024-01-10 10:00:00", "2024-01-11 09:00:00"},
		{"a day-of-week range may end on Sunday", "0 9 * * sat-sun", "2024-01-10 10:00:00", "2024-01-13 09:00:00"},
		{"seven is Sunday", "0 9 * * 7", "2024-01-10 10:00:00", "2024-01-14 09:00:00"},
		{"day-of-month and day-of-week are ORed when both restricted", "0 0 15 * MON", "2024-01-10 00:00:00", "2024-01-15 00:00:00"},
		{"OR semantics pick the weekday before the date", "0 0 20 * FRI", "2024-01-10 00:00:00", "2024-01-12 00:00:00"},
		{"a star day-of-week means the date alone decides", "0 0 20 * *", "2024-01-10 00:00:00", "2024-01-20 00:00:00"},
		{"a starred step in day-of-month ANDs with day-of-week", "0 0 */2 * MON", "2024-01-10 00:00:00", "2024-01-15 00:00:00"},
		{"31st skips short months", "0 0 31 * *", "2024-04-01 00:00:00", "2024-05-31 00:00:00"},
		{"29 February waits for a leap year", "0 0 29 2 *", "2024-03-01 00:00:00", "2028-02-29 00:00:00"},
		{"year wrap", "0 0 1 1 *", "2024-12-31 23:59:59", "2025-01-01 00:00:00"},
		{"@hourly", "@hourly", "2024-01-10 10:00:00", "2024-01-10 11:00:00"},
		{"@daily", "@daily", "2024-01-10 10:00:00", "2024-01-11 00:00:00"},
		{"@midnight", "@midnight", "2024-01-10 10:00:00", "2024-01-11 00:00:00"},
		{"@weekly is Sunday midnight", "@weekly", "2024-01-10 10:00:00", "2024-01-14 00:00:00"},
		{"@monthly", "@monthly", "2024-01-10 10:00:00", "2024-02-01 00:00:00"},
		{"@yearly", "@yearly", "2024-01-10 10:00:00", "2025-01-01 00:00:00"},
		{"@annually", "@annually", "2024-01-10 10:00:00", "2025-01-01 00:00:00"},
		{"@every counts from the given time", "@every 90s", "2024-01-10 10:00:00", "2024-01-10 10:01:30"},
		{"six fields: seconds step", "*/2 * * * * *", "2024-01-10 10:00:01", "2024-01-10 10:00:02"},
		{"six fields: seconds wrap into the minute", "*/20 * * * * *", "2024-01-10 10:00:41", "2024-01-10 10:01:00"},
		{"six fields: fixed second", "30 0 12 * * *", "2024-01-10 10:00:00", "2024-01-10 12:00:30"},
		{"never: 30 February", "0 0 30 2 *", "2024-01-10 00:00:00", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			got := s.Next(utc(tt.from))
			if tt.want == "" {
				if !got.IsZero() {
					t.Fatalf("Next = %s, want none", got)
				}
				return
			}
			if want := utc(tt.want); !got.Equal(want) {
				t.Fatalf("Next(%s) = %s, want %s", tt.from, got, want)
			}
		})
	}
}

func TestNextAcrossDaylightSavingTime(t *testing.T) {
	ny := mustLoad(t, "America/New_York")
	at := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, ny)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name, spec string
		from       time.Time
		want       []string // successive activations, as RFC 3339 with offset
	}{
		{"a daily time keeps its wall clock across spring forward", "0 9 * * *", at("2024-03-09 10:00"),
			[]string{"2024-03-10T09:00:00-04:00", "2024-03-11T09:00:00-04:00"}},
		{"a time inside the spring-forward gap is skipped that day", "30 2 * * *", at("2024-03-09 03:00"),
			[]string{"2024-03-11T02:30:00-04:00"}},
		{"hourly steps over the missing hour", "0 * * * *", at("2024-03-10 01:30"),
			[]string{"2024-03-10T03:00:00-04:00"}},
		{"a time in the repeated fall-back hour fires in both occurrences", "30 1 * * *", at("2024-11-03 00:00"),
			[]string{"2024-11-03T01:30:00-04:00", "2024-11-03T01:30:00-05:00", "2024-11-04T01:30:00-05:00"}},
		{"a daily time keeps its wall clock across fall back", "0 9 * * *", at("2024-11-02 10:00"),
			[]string{"2024-11-03T09:00:00-05:00"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			cur := tt.from
			for _, w := range tt.want {
				cur = s.Next(cur)
				if got := cur.Format(time.RFC3339); got != w {
					t.Fatalf("Next = %s, want %s", got, w)
				}
			}
		})
	}
}

func TestParseErrorsNameTheField(t *testing.T) {
	tests := []struct{ spec, want string }{
		{"61 * * * *", `"61 * * * *": minute 61 out of range 0-59`},
		{"* 24 * * *", "hour 24 out of range 0-23"},
		{"* * 0 * *", "day-of-month 0 out of range 1-31"},
		{"* * 32 * *", "day-of-month 32 out of range 1-31"},
		{"* * * 13 *", "month 13 out of range 1-12"},
		{"* * * * 8", "day-of-week 8 out of range 0-7"},
		{"60 * * * * *", "second 60 out of range 0-59"},
		{"* * * FOO *", `month "FOO" is not a number or a name`},
		{"* * * * funday", `day-of-week "funday" is not a number or a name`},
		{"x * * * *", `minute "x" is not a number`},
		{"*/0 * * * *", `minute: step "0" is not a positive number`},
		{"30-10 * * * *", "minute: range 30-10 runs backwards"},
		{"1,,2 * * * *", "minute: empty list item"},
		{"* * * *", "expected 5 fields"},
		{"* * * * * * *", "got 7"},
		{"", "empty schedule"},
		{"@fortnightly", "unknown macro @fortnightly"},
		{"@every 500ms", "shorter than 1s"},
		{"@every soon", "@every: time: invalid duration"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			_, err := Parse(tt.spec)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse(%q) error = %v, want it to contain %q", tt.spec, err, tt.want)
			}
		})
	}
}
