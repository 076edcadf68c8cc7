package main

// The rendering engine, ported from Helm 3.17's pkg/engine/engine.go, and
// the manifest splitting/sorting from pkg/releaseutil (manifest.go,
// manifest_sorter.go, kind_sorter.go).

import (
	"fmt"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"
)

// renderable is one template file plus the values it is executed with.
type renderable struct {
	tpl      string
	vals     map[string]interface{}
	basePath string
}

const (
	warnStartDelim   = "HELM_ERR_START"
	warnEndDelim     = "HELM_ERR_END"
	recursionMaxNums = 1000
)

// (?s): `required`/`fail` messages may span lines (helm/helm#10017).
var warnRegex = regexp.MustCompile(warnStartDelim + `((?s).*)` + warnEndDelim)

func warnWrap(warn string) string {
	return warnStartDelim + warn + warnEndDelim
}

func includeFun(t *template.Template, includedNames map[string]int) func(string, interface{}) (string, error) {
	return func(name string, data interface{}) (string, error) {
		var buf strings.Builder
		if v, ok := includedNames[name]; ok {
			if v > recursionMaxNums {
				return "", fmt.Errorf("rendering template has a nested reference name: %s: unable to execute template", name)
			}
			includedNames[name]++
		} else {
			includedNames[name] = 1
		}
		err := t.ExecuteTemplate(&buf, name, data)
		includedNames[name]--
		return buf.String(), err
	}
}

// tplFun clones the whole template set so the string can use every
// `define`d template, and re-binds include/tpl to the clone so `define`s
// inside the string are reachable too.
func tplFun(parent *template.Template, includedNames map[string]int) func(string, interface{}) (string, error) {
	return func(tpl string, vals interface{}) (string, error) {
		t, err := parent.Clone()
		if err != nil {
			return "", fmt.Errorf("cannot clone template: %v", err)
		}
		// Clone drops the missingkey option (golang/go#43022).
		t.Option("missingkey=zero")
		t.Funcs(template.FuncMap{
			"include": includeFun(t, includedNames),
			"tpl":     tplFun(t, includedNames),
		})
		t, err = t.New(parent.Name()).Parse(tpl)
		if err != nil {
			return "", fmt.Errorf("cannot parse template %q: %v", tpl, err)
		}
		var buf strings.Builder
		if err := t.Execute(&buf, vals); err != nil {
			return "", fmt.Errorf("error during tpl function execution for %q: %v", tpl, err)
		}
		return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
	}
}

func initFunMap(t *template.Template) {
	fm := funcMap()
	includedNames := make(map[string]int)
	fm["include"] = includeFun(t, includedNames)
	fm["tpl"] = tplFun(t, includedNames)
	fm["required"] = func(warn string, val interface{}) (interface{}, error) {
		if val == nil {
			// Helm passes the message to errors.Errorf as a format string;
			// kept so a '%' in a message comes out the same way.
			return val, fmt.Errorf(warnWrap(warn))
		} else if s, ok := val.(string); ok && s == "" {
			return val, fmt.Errorf(warnWrap(warn))
		}
		return val, nil
	}
	fm["fail"] = func(msg string) (string, error) {
		return "", fmt.Errorf("%s", warnWrap(msg))
	}
	t.Funcs(fm)
}

// render parses every template into one set (so any file can include a
// `define` from any other) and executes each non-partial one.
func render(tpls map[string]renderable) (rendered map[string]string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("rendering template failed: %v", r)
		}
	}()
	t := template.New("gotpl")
	// "zero" still prints "<no value>" for missing interface values; that
	// is stripped below, as Helm does.
	t.Option("missingkey=zero")
	initFunMap(t)

	keys := sortTemplates(tpls)
	for _, filename := range keys {
		if _, err := t.New(filename).Parse(tpls[filename].tpl); err != nil {
			return map[string]string{}, cleanupParseError(filename, err)
		}
	}

	rendered = make(map[string]string, len(keys))
	for _, filename := range keys {
		if strings.HasPrefix(path.Base(filename), "_") {
			continue
		}
		vals := tpls[filename].vals
		vals["Template"] = Values{"Name": filename, "BasePath": tpls[filename].basePath}
		var buf strings.Builder
		if err := t.ExecuteTemplate(&buf, filename, vals); err != nil {
			return map[string]string{}, cleanupExecError(filename, err)
		}
		rendered[filename] = strings.ReplaceAll(buf.String(), "<no value>", "")
	}
	return rendered, nil
}

func cleanupParseError(filename string, err error) error {
	tokens := strings.Split(err.Error(), ": ")
	if len(tokens) == 1 {
		return fmt.Errorf("parse error in (%s): %s", filename, err)
	}
	location := tokens[1]
	errMsg := tokens[len(tokens)-1]
	return fmt.Errorf("parse error at (%s): %s", location, errMsg)
}

// cleanupExecError shortens errors raised by `required`/`fail` to
// "execution error at (file:line:col): message"; other errors keep Go's
// "template: file:line:col: executing ..." text.
func cleanupExecError(filename string, err error) error {
	if _, ok := err.(template.ExecError); !ok {
		return err
	}
	tokens := strings.SplitN(err.Error(), ": ", 3)
	if len(tokens) != 3 {
		return fmt.Errorf("execution error in (%s): %s", filename, err)
	}
	location := tokens[1]
	if parts := warnRegex.FindStringSubmatch(tokens[2]); len(parts) >= 2 {
		return fmt.Errorf("execution error at (%s): %s", location, parts[1])
	}
	return err
}

// sortTemplates orders deeper paths first, then reverse-lexically; the
// order matters because a later `define` of the same name wins.
func sortTemplates(tpls map[string]renderable) []string {
	keys := make([]string, 0, len(tpls))
	for k := range tpls {
		keys = append(keys, k)
	}
	sort.Sort(sort.Reverse(byPathLen(keys)))
	return keys
}

type byPathLen []string

func (p byPathLen) Len() int      { return len(p) }
func (p byPathLen) Swap(i, j int) { p[j], p[i] = p[i], p[j] }
func (p byPathLen) Less(i, j int) bool {
	a, b := p[i], p[j]
	ca, cb := strings.Count(a, "/"), strings.Count(b, "/")
	if ca == cb {
		return strings.Compare(a, b) == -1
	}
	return ca < cb
}

// ---- manifest splitting and ordering (pkg/releaseutil) ----

// SimpleHead is releaseutil.SimpleHead; its Go name shows up in YAML
// type errors, so it keeps Helm's spelling.
type SimpleHead struct {
	Version  string `json:"apiVersion"`
	Kind     string `json:"kind,omitempty"`
	Metadata *struct {
		Name        string            `json:"name"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata,omitempty"`
}

type manifest struct {
	Name    string
	Content string
	Head    *SimpleHead
}

type hook struct {
	Path     string
	Manifest string
	Kind     string
	Test     bool
}

var manifestSep = regexp.MustCompile("(?:^|\\s*\n)---\\s*")

// splitManifests returns the YAML documents of a rendered file in order.
func splitManifests(bigFile string) []string {
	var res []string
	for _, d := range manifestSep.Split(strings.TrimSpace(bigFile), -1) {
		if d == "" {
			continue
		}
		res = append(res, strings.TrimSpace(d))
	}
	return res
}

var hookEvents = map[string]bool{
	"pre-install": true, "post-install": true,
	"pre-delete": true, "post-delete": true,
	"pre-upgrade": true, "post-upgrade": true,
	"pre-rollback": true, "post-rollback": true,
	"test": true, "test-success": true,
}

// sortManifests is releaseutil.SortManifests: files in path order,
// documents in file order, hooks split out, then a stable sort by kind.
func sortManifests(files map[string]string, warn func(string, ...interface{})) ([]hook, []manifest, error) {
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)

	var hooks []hook
	var generic []manifest
	for _, p := range paths {
		content := files[p]
		if strings.HasPrefix(path.Base(p), "_") || strings.TrimSpace(content) == "" {
			continue
		}
		for _, m := range splitManifests(content) {
			var entry SimpleHead
			if err := yamlUnmarshal([]byte(m), &entry); err != nil {
				return hooks, generic, fmt.Errorf("YAML parse error on %s: %v", p, err)
			}
			hookTypes := ""
			isHook := false
			if entry.Metadata != nil && len(entry.Metadata.Annotations) != 0 {
				hookTypes, isHook = entry.Metadata.Annotations["helm.sh/hook"]
			}
			if !isHook {
				generic = append(generic, manifest{Name: p, Content: m, Head: &entry})
				continue
			}
			h := hook{Path: p, Manifest: m, Kind: entry.Kind}
			known := true
			for _, ht := range strings.Split(hookTypes, ",") {
				ht = strings.ToLower(strings.TrimSpace(ht))
				if !hookEvents[ht] {
					known = false
					break
				}
				if ht == "test" || ht == "test-success" {
					h.Test = true
				}
			}
			if !known {
				warn("info: skipping unknown hook: %q", hookTypes)
				continue
			}
			hooks = append(hooks, h)
		}
	}
	sort.SliceStable(hooks, func(i, j int) bool { return lessByKind(hooks[i].Kind, hooks[j].Kind) })
	sort.SliceStable(generic, func(i, j int) bool { return lessByKind(generic[i].Head.Kind, generic[j].Head.Kind) })
	return hooks, generic, nil
}

// installOrder is releaseutil.InstallOrder.
var installOrder = []string{
	"PriorityClass",
	"Namespace",
	"NetworkPolicy",
	"ResourceQuota",
	"LimitRange",
	"PodSecurityPolicy",
	"PodDisruptionBudget",
	"ServiceAccount",
	"Secret",
	"SecretList",
	"ConfigMap",
	"StorageClass",
	"PersistentVolume",
	"PersistentVolumeClaim",
	"CustomResourceDefinition",
	"ClusterRole",
	"ClusterRoleList",
	"ClusterRoleBinding",
	"ClusterRoleBindingList",
	"Role",
	"RoleList",
	"RoleBinding",
	"RoleBindingList",
	"Service",
	"DaemonSet",
	"Pod",
	"ReplicationController",
	"ReplicaSet",
	"Deployment",
	"HorizontalPodAutoscaler",
	"StatefulSet",
	"Job",
	"CronJob",
	"IngressClass",
	"Ingress",
	"APIService",
}

var installRank = func() map[string]int {
	m := make(map[string]int, len(installOrder))
	for i, k := range installOrder {
		m[k] = i
	}
	return m
}()

// lessByKind: known kinds in install order, unknown kinds after them in
// alphabetical order; ties keep their original order (stable sort).
func lessByKind(kindA, kindB string) bool {
	first, aok := installRank[kindA]
	second, bok := installRank[kindB]
	if !aok && !bok {
		if kindA != kindB {
			return kindA < kindB
		}
		return false
	}
	if !aok {
		return false
	}
	if !bok {
		return true
	}
	return first < second
}

// manifestNameRegex is how `helm template --show-only` finds a document's
// template path.
var manifestNameRegex = regexp.MustCompile("# Source: [^/]+/(.+)")

// showOnly filters `out` like cmd/helm/template.go does for --show-only.
func showOnly(out string, patterns []string) (string, error) {
	docs := splitManifests(out)
	var b strings.Builder
	for _, f := range patterns {
		missing := true
		for _, m := range docs {
			sub := manifestNameRegex.FindStringSubmatch(m)
			if len(sub) == 0 {
				continue
			}
			if ok, _ := path.Match(f, sub[1]); !ok {
				continue
			}
			fmt.Fprintf(&b, "---\n%s\n", m)
			missing = false
		}
		if missing {
			return "", fmt.Errorf("could not find template %s in chart", f)
		}
	}
	return b.String(), nil
}

// releaseNameRegex and the 53-character limit are chartutil.ValidateReleaseName.
var releaseNameRegex = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

func validateReleaseName(name string) error {
	if name == "" || len(name) > 53 || !releaseNameRegex.MatchString(name) {
		return fmt.Errorf("release name %s: invalid release name, must match regex %s and the length must not be longer than 53",
			strconv.Quote(name), releaseNameRegex.String())
	}
	return nil
}
