// Command helm-render is an offline stand-in for `helm template`, for
// machines where no helm binary can be installed. It is built from Debian's
// Go packages only (text/template, sprig v3, yaml.v2/v3) and reproduces the
// parts of Helm 3.17's engine a chart without dependencies relies on; see
// README.md for what is and is not covered.
//
// values.schema.json is deliberately NOT validated here: Helm's validator
// (xeipuuv/gojsonschema) is not packaged in Debian. Callers validate the
// output of --print-values against the schema themselves (the TypeScript
// tests use ajv).
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"strconv"
	"strings"

	"github.com/Masterminds/semver"
)

// helmCompatVersion is what `.Capabilities.HelmVersion.Version` reports: the
// Helm release whose behaviour this tool follows.
const helmCompatVersion = "v3.17.0"

const usage = `Usage: helm-render [flags] [NAME] CHART_DIR

Renders a chart directory the way "helm template" does, offline.

Flags:
      --release-name NAME    release name (default "release-name"); a
                             positional NAME before CHART_DIR also works
  -n, --namespace NS         release namespace (default "default")
  -f, --values FILE          values file, repeatable, later files win ("-" = stdin)
      --set k=v              set values, repeatable (a.b=c, a[0]=x, l={a,b};
                             true/false/null and integers are typed)
      --set-string k=v       like --set but values stay strings
      --set-file k=path      like --set but the value is the file's content
      --include-crds         print the files under crds/ first, unrendered
      --skip-tests           leave out test hooks
      --no-hooks             leave out all hooks
      --is-upgrade           set .Release.IsUpgrade instead of .Release.IsInstall
  -a, --api-versions X       extra API version for .Capabilities.APIVersions,
                             repeatable ("group/version" or "group/version/Kind")
      --kube-version V       Kubernetes version for .Capabilities (default v1.30.0)
  -s, --show-only PATH       only print documents from this template (e.g.
                             templates/x.yaml; globs allowed), repeatable
      --print-notes          print only the rendered templates/NOTES.txt
      --print-values         print the final values as JSON and exit
      --cluster-objects FILE objects (multi-document YAML) that lookup finds, standing in
                             for the cluster of helm install/upgrade (helm template has none)
  -h, --help                 show this help
`

type options struct {
	releaseName  string
	namespace    string
	chartDir     string
	values       valueOptions
	includeCRDs  bool
	skipTests    bool
	noHooks      bool
	isUpgrade    bool
	apiVersions  []string
	kubeVersion  string
	showOnly     []string
	printNotes   bool
	printValues  bool
	helpWanted   bool
	releaseIsSet bool
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	opts, err := parseArgs(args)
	if err != nil {
		fmt.Fprintf(stderr, "Error: %s\n\n%s", err, usage)
		return 1
	}
	if opts.helpWanted {
		fmt.Fprint(stdout, usage)
		return 0
	}
	warn := func(format string, a ...interface{}) {
		fmt.Fprintf(stderr, format+"\n", a...)
	}
	out, err := templateChart(opts, warn)
	if err != nil {
		fmt.Fprintf(stderr, "Error: %s\n", err)
		return 1
	}
	fmt.Fprint(stdout, out)
	return 0
}

// parseArgs accepts flags before, between and after the positional
// arguments, in both "--flag value" and "--flag=value" forms, like cobra.
func parseArgs(args []string) (*options, error) {
	o := &options{releaseName: "release-name", namespace: "default", kubeVersion: "v1.30.0"}
	var positional []string
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			positional = append(positional, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(arg, "-") || arg == "-" {
			positional = append(positional, arg)
			continue
		}
		name, value, hasValue := arg, "", false
		if eq := strings.Index(arg, "="); eq >= 0 {
			name, value, hasValue = arg[:eq], arg[eq+1:], true
		}
		needValue := func() (string, error) {
			if hasValue {
				return value, nil
			}
			if i+1 >= len(args) {
				return "", fmt.Errorf("flag needs an argument: %s", name)
			}
			i++
			return args[i], nil
		}
		boolFlag := func(target *bool) error {
			if !hasValue {
				*target = true
				return nil
			}
			b, err := strconv.ParseBool(value)
			if err != nil {
				return fmt.Errorf("invalid argument %q for %s: %v", value, name, err)
			}
			*target = b
			return nil
		}
		var err error
		var v string
		switch name {
		case "--release-name":
			v, err = needValue()
			o.releaseName, o.releaseIsSet = v, true
		case "-n", "--namespace":
			o.namespace, err = needValue()
		case "-f", "--values":
			v, err = needValue()
			// Helm's -f also takes a comma-separated list.
			o.values.valueFiles = append(o.values.valueFiles, strings.Split(v, ",")...)
		case "--set":
			v, err = needValue()
			o.values.values = append(o.values.values, v)
		case "--set-string":
			v, err = needValue()
			o.values.stringValues = append(o.values.stringValues, v)
		case "--set-file":
			v, err = needValue()
			o.values.fileValues = append(o.values.fileValues, v)
		case "--include-crds":
			err = boolFlag(&o.includeCRDs)
		case "--skip-tests":
			err = boolFlag(&o.skipTests)
		case "--no-hooks":
			err = boolFlag(&o.noHooks)
		case "--is-upgrade":
			err = boolFlag(&o.isUpgrade)
		case "-a", "--api-versions":
			v, err = needValue()
			o.apiVersions = append(o.apiVersions, strings.Split(v, ",")...)
		case "--kube-version":
			o.kubeVersion, err = needValue()
		case "-s", "--show-only":
			v, err = needValue()
			o.showOnly = append(o.showOnly, strings.Split(v, ",")...)
		case "--print-notes":
			err = boolFlag(&o.printNotes)
		case "--print-values":
			err = boolFlag(&o.printValues)
		case "--cluster-objects":
			v, err = needValue()
			if err == nil {
				err = loadClusterObjects(v)
			}
		case "-h", "--help":
			o.helpWanted = true
		default:
			return nil, fmt.Errorf("unknown flag: %s", name)
		}
		if err != nil {
			return nil, err
		}
	}
	if o.helpWanted {
		return o, nil
	}
	switch len(positional) {
	case 1:
		o.chartDir = positional[0]
	case 2:
		if o.releaseIsSet {
			return nil, fmt.Errorf("release name given twice (%q and --release-name %q)", positional[0], o.releaseName)
		}
		o.releaseName, o.chartDir = positional[0], positional[1]
	default:
		return nil, fmt.Errorf("expected [NAME] CHART_DIR, got %d positional arguments", len(positional))
	}
	return o, nil
}

// renderError marks failures Helm reports after the release object exists;
// `helm template` appends a --debug hint to those (and only those).
type renderError struct{ err error }

func (e renderError) Error() string {
	return e.err.Error() + "\n\nUse --debug flag to render out invalid YAML"
}

// templateChart follows `helm template` (cmd/helm/template.go, action.Install
// in client-only mode, Configuration.renderResources) and returns its stdout.
func templateChart(o *options, warn func(string, ...interface{})) (string, error) {
	caps, err := newCapabilities(o.kubeVersion, o.apiVersions)
	if err != nil {
		return "", err
	}
	c, err := loadChartDir(o.chartDir)
	if err != nil {
		return "", err
	}
	if c.Metadata.Type != "" && c.Metadata.Type != "application" {
		return "", fmt.Errorf("%s charts are not installable", c.Metadata.Type)
	}
	userVals, err := o.values.mergeUserValues()
	if err != nil {
		return "", err
	}
	if err := validateReleaseName(o.releaseName); err != nil {
		return "", err
	}

	values := coalesceValues(c.Name(), c.Values, userVals, warn)
	if o.printValues {
		data, err := json.MarshalIndent(values, "", "  ")
		if err != nil {
			return "", err
		}
		return string(data) + "\n", nil
	}

	if c.Metadata.KubeVersion != "" && !isCompatibleRange(c.Metadata.KubeVersion, caps.KubeVersion.Version) {
		return "", renderError{fmt.Errorf("chart requires kubeVersion: %s which is incompatible with Kubernetes %s", c.Metadata.KubeVersion, caps.KubeVersion.Version)}
	}

	// The object every template sees as ".", shared by all templates of the
	// chart like in Helm (engine.recAllTpls); .Template is set per file.
	top := map[string]interface{}{
		"Chart": struct {
			Metadata
			IsRoot bool
		}{*c.Metadata, true},
		"Files": newFiles(c.Files),
		"Release": map[string]interface{}{
			"Name":      o.releaseName,
			"Namespace": o.namespace,
			"IsUpgrade": o.isUpgrade,
			"IsInstall": !o.isUpgrade,
			"Revision":  1,
			"Service":   "Helm",
		},
		"Capabilities": caps,
		"Values":       values,
		"Subcharts":    map[string]interface{}{},
	}
	tpls := make(map[string]renderable, len(c.Templates))
	for _, t := range c.Templates {
		tpls[path.Join(c.Name(), t.Name)] = renderable{
			tpl:      string(t.Data),
			vals:     top,
			basePath: path.Join(c.Name(), "templates"),
		}
	}
	files, err := render(tpls)
	if err != nil {
		return "", renderError{err}
	}

	// Every *NOTES.txt is dropped from the manifests; only the chart's own
	// templates/NOTES.txt is kept as the notes.
	notes := ""
	for k, v := range files {
		if strings.HasSuffix(k, "NOTES.txt") {
			if k == path.Join(c.Name(), "templates", "NOTES.txt") {
				notes = v
			}
			delete(files, k)
		}
	}
	if o.printNotes {
		return notes, nil
	}

	hooks, manifests, err := sortManifests(files, warn)
	if err != nil {
		return "", renderError{err}
	}

	var b strings.Builder
	if o.includeCRDs {
		for _, crd := range c.crdObjects() {
			fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", crd.Name, string(crd.Data))
		}
	}
	for _, m := range manifests {
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", m.Name, m.Content)
	}

	var out strings.Builder
	fmt.Fprintln(&out, strings.TrimSpace(b.String()))
	if !o.noHooks {
		for _, h := range hooks {
			if o.skipTests && h.Test {
				continue
			}
			fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", h.Path, h.Manifest)
		}
	}
	if len(o.showOnly) > 0 {
		return showOnly(out.String(), o.showOnly)
	}
	return out.String(), nil
}

// ---- .Capabilities (port of helm.sh/helm/v3/pkg/chartutil/capabilities.go) ----

// Capabilities, KubeVersion, VersionSet and BuildInfo keep Helm's shapes so
// that .Capabilities.KubeVersion.Version/.Major/.Minor/.GitVersion,
// .Capabilities.APIVersions.Has and .Capabilities.HelmVersion work unchanged.
type Capabilities struct {
	KubeVersion KubeVersion
	APIVersions VersionSet
	HelmVersion BuildInfo
}

type KubeVersion struct {
	Version string
	Major   string
	Minor   string
}

func (kv *KubeVersion) String() string { return kv.Version }

// GitVersion is the deprecated alias charts still use.
func (kv *KubeVersion) GitVersion() string { return kv.Version }

type VersionSet []string

// Has is an exact match: "apps/v1" only matches "apps/v1", and
// "monitoring.coreos.com/v1/ServiceMonitor" only matches if that exact
// string was passed with --api-versions (the built-in set has no kinds).
func (v VersionSet) Has(apiVersion string) bool {
	for _, x := range v {
		if x == apiVersion {
			return true
		}
	}
	return false
}

type BuildInfo struct {
	Version      string `json:"version,omitempty"`
	GitCommit    string `json:"git_commit,omitempty"`
	GitTreeState string `json:"git_tree_state,omitempty"`
	GoVersion    string `json:"go_version,omitempty"`
}

// defaultVersionSet is what Helm's DefaultVersionSet holds when built
// against client-go 1.30: every group/version of the built-in scheme plus
// apiextensions.k8s.io, and no group/version/Kind entries.
var defaultVersionSet = VersionSet{
	"v1",
	"admissionregistration.k8s.io/v1",
	"admissionregistration.k8s.io/v1beta1",
	"admissionregistration.k8s.io/v1alpha1",
	"internal.apiserver.k8s.io/v1alpha1",
	"apps/v1",
	"apps/v1beta2",
	"apps/v1beta1",
	"authentication.k8s.io/v1",
	"authentication.k8s.io/v1beta1",
	"authentication.k8s.io/v1alpha1",
	"authorization.k8s.io/v1",
	"authorization.k8s.io/v1beta1",
	"autoscaling/v2",
	"autoscaling/v1",
	"autoscaling/v2beta1",
	"autoscaling/v2beta2",
	"batch/v1",
	"batch/v1beta1",
	"certificates.k8s.io/v1",
	"certificates.k8s.io/v1beta1",
	"certificates.k8s.io/v1alpha1",
	"coordination.k8s.io/v1",
	"coordination.k8s.io/v1beta1",
	"discovery.k8s.io/v1",
	"discovery.k8s.io/v1beta1",
	"events.k8s.io/v1",
	"events.k8s.io/v1beta1",
	"extensions/v1beta1",
	"flowcontrol.apiserver.k8s.io/v1",
	"flowcontrol.apiserver.k8s.io/v1beta3",
	"flowcontrol.apiserver.k8s.io/v1beta2",
	"flowcontrol.apiserver.k8s.io/v1beta1",
	"networking.k8s.io/v1",
	"networking.k8s.io/v1beta1",
	"networking.k8s.io/v1alpha1",
	"node.k8s.io/v1",
	"node.k8s.io/v1beta1",
	"node.k8s.io/v1alpha1",
	"policy/v1",
	"policy/v1beta1",
	"rbac.authorization.k8s.io/v1",
	"rbac.authorization.k8s.io/v1beta1",
	"rbac.authorization.k8s.io/v1alpha1",
	"resource.k8s.io/v1alpha2",
	"scheduling.k8s.io/v1",
	"scheduling.k8s.io/v1beta1",
	"scheduling.k8s.io/v1alpha1",
	"storage.k8s.io/v1",
	"storage.k8s.io/v1beta1",
	"storage.k8s.io/v1alpha1",
	"storagemigration.k8s.io/v1alpha1",
	"apiextensions.k8s.io/v1",
	"apiextensions.k8s.io/v1beta1",
}

func newCapabilities(kubeVersion string, extraAPIs []string) (*Capabilities, error) {
	sv, err := semver.NewVersion(kubeVersion)
	if err != nil {
		return nil, fmt.Errorf("invalid kube version '%s': %s", kubeVersion, err)
	}
	apis := make(VersionSet, 0, len(defaultVersionSet)+len(extraAPIs))
	apis = append(apis, defaultVersionSet...)
	apis = append(apis, extraAPIs...)
	return &Capabilities{
		KubeVersion: KubeVersion{
			Version: "v" + sv.String(),
			Major:   strconv.FormatUint(sv.Major(), 10),
			Minor:   strconv.FormatUint(sv.Minor(), 10),
		},
		APIVersions: apis,
		HelmVersion: BuildInfo{Version: helmCompatVersion, GoVersion: runtime.Version()},
	}, nil
}

// isCompatibleRange is chartutil.IsCompatibleRange (Chart.yaml kubeVersion).
func isCompatibleRange(constraint, ver string) bool {
	sv, err := semver.NewVersion(ver)
	if err != nil {
		return false
	}
	c, err := semver.NewConstraint(constraint)
	if err != nil {
		return false
	}
	return c.Check(sv)
}
