package api

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Selector is a parsed label selector: all requirements must hold.
type Selector []Requirement

// Requirement is one term of a selector.
type Requirement struct {
	Key      string
	Operator string // =, !=, in, notin, exists, !
	Values   []string
}

// Matches reports whether labels satisfy every requirement. The empty
// selector matches everything.
func (s Selector) Matches(labels map[string]string) bool {
	for _, r := range s {
		v, ok := labels[r.Key]
		switch r.Operator {
		case "=":
			if !ok || v != r.Values[0] {
				return false
			}
		case "!=":
			if ok && v == r.Values[0] {
				return false
			}
		case "in":
			if !ok || !slices.Contains(r.Values, v) {
				return false
			}
		case "notin":
			if ok && slices.Contains(r.Values, v) {
				return false
			}
		case "exists":
			if !ok {
				return false
			}
		case "!":
			if ok {
				return false
			}
		}
	}
	return true
}

// String renders the selector in kubectl's -l syntax.
func (s Selector) String() string {
	parts := make([]string, 0, len(s))
	for _, r := range s {
		switch r.Operator {
		case "=", "!=":
			parts = append(parts, r.Key+r.Operator+r.Values[0])
		case "in", "notin":
			parts = append(parts, fmt.Sprintf("%s %s (%s)", r.Key, r.Operator, strings.Join(r.Values, ",")))
		case "exists":
			parts = append(parts, r.Key)
		case "!":
			parts = append(parts, "!"+r.Key)
		}
	}
	return strings.Join(parts, ",")
}

// ParseSelector parses kubectl's -l syntax: "app=web,tier!=db",
// "env in (prod,staging)", "env notin (dev)", "gpu", "!gpu".
func ParseSelector(s string) (Selector, error) {
	var sel Selector
	for _, term := range splitTerms(s) {
		term = strings.TrimSpace(term)
		if term == "" {
			continue
		}
		r, err := parseTerm(term)
		if err != nil {
			return nil, fmt.Errorf("selector %q: %w", s, err)
		}
		sel = append(sel, r)
	}
	return sel, nil
}

// splitTerms splits on commas outside parentheses.
func splitTerms(s string) []string {
	var out []string
	depth, start := 0, 0
	for i, c := range s {
		switch c {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

func parseTerm(t string) (Requirement, error) {
	if strings.HasPrefix(t, "!") {
		k := strings.TrimSpace(t[1:])
		return Requirement{Key: k, Operator: "!"}, validLabelKeyErr(k)
	}
	for _, op := range []string{" notin ", " in "} {
		if i := strings.Index(t, op); i > 0 {
			k := strings.TrimSpace(t[:i])
			rest := strings.TrimSpace(t[i+len(op):])
			if !strings.HasPrefix(rest, "(") || !strings.HasSuffix(rest, ")") {
				return Requirement{}, fmt.Errorf("%q: values of %s must be in parentheses", t, strings.TrimSpace(op))
			}
			var vals []string
			for _, v := range strings.Split(rest[1:len(rest)-1], ",") {
				v = strings.TrimSpace(v)
				if err := validLabelValueErr(v); err != nil {
					return Requirement{}, err
				}
				vals = append(vals, v)
			}
			sort.Strings(vals)
			return Requirement{Key: k, Operator: strings.TrimSpace(op), Values: vals}, validLabelKeyErr(k)
		}
	}
	for _, op := range []string{"!=", "==", "="} {
		if i := strings.Index(t, op); i > 0 {
			k, v := strings.TrimSpace(t[:i]), strings.TrimSpace(t[i+len(op):])
			if err := validLabelKeyErr(k); err != nil {
				return Requirement{}, err
			}
			if err := validLabelValueErr(v); err != nil {
				return Requirement{}, err
			}
			o := op
			if o == "==" {
				o = "="
			}
			return Requirement{Key: k, Operator: o, Values: []string{v}}, nil
		}
	}
	return Requirement{Key: t, Operator: "exists"}, validLabelKeyErr(t)
}

// SelectorFromSet selects objects carrying every label in m.
func SelectorFromSet(m map[string]string) Selector {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	sel := make(Selector, 0, len(keys))
	for _, k := range keys {
		sel = append(sel, Requirement{Key: k, Operator: "=", Values: []string{m[k]}})
	}
	return sel
}

// AsSelector converts a LabelSelector to a Selector.
func (ls *LabelSelector) AsSelector() (Selector, error) {
	if ls == nil {
		return nil, nil
	}
	sel := SelectorFromSet(ls.MatchLabels)
	for i, e := range ls.MatchExpressions {
		r := Requirement{Key: e.Key, Values: slices.Clone(e.Values)}
		switch e.Operator {
		case "In":
			r.Operator = "in"
		case "NotIn":
			r.Operator = "notin"
		case "Exists":
			r.Operator = "exists"
		case "DoesNotExist":
			r.Operator = "!"
		default:
			return nil, fmt.Errorf("matchExpressions[%d].operator: %q is not In, NotIn, Exists or DoesNotExist", i, e.Operator)
		}
		if (r.Operator == "in" || r.Operator == "notin") && len(r.Values) == 0 {
			return nil, fmt.Errorf("matchExpressions[%d].values: must be non-empty for %s", i, e.Operator)
		}
		if (r.Operator == "exists" || r.Operator == "!") && len(r.Values) != 0 {
			return nil, fmt.Errorf("matchExpressions[%d].values: must be empty for %s", i, e.Operator)
		}
		sel = append(sel, r)
	}
	return sel, nil
}

// FormatLabels renders labels as k=v,k=v sorted by key, or <none>.
func FormatLabels(m map[string]string) string {
	if len(m) == 0 {
		return "<none>"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ",")
}
