package main

// Values handling, ported from Helm 3's pkg/cli/values (how -f/--set are
// merged with each other), pkg/strvals (the --set parser) and
// pkg/chartutil/coalesce.go (how the result is laid over values.yaml).
//
// The two merges differ on purpose, exactly as in Helm: between -f files a
// `null` just replaces the earlier value, and only coalescing against the
// chart's values.yaml turns a user `null` into "delete this default".

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Values is the type of `.Values` (Helm: chartutil.Values).
type Values map[string]interface{}

// valueOptions are the user-supplied value sources, in Helm's precedence
// order: files, then --set, then --set-string, then --set-file.
type valueOptions struct {
	valueFiles   []string
	values       []string
	stringValues []string
	fileValues   []string
}

// mergeUserValues is Helm's values.Options.MergeValues.
func (o valueOptions) mergeUserValues() (map[string]interface{}, error) {
	base := map[string]interface{}{}
	for _, path := range o.valueFiles {
		data, err := readValuesFile(path)
		if err != nil {
			return nil, err
		}
		current := map[string]interface{}{}
		if err := yamlUnmarshal(data, &current); err != nil {
			return nil, fmt.Errorf("failed to parse %s: %v", path, err)
		}
		base = mergeMaps(base, current)
	}
	for _, v := range o.values {
		if err := parseSetInto(v, base, typedVal); err != nil {
			return nil, fmt.Errorf("failed parsing --set data: %v", err)
		}
	}
	for _, v := range o.stringValues {
		if err := parseSetInto(v, base, stringVal); err != nil {
			return nil, fmt.Errorf("failed parsing --set-string data: %v", err)
		}
	}
	for _, v := range o.fileValues {
		reader := func(rs []rune) (interface{}, error) {
			data, err := readValuesFile(string(rs))
			return string(data), err
		}
		if err := parseSetInto(v, base, reader); err != nil {
			return nil, fmt.Errorf("failed parsing --set-file data: %v", err)
		}
	}
	return base, nil
}

func readValuesFile(path string) ([]byte, error) {
	if strings.TrimSpace(path) == "-" {
		return io.ReadAll(os.Stdin)
	}
	return os.ReadFile(path)
}

func mergeMaps(a, b map[string]interface{}) map[string]interface{} {
	out := make(map[string]interface{}, len(a))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if v, ok := v.(map[string]interface{}); ok {
			if bv, ok := out[k]; ok {
				if bv, ok := bv.(map[string]interface{}); ok {
					out[k] = mergeMaps(bv, v)
					continue
				}
			}
		}
		out[k] = v
	}
	return out
}

// coalesceValues is chartutil.CoalesceValues for a chart without
// dependencies: user values win, maps merge, and a user nil deletes the
// chart's default. chartName only prefixes the warnings, as in Helm.
func coalesceValues(chartName string, chartVals, userVals map[string]interface{}, warn func(string, ...interface{})) Values {
	v, _ := deepCopy(userVals).(map[string]interface{})
	if v == nil {
		v = map[string]interface{}{}
	}
	vc, _ := deepCopy(chartVals).(map[string]interface{})
	for key, val := range vc {
		value, ok := v[key]
		if !ok {
			v[key] = val
			continue
		}
		if value == nil {
			delete(v, key)
		} else if dest, ok := value.(map[string]interface{}); ok {
			src, ok := val.(map[string]interface{})
			if !ok {
				if val != nil {
					warn("warning: skipped value for %s.%s: Not a table.", chartName, key)
				}
			} else {
				coalesceTables(dest, src, concatPrefix(chartName, key), warn)
			}
		}
	}
	return Values(v)
}

// coalesceTables is chartutil.coalesceTablesFullKey with merge=false: dst
// (the user's side) is authoritative.
func coalesceTables(dst, src map[string]interface{}, prefix string, warn func(string, ...interface{})) map[string]interface{} {
	if src == nil {
		return dst
	}
	if dst == nil {
		return src
	}
	for key, val := range src {
		fullkey := concatPrefix(prefix, key)
		dv, ok := dst[key]
		switch {
		case ok && dv == nil:
			delete(dst, key)
		case !ok:
			dst[key] = val
		case isTable(val):
			if isTable(dv) {
				coalesceTables(dv.(map[string]interface{}), val.(map[string]interface{}), fullkey, warn)
			} else {
				warn("warning: cannot overwrite table with non table for %s (%v)", fullkey, val)
			}
		case isTable(dv) && val != nil:
			warn("warning: destination for %s is a table. Ignoring non-table value (%v)", fullkey, val)
		}
	}
	return dst
}

func concatPrefix(a, b string) string {
	if a == "" {
		return b
	}
	return a + "." + b
}

func isTable(v interface{}) bool {
	_, ok := v.(map[string]interface{})
	return ok
}

// deepCopy stands in for mitchellh/copystructure on the only shapes values
// can have (what JSON and --set produce).
func deepCopy(v interface{}) interface{} {
	switch t := v.(type) {
	case map[string]interface{}:
		if t == nil {
			return t
		}
		out := make(map[string]interface{}, len(t))
		for k, e := range t {
			out[k] = deepCopy(e)
		}
		return out
	case Values:
		return deepCopy(map[string]interface{}(t))
	case []interface{}:
		if t == nil {
			return t
		}
		out := make([]interface{}, len(t))
		for i, e := range t {
			out[i] = deepCopy(e)
		}
		return out
	default:
		return v
	}
}

// ---- --set parser (port of helm.sh/helm/v3/pkg/strvals/parser.go) ----

// maxIndex caps list indexes like Helm does, so `a[99999999]=x` cannot
// allocate gigabytes.
const maxIndex = 65536

var errNotList = errors.New("not a list")

type runesToVal func([]rune) (interface{}, error)

func typedVal(rs []rune) (interface{}, error)  { return typedValue(string(rs)), nil }
func stringVal(rs []rune) (interface{}, error) { return string(rs), nil }

// typedValue is strvals.typedVal: true/false/null and plain integers are
// typed (integers as int64, unlike values files where they become float64).
func typedValue(val string) interface{} {
	if strings.EqualFold(val, "true") {
		return true
	}
	if strings.EqualFold(val, "false") {
		return false
	}
	if strings.EqualFold(val, "null") {
		return nil
	}
	if strings.EqualFold(val, "0") {
		return int64(0)
	}
	// A leading zero keeps the value a string (e.g. "0123", octal-looking).
	if len(val) != 0 && val[0] != '0' {
		if iv, err := strconv.ParseInt(val, 10, 64); err == nil {
			return iv
		}
	}
	return val
}

type setParser struct {
	sc         *bytes.Buffer
	data       map[string]interface{}
	runesToVal runesToVal
}

func parseSetInto(s string, dest map[string]interface{}, conv runesToVal) error {
	p := &setParser{sc: bytes.NewBufferString(s), data: dest, runesToVal: conv}
	for {
		err := p.key(p.data)
		if err == nil {
			continue
		}
		if err == io.EOF {
			return nil
		}
		return err
	}
}

func runeSet(r []rune) map[rune]bool {
	s := make(map[rune]bool, len(r))
	for _, rr := range r {
		s[rr] = true
	}
	return s
}

func (t *setParser) key(data map[string]interface{}) error {
	stop := runeSet([]rune{'=', '[', ',', '.'})
	k, last, err := runesUntil(t.sc, stop)
	switch {
	case err != nil:
		if len(k) == 0 {
			return err
		}
		return fmt.Errorf("key %q has no value", string(k))
	case last == '[':
		i, err := t.keyIndex()
		if err != nil {
			return fmt.Errorf("error parsing index: %s", err)
		}
		kk := string(k)
		list, _ := data[kk].([]interface{})
		list, err = t.listItem(list, i)
		set(data, kk, list)
		return err
	case last == '=':
		vl, e := t.valList()
		switch e {
		case nil:
			set(data, string(k), vl)
			return nil
		case io.EOF:
			set(data, string(k), "")
			return e
		case errNotList:
			rs, e := t.val()
			if e != nil && e != io.EOF {
				return e
			}
			v, e := t.runesToVal(rs)
			set(data, string(k), v)
			return e
		default:
			return e
		}
	case last == ',':
		set(data, string(k), "")
		return fmt.Errorf("key %q has no value (cannot end with ,)", string(k))
	case last == '.':
		// Helm panics when a dotted path crosses a non-map; overwriting is
		// the only useful reading of such a --set.
		inner, ok := data[string(k)].(map[string]interface{})
		if !ok {
			inner = map[string]interface{}{}
		}
		e := t.key(inner)
		if len(inner) == 0 {
			return fmt.Errorf("key map %q has no value", string(k))
		}
		set(data, string(k), inner)
		return e
	}
	return fmt.Errorf("parse error: unexpected token %v", last)
}

func set(data map[string]interface{}, key string, val interface{}) {
	if len(key) == 0 {
		return
	}
	data[key] = val
}

func setIndex(list []interface{}, index int, val interface{}) ([]interface{}, error) {
	if index < 0 {
		return list, fmt.Errorf("negative %d index not allowed", index)
	}
	if index > maxIndex {
		return list, fmt.Errorf("index of %d is greater than maximum supported index of %d", index, maxIndex)
	}
	if len(list) <= index {
		newlist := make([]interface{}, index+1)
		copy(newlist, list)
		list = newlist
	}
	list[index] = val
	return list, nil
}

func (t *setParser) keyIndex() (int, error) {
	v, _, err := runesUntil(t.sc, runeSet([]rune{']'}))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(string(v))
}

func (t *setParser) listItem(list []interface{}, i int) ([]interface{}, error) {
	if i < 0 {
		return list, fmt.Errorf("negative %d index not allowed", i)
	}
	stop := runeSet([]rune{'[', '.', '='})
	k, last, err := runesUntil(t.sc, stop)
	switch {
	case len(k) > 0:
		return list, fmt.Errorf("unexpected data at end of array index: %q", k)
	case err != nil:
		return list, err
	case last == '=':
		vl, e := t.valList()
		switch e {
		case nil:
			return setIndex(list, i, vl)
		case io.EOF:
			return setIndex(list, i, "")
		case errNotList:
			rs, e := t.val()
			if e != nil && e != io.EOF {
				return list, e
			}
			v, e := t.runesToVal(rs)
			if e != nil {
				return list, e
			}
			return setIndex(list, i, v)
		default:
			return list, e
		}
	case last == '[':
		nextI, err := t.keyIndex()
		if err != nil {
			return list, fmt.Errorf("error parsing index: %s", err)
		}
		var crtList []interface{}
		if len(list) > i {
			crtList, _ = list[i].([]interface{})
		}
		list2, err := t.listItem(crtList, nextI)
		if err != nil {
			return list, err
		}
		return setIndex(list, i, list2)
	case last == '.':
		inner := map[string]interface{}{}
		if len(list) > i {
			if existing, ok := list[i].(map[string]interface{}); ok {
				inner = existing
			}
		}
		e := t.key(inner)
		list, err = setIndex(list, i, inner)
		if err != nil {
			return list, err
		}
		return list, e
	default:
		return nil, fmt.Errorf("parse error: unexpected token %v", last)
	}
}

func (t *setParser) val() ([]rune, error) {
	v, _, err := runesUntil(t.sc, runeSet([]rune{','}))
	return v, err
}

func (t *setParser) valList() ([]interface{}, error) {
	r, _, e := t.sc.ReadRune()
	if e != nil {
		return []interface{}{}, e
	}
	if r != '{' {
		_ = t.sc.UnreadRune()
		return []interface{}{}, errNotList
	}
	list := []interface{}{}
	stop := runeSet([]rune{',', '}'})
	for {
		rs, last, err := runesUntil(t.sc, stop)
		switch {
		case err != nil:
			if err == io.EOF {
				err = errors.New("list must terminate with '}'")
			}
			return list, err
		case last == '}':
			if r, _, e := t.sc.ReadRune(); e == nil && r != ',' {
				_ = t.sc.UnreadRune()
			}
			v, e := t.runesToVal(rs)
			list = append(list, v)
			return list, e
		case last == ',':
			v, e := t.runesToVal(rs)
			if e != nil {
				return list, e
			}
			list = append(list, v)
		}
	}
}

func runesUntil(in io.RuneReader, stop map[rune]bool) ([]rune, rune, error) {
	v := []rune{}
	for {
		r, _, e := in.ReadRune()
		switch {
		case e != nil:
			return v, r, e
		case stop[r]:
			return v, r, nil
		case r == '\\':
			next, _, e := in.ReadRune()
			if e != nil {
				return v, next, e
			}
			v = append(v, next)
		default:
			v = append(v, r)
		}
	}
}
