package stripefake

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// form reads a request's parameters, in Stripe's bracket notation
// (line_items[0][price_data][currency]), and remembers which were read so
// that the rest can be refused as unknown, as Stripe refuses them.
type form struct {
	vals url.Values
	read map[string]bool
}

func newForm(v url.Values) *form { return &form{vals: v, read: map[string]bool{}} }

// str returns a parameter and whether it was given.
func (f *form) str(key string) (string, bool) {
	f.read[key] = true
	v, ok := f.vals[key]
	if !ok || len(v) == 0 {
		return "", false
	}
	return v[0], true
}

// int returns an integer parameter; bad is set for one that is not.
func (f *form) int(key string) (n int64, given, bad bool) {
	s, ok := f.str(key)
	if !ok {
		return 0, false, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, true, err != nil
}

// bool returns a boolean parameter.
func (f *form) bool(key string) (v, given bool) {
	s, ok := f.str(key)
	return s == "true", ok
}

// dict returns the parameters key[NAME] as a map.
func (f *form) dict(key string) map[string]string {
	out := map[string]string{}
	for k, v := range f.vals {
		name, ok := strings.CutPrefix(k, key+"[")
		if !ok || !strings.HasSuffix(name, "]") || strings.Contains(name, "[") {
			continue
		}
		f.read[k] = true
		if len(v) > 0 {
			out[strings.TrimSuffix(name, "]")] = v[0]
		}
	}
	return out
}

// list returns the indexes i given as key[i][...] or key[i], in order.
func (f *form) list(key string) []int {
	var idx []int
	for k := range f.vals {
		rest, ok := strings.CutPrefix(k, key+"[")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(rest[:max(strings.Index(rest, "]"), 0)])
		if err == nil && !slices.Contains(idx, n) {
			idx = append(idx, n)
		}
	}
	slices.Sort(idx)
	return idx
}

// unknown returns the first parameter not read, in sorted order.
func (f *form) unknown() string {
	keys := make([]string, 0, len(f.vals))
	for k := range f.vals {
		if !f.read[k] {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	if len(keys) == 0 {
		return ""
	}
	return keys[0]
}
