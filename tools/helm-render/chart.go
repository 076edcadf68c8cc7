package main

// Chart loading, ported from Helm 3's pkg/chart/loader (directory.go,
// load.go), pkg/ignore (.helmignore) and pkg/chart (Metadata, Validate,
// CRDObjects). Only unpacked chart directories without dependencies are
// supported; anything that would need subchart handling is refused loudly
// instead of being rendered differently from Helm.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"unicode"

	"github.com/Masterminds/semver"
)

// Maintainer and Metadata keep Helm's Go field names, because templates
// address them that way (.Chart.Name, .Chart.AppVersion, .Chart.APIVersion).
type Maintainer struct {
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
	URL   string `json:"url,omitempty"`
}

// Dependency is chart.Dependency; it is parsed only so a chart that declares
// dependencies can be rejected, and so `.Chart.Dependencies` looks the same.
type Dependency struct {
	Name         string        `json:"name"`
	Version      string        `json:"version,omitempty"`
	Repository   string        `json:"repository"`
	Condition    string        `json:"condition,omitempty"`
	Tags         []string      `json:"tags,omitempty"`
	Enabled      bool          `json:"enabled,omitempty"`
	ImportValues []interface{} `json:"import-values,omitempty"`
	Alias        string        `json:"alias,omitempty"`
}

// Metadata is chart.Metadata (Chart.yaml).
type Metadata struct {
	Name         string            `json:"name,omitempty"`
	Home         string            `json:"home,omitempty"`
	Sources      []string          `json:"sources,omitempty"`
	Version      string            `json:"version,omitempty"`
	Description  string            `json:"description,omitempty"`
	Keywords     []string          `json:"keywords,omitempty"`
	Maintainers  []*Maintainer     `json:"maintainers,omitempty"`
	Icon         string            `json:"icon,omitempty"`
	APIVersion   string            `json:"apiVersion,omitempty"`
	Condition    string            `json:"condition,omitempty"`
	Tags         string            `json:"tags,omitempty"`
	AppVersion   string            `json:"appVersion,omitempty"`
	Deprecated   bool              `json:"deprecated,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	KubeVersion  string            `json:"kubeVersion,omitempty"`
	Dependencies []*Dependency     `json:"dependencies,omitempty"`
	Type         string            `json:"type,omitempty"`
}

// chartFile is one file of the chart, named relative to the chart root with
// forward slashes.
type chartFile struct {
	Name string
	Data []byte
}

type chart struct {
	Metadata  *Metadata
	Values    map[string]interface{}
	Templates []*chartFile
	Files     []*chartFile
}

func (c *chart) Name() string { return c.Metadata.Name }

type validationError string

func (v validationError) Error() string { return "validation: " + string(v) }

// loadChartDir is loader.LoadDir followed by loader.LoadFiles.
func loadChartDir(dir string) (*chart, error) {
	topdir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(topdir); err != nil {
		return nil, err
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory: packaged charts (.tgz) are not supported by helm-render", dir)
	}

	rules := &ignoreRules{}
	ifile := filepath.Join(topdir, ".helmignore")
	if _, err := os.Stat(ifile); err == nil {
		if rules, err = parseIgnoreFile(ifile); err != nil {
			return nil, err
		}
	}
	// Helm always ignores dotfiles under templates/.
	if err := rules.parseRule(`templates/.?*`); err != nil {
		return nil, err
	}

	var files []*chartFile
	topdir += string(filepath.Separator)
	walk := func(name string, fi os.FileInfo, err error) error {
		n := strings.TrimPrefix(name, topdir)
		if n == "" {
			return nil
		}
		n = filepath.ToSlash(n)
		if err != nil {
			return err
		}
		if fi.IsDir() {
			if rules.ignore(n, fi) {
				return filepath.SkipDir
			}
			return nil
		}
		if rules.ignore(n, fi) {
			return nil
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("cannot load irregular file %s as it has file mode type bits set", name)
		}
		data, err := os.ReadFile(name)
		if err != nil {
			return fmt.Errorf("error reading %s: %v", n, err)
		}
		data = bytes.TrimPrefix(data, []byte{0xEF, 0xBB, 0xBF})
		files = append(files, &chartFile{Name: n, Data: data})
		return nil
	}
	if err := symWalk(topdir, walk); err != nil {
		return nil, err
	}
	return loadFiles(files)
}

func loadFiles(files []*chartFile) (*chart, error) {
	c := &chart{}
	for _, f := range files {
		if f.Name == "Chart.yaml" {
			c.Metadata = &Metadata{}
			if err := yamlUnmarshal(f.Data, c.Metadata); err != nil {
				return c, fmt.Errorf("cannot load Chart.yaml: %v", err)
			}
			if c.Metadata.APIVersion == "" {
				c.Metadata.APIVersion = "v1"
			}
		}
	}
	subcharts := map[string]bool{}
	for _, f := range files {
		switch {
		case f.Name == "Chart.yaml", f.Name == "Chart.lock", f.Name == "requirements.lock":
			// Lock files only matter for dependencies, which are refused below.
		case f.Name == "values.yaml":
			c.Values = map[string]interface{}{}
			if err := yamlUnmarshal(f.Data, &c.Values); err != nil {
				return c, fmt.Errorf("cannot load values.yaml: %v", err)
			}
		case f.Name == "values.schema.json":
			// Schema validation is left to the caller (see README.md).
		case f.Name == "requirements.yaml":
			return c, errors.New("requirements.yaml (chart dependencies) is not supported by helm-render")
		case strings.HasPrefix(f.Name, "templates/"):
			c.Templates = append(c.Templates, f)
		case strings.HasPrefix(f.Name, "charts/"):
			if filepath.Ext(f.Name) == ".prov" {
				c.Files = append(c.Files, f)
				continue
			}
			name := strings.SplitN(strings.TrimPrefix(f.Name, "charts/"), "/", 2)[0]
			// Helm skips entries of charts/ starting with "_" or "."
			if strings.IndexAny(name, "_.") != 0 {
				subcharts[name] = true
			}
		default:
			c.Files = append(c.Files, f)
		}
	}
	if c.Metadata == nil {
		return c, errors.New("Chart.yaml file is missing")
	}
	if err := c.Metadata.validate(); err != nil {
		return c, err
	}
	if len(subcharts) > 0 || len(c.Metadata.Dependencies) > 0 {
		names := make([]string, 0, len(subcharts))
		for n := range subcharts {
			names = append(names, n)
		}
		for _, d := range c.Metadata.Dependencies {
			names = append(names, d.Name)
		}
		sort.Strings(names)
		return c, fmt.Errorf("chart %q has dependencies (%s): subcharts are not supported by helm-render", c.Name(), strings.Join(names, ", "))
	}
	return c, nil
}

// validate is chart.Metadata.Validate (minus dependency checks, which are
// refused earlier).
func (md *Metadata) validate() error {
	md.Name = sanitizeString(md.Name)
	md.Description = sanitizeString(md.Description)
	md.Home = sanitizeString(md.Home)
	md.Icon = sanitizeString(md.Icon)
	md.Condition = sanitizeString(md.Condition)
	md.Tags = sanitizeString(md.Tags)
	md.AppVersion = sanitizeString(md.AppVersion)
	md.KubeVersion = sanitizeString(md.KubeVersion)
	for i := range md.Sources {
		md.Sources[i] = sanitizeString(md.Sources[i])
	}
	for i := range md.Keywords {
		md.Keywords[i] = sanitizeString(md.Keywords[i])
	}
	if md.APIVersion == "" {
		return validationError("chart.metadata.apiVersion is required")
	}
	if md.Name == "" {
		return validationError("chart.metadata.name is required")
	}
	if md.Name == "." || md.Name == ".." {
		return validationError(fmt.Sprintf("chart.metadata.name %q is not allowed", md.Name))
	}
	if md.Name != filepath.Base(md.Name) {
		return validationError(fmt.Sprintf("chart.metadata.name %q is invalid", md.Name))
	}
	if md.Version == "" {
		return validationError("chart.metadata.version is required")
	}
	if _, err := semver.NewVersion(md.Version); err != nil {
		return validationError(fmt.Sprintf("chart.metadata.version %q is invalid", md.Version))
	}
	switch md.Type {
	case "", "application", "library":
	default:
		return validationError("chart.metadata.type must be application or library")
	}
	for _, m := range md.Maintainers {
		if m == nil {
			return validationError("maintainers must not contain empty or null nodes")
		}
		m.Name = sanitizeString(m.Name)
		m.Email = sanitizeString(m.Email)
		m.URL = sanitizeString(m.URL)
	}
	return nil
}

func sanitizeString(str string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return ' '
		}
		if unicode.IsPrint(r) {
			return r
		}
		return -1
	}, str)
}

// crdObjects is chart.CRDObjects: files under crds/ with a manifest
// extension, in load order, named <chart>/crds/<file>.
func (c *chart) crdObjects() []*chartFile {
	var crds []*chartFile
	for _, f := range c.Files {
		if !strings.HasPrefix(f.Name, "crds/") {
			continue
		}
		ext := filepath.Ext(f.Name)
		if strings.EqualFold(ext, ".yaml") || strings.EqualFold(ext, ".yml") || strings.EqualFold(ext, ".json") {
			crds = append(crds, &chartFile{Name: path.Join(c.Name(), f.Name), Data: f.Data})
		}
	}
	return crds
}

// symWalk is Helm's internal/sympath.Walk: filepath.Walk in lexical order
// that also descends into symlinked files and directories.
func symWalk(root string, walkFn filepath.WalkFunc) error {
	info, err := os.Lstat(root)
	if err != nil {
		err = walkFn(root, nil, err)
	} else {
		err = symWalkOne(root, info, walkFn)
	}
	if err == filepath.SkipDir {
		return nil
	}
	return err
}

func symWalkOne(p string, info os.FileInfo, walkFn filepath.WalkFunc) error {
	if info.Mode()&os.ModeSymlink != 0 {
		resolved, err := filepath.EvalSymlinks(p)
		if err != nil {
			return fmt.Errorf("error evaluating symlink %s: %v", p, err)
		}
		if info, err = os.Lstat(resolved); err != nil {
			return err
		}
		if err := symWalkOne(p, info, walkFn); err != nil && err != filepath.SkipDir {
			return err
		}
		return nil
	}
	if err := walkFn(p, info, nil); err != nil {
		return err
	}
	if !info.IsDir() {
		return nil
	}
	entries, err := os.ReadDir(p)
	if err != nil {
		return walkFn(p, info, err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for _, name := range names {
		filename := filepath.Join(p, name)
		fi, err := os.Lstat(filename)
		if err != nil {
			if err := walkFn(filename, fi, err); err != nil && err != filepath.SkipDir {
				return err
			}
			continue
		}
		if err := symWalkOne(filename, fi, walkFn); err != nil {
			if (!fi.IsDir() && fi.Mode()&os.ModeSymlink == 0) || err != filepath.SkipDir {
				return err
			}
		}
	}
	return nil
}

// ---- .helmignore (port of helm.sh/helm/v3/pkg/ignore/rules.go) ----

type ignorePattern struct {
	raw     string
	match   func(name string) bool
	negate  bool
	mustDir bool
}

type ignoreRules struct {
	patterns []*ignorePattern
}

func parseIgnoreFile(file string) (*ignoreRules, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := &ignoreRules{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		if err := r.parseRule(s.Text()); err != nil {
			return r, err
		}
	}
	return r, s.Err()
}

// ignore evaluates the rules in order; the first match decides, and a
// negated rule that does not match ignores the file (Helm's semantics, which
// differ from .gitignore's).
func (r *ignoreRules) ignore(p string, fi os.FileInfo) bool {
	if p == "" || p == "." || p == "./" {
		return false
	}
	for _, pat := range r.patterns {
		if pat.negate {
			if pat.mustDir && !fi.IsDir() {
				return true
			}
			if !pat.match(p) {
				return true
			}
			continue
		}
		if pat.mustDir && !fi.IsDir() {
			continue
		}
		if pat.match(p) {
			return true
		}
	}
	return false
}

func (r *ignoreRules) parseRule(rule string) error {
	rule = strings.TrimSpace(rule)
	if rule == "" || strings.HasPrefix(rule, "#") {
		return nil
	}
	if strings.Contains(rule, "**") {
		return errors.New("double-star (**) syntax is not supported")
	}
	if _, err := filepath.Match(rule, "abc"); err != nil {
		return err
	}
	p := &ignorePattern{raw: rule}
	if strings.HasPrefix(rule, "!") {
		p.negate = true
		rule = rule[1:]
	}
	if strings.HasSuffix(rule, "/") {
		p.mustDir = true
		rule = strings.TrimSuffix(rule, "/")
	}
	switch {
	case strings.HasPrefix(rule, "/"):
		rooted := strings.TrimPrefix(rule, "/")
		p.match = func(n string) bool {
			ok, _ := filepath.Match(rooted, n)
			return ok
		}
	case strings.Contains(rule, "/"):
		p.match = func(n string) bool {
			ok, _ := filepath.Match(rule, n)
			return ok
		}
	default:
		// Without a slash only the base name is matched.
		p.match = func(n string) bool {
			ok, _ := filepath.Match(rule, filepath.Base(n))
			return ok
		}
	}
	r.patterns = append(r.patterns, p)
	return nil
}
