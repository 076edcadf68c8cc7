package main

// Template functions: sprig plus Helm's additions, ported from Helm 3's
// pkg/engine/funcs.go and pkg/engine/files.go. The context-bound functions
// (include, tpl, required, fail) live in engine.go.

import (
	"bytes"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"regexp"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
	yaml3 "gopkg.in/yaml.v3"
)

// funcMap is engine.funcMap: sprig's text functions without env/expandenv
// (Helm removes them so charts cannot read the renderer's environment), plus
// Helm's own serialisation helpers and an offline `lookup`.
func funcMap() template.FuncMap {
	f := sprig.TxtFuncMap()
	delete(f, "env")
	delete(f, "expandenv")

	extra := template.FuncMap{
		"toToml":        unsupported("toToml"),
		"fromToml":      unsupported("fromToml"),
		"toYaml":        toYAML,
		"toYamlPretty":  toYAMLPretty,
		"fromYaml":      fromYAML,
		"fromYamlArray": fromYAMLArray,
		"toJson":        toJSON,
		"fromJson":      fromJSON,
		"fromJsonArray": fromJSONArray,

		// `helm template` has no cluster, so lookup finds nothing, unless
		// --cluster-objects stands in for one (tests of the upgrade path).
		"lookup": lookup,
		// Helm only resolves DNS with --enable-dns; without it the sprig
		// function is replaced by one returning "".
		"getHostByName": func(string) string { return "" },
	}
	for k, v := range extra {
		f[k] = v
	}
	// Helm >= 3.16 ships sprig 3.3.0, whose only new function is sha512sum;
	// Debian has sprig 3.2.3, so it is added here (same implementation).
	if _, ok := f["sha512sum"]; !ok {
		f["sha512sum"] = func(input string) string {
			hash := sha512.Sum512([]byte(input))
			return hex.EncodeToString(hash[:])
		}
	}
	return f
}

// unsupported keeps charts that merely mention a function parseable; the
// error only fires if the call is actually executed. (BurntSushi/toml is not
// packaged in Debian, so TOML support is left out.)
func unsupported(name string) func(interface{}) (string, error) {
	return func(interface{}) (string, error) {
		return "", errors.New(name + " is not supported by helm-render")
	}
}

func toYAML(v interface{}) string {
	data, err := yamlMarshal(v)
	if err != nil {
		// Helm swallows the error inside templates.
		return ""
	}
	return strings.TrimSuffix(string(data), "\n")
}

// toYAMLPretty encodes with yaml.v3 directly (no JSON round trip), as Helm
// does.
func toYAMLPretty(v interface{}) string {
	var data bytes.Buffer
	enc := yaml3.NewEncoder(&data)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return ""
	}
	return strings.TrimSuffix(data.String(), "\n")
}

func fromYAML(str string) map[string]interface{} {
	m := map[string]interface{}{}
	if err := yamlUnmarshal([]byte(str), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

func fromYAMLArray(str string) []interface{} {
	a := []interface{}{}
	if err := yamlUnmarshal([]byte(str), &a); err != nil {
		a = []interface{}{err.Error()}
	}
	return a
}

func toJSON(v interface{}) string {
	data, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(data)
}

func fromJSON(str string) map[string]interface{} {
	m := make(map[string]interface{})
	if err := json.Unmarshal([]byte(str), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

func fromJSONArray(str string) []interface{} {
	a := []interface{}{}
	if err := json.Unmarshal([]byte(str), &a); err != nil {
		a = []interface{}{err.Error()}
	}
	return a
}

// ---- .Files (port of helm.sh/helm/v3/pkg/engine/files.go) ----

// files is `.Files`: every chart file except Chart.yaml, values.yaml,
// values.schema.json, lock files, templates/ and charts/, after .helmignore.
type files map[string][]byte

func newFiles(from []*chartFile) files {
	f := make(files, len(from))
	for _, cf := range from {
		f[cf.Name] = cf.Data
	}
	return f
}

func (f files) GetBytes(name string) []byte {
	if v, ok := f[name]; ok {
		return v
	}
	return []byte{}
}

func (f files) Get(name string) string {
	return string(f.GetBytes(name))
}

// Glob matches with gobwas/glob semantics ('/' separated: `*` stays within a
// path segment, `**` crosses segments); an invalid pattern matches
// everything, as in Helm.
func (f files) Glob(pattern string) files {
	re, err := globRegexp(pattern)
	if err != nil {
		re = regexp.MustCompile(`^(?s:.*)$`)
	}
	nf := newFiles(nil)
	for name, contents := range f {
		if re.MatchString(name) {
			nf[name] = contents
		}
	}
	return nf
}

func (f files) AsConfig() string {
	if f == nil {
		return ""
	}
	m := make(map[string]string)
	for k, v := range f {
		m[path.Base(k)] = string(v)
	}
	return toYAML(m)
}

func (f files) AsSecrets() string {
	if f == nil {
		return ""
	}
	m := make(map[string]string)
	for k, v := range f {
		m[path.Base(k)] = base64.StdEncoding.EncodeToString(v)
	}
	return toYAML(m)
}

// Lines is copied as-is, including Helm's failure on an empty file (which
// text/template reports as an "error calling Lines").
func (f files) Lines(path string) []string {
	if f == nil || f[path] == nil {
		return []string{}
	}
	s := string(f[path])
	if s[len(s)-1] == '\n' {
		s = s[:len(s)-1]
	}
	return strings.Split(s, "\n")
}

// globRegexp translates a gobwas/glob pattern (separator '/') to a regexp:
// `*`, `**`, `?`, `[abc]`, `[a-z]`, `[!abc]`, `{a,b}` and `\` escapes.
func globRegexp(pattern string) (*regexp.Regexp, error) {
	var b strings.Builder
	rs := []rune(pattern)
	depth := 0
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch r {
		case '\\':
			if i+1 >= len(rs) {
				return nil, errors.New("trailing escape")
			}
			i++
			b.WriteString(regexp.QuoteMeta(string(rs[i])))
		case '*':
			if i+1 < len(rs) && rs[i+1] == '*' {
				b.WriteString(`.*`)
				i++
			} else {
				b.WriteString(`[^/]*`)
			}
		case '?':
			b.WriteString(`[^/]`)
		case '[':
			end := i + 1
			for end < len(rs) && rs[end] != ']' {
				end++
			}
			if end >= len(rs) {
				return nil, errors.New("unclosed character class")
			}
			class := rs[i+1 : end]
			b.WriteByte('[')
			if len(class) > 0 && class[0] == '!' {
				b.WriteByte('^')
				class = class[1:]
			}
			for _, c := range class {
				if c == '-' {
					b.WriteRune(c)
				} else {
					b.WriteString(regexp.QuoteMeta(string(c)))
				}
			}
			b.WriteByte(']')
			i = end
		case '{':
			depth++
			b.WriteString(`(?:`)
		case '}':
			if depth == 0 {
				return nil, errors.New("unmatched }")
			}
			depth--
			b.WriteByte(')')
		case ',':
			if depth > 0 {
				b.WriteByte('|')
			} else {
				b.WriteByte(',')
			}
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	if depth != 0 {
		return nil, errors.New("unclosed {")
	}
	return regexp.Compile(`^(?s:` + b.String() + `)$`)
}

// clusterObjects are what `lookup` finds: the objects of --cluster-objects,
// standing in for the cluster `helm install`/`upgrade` would ask. Empty, as
// for `helm template`, unless that flag is given.
var clusterObjects []map[string]interface{}

// loadClusterObjects reads a multi-document YAML file of Kubernetes objects.
func loadClusterObjects(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("cannot read --cluster-objects: %v", err)
	}
	for i, doc := range regexp.MustCompile(`(?m)^---[ \t]*$`).Split(string(data), -1) {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		obj := map[string]interface{}{}
		if err := yamlUnmarshal([]byte(doc), &obj); err != nil {
			return fmt.Errorf("--cluster-objects %s, document %d: %v", path, i+1, err)
		}
		if len(obj) > 0 {
			clusterObjects = append(clusterObjects, obj)
		}
	}
	return nil
}

// lookup is helm's: one object (an empty map when absent) when a name is
// given, else a list of every match in the namespace ("" = all namespaces).
func lookup(apiVersion, kind, namespace, name string) (map[string]interface{}, error) {
	var items []interface{}
	for _, obj := range clusterObjects {
		meta, _ := obj["metadata"].(map[string]interface{})
		if obj["apiVersion"] != apiVersion || obj["kind"] != kind {
			continue
		}
		if namespace != "" && meta["namespace"] != namespace {
			continue
		}
		if name != "" {
			if meta["name"] == name {
				return obj, nil
			}
			continue
		}
		items = append(items, obj)
	}
	if name != "" {
		return map[string]interface{}{}, nil
	}
	if items == nil {
		items = []interface{}{}
	}
	return map[string]interface{}{"apiVersion": "v1", "kind": kind + "List", "items": items}, nil
}
