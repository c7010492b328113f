// helmtpl: a small stand-in for `helm template` built only from Debian's Go packages.
// Supports: Chart.yaml, values.yaml, -f/--values files, --set a.b=c (strings/ints/bools),
// --name, --namespace, templates/*.{yaml,yml,tpl,txt} (files starting with _ are partials only),
// sprig functions (minus env/expandenv, as in Helm), include, tpl, required, toYaml, fromYaml,
// toJson, fromJson, fromYamlArray, lookup (empty), .Release, .Chart, .Values, .Capabilities,
// .Template, .Files.Get/.Files.Glob/.Files.AsConfig/.Files.AsSecrets (minimal),
// .Capabilities.APIVersions.Has. No subcharts (charts/), no values.schema.json, no hooks ordering.
// -notes renders templates/NOTES.txt instead of the manifests (what `helm install` prints).
// Copied into Strata from ../shared/tools/containers/helmtpl (used by scripts/chart/check.sh).
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig/v3"
	"sigs.k8s.io/yaml"
)

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func readYAMLMap(p string) (map[string]interface{}, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	m := map[string]interface{}{}
	if err := yaml.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return m, nil
}

// deepMerge merges src into dst (src wins), recursing into maps, like Helm's coalescing of user values.
func deepMerge(dst, src map[string]interface{}) map[string]interface{} {
	for k, v := range src {
		if sm, ok := v.(map[string]interface{}); ok {
			if dm, ok := dst[k].(map[string]interface{}); ok {
				dst[k] = deepMerge(dm, sm)
				continue
			}
		}
		if v == nil { // null deletes a default, as in Helm
			delete(dst, k)
			continue
		}
		dst[k] = v
	}
	return dst
}

func parseScalar(s string) interface{} {
	if s == "true" || s == "false" {
		return s == "true"
	}
	if s == "null" {
		return nil
	}
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return i
	}
	return s
}

func setPath(m map[string]interface{}, key string, val interface{}) {
	parts := strings.Split(key, ".")
	for _, p := range parts[:len(parts)-1] {
		next, ok := m[p].(map[string]interface{})
		if !ok {
			next = map[string]interface{}{}
			m[p] = next
		}
		m = next
	}
	m[parts[len(parts)-1]] = val
}

func toYAML(v interface{}) string {
	b, err := yaml.Marshal(v)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(b), "\n")
}

type files map[string][]byte

func (f files) Get(name string) string      { return string(f[name]) }
func (f files) GetBytes(name string) []byte { return f[name] }
func (f files) Glob(pattern string) files {
	out := files{}
	for k, v := range f {
		if ok, _ := path.Match(pattern, k); ok {
			out[k] = v
		}
	}
	return out
}
func (f files) AsSecrets() string {
	m := map[string]string{}
	for k, v := range f {
		m[path.Base(k)] = base64.StdEncoding.EncodeToString(v)
	}
	return toYAML(m)
}

// apiVersions mimics Helm's .Capabilities.APIVersions (with .Has).
type apiVersions []string

func (a apiVersions) Has(v string) bool {
	for _, x := range a {
		if x == v {
			return true
		}
	}
	return false
}

func (f files) AsConfig() string {
	m := map[string]string{}
	for k, v := range f {
		m[path.Base(k)] = string(v)
	}
	return toYAML(m)
}

func main() {
	var valueFiles, sets multiFlag
	name := flag.String("name", "release-name", "release name")
	ns := flag.String("namespace", "default", "release namespace")
	kubeVersion := flag.String("kube-version", "v1.32.0", "Capabilities.KubeVersion")
	notes := flag.Bool("notes", false, "render templates/NOTES.txt only")
	flag.Var(&valueFiles, "f", "values file (repeatable)")
	flag.Var(&sets, "set", "key=value (repeatable)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: helmtpl [-name N] [-namespace NS] [-f values.yaml] [-set a.b=c] CHART_DIR")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	chartDir := flag.Arg(0)

	chartMeta, err := readYAMLMap(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		fail(err)
	}
	for _, k := range []string{"apiVersion", "name", "version"} {
		if _, ok := chartMeta[k]; !ok {
			fail(fmt.Errorf("Chart.yaml: missing required field %q", k))
		}
	}
	chart := map[string]interface{}{}
	for k, v := range chartMeta { // Helm exposes Chart.yaml fields capitalised: .Chart.Name, .Chart.AppVersion
		chart[strings.ToUpper(k[:1])+k[1:]] = v
	}
	values := map[string]interface{}{}
	if _, err := os.Stat(filepath.Join(chartDir, "values.yaml")); err == nil {
		if values, err = readYAMLMap(filepath.Join(chartDir, "values.yaml")); err != nil {
			fail(err)
		}
	}
	for _, vf := range valueFiles {
		m, err := readYAMLMap(vf)
		if err != nil {
			fail(err)
		}
		values = deepMerge(values, m)
	}
	for _, s := range sets {
		kv := strings.SplitN(s, "=", 2)
		if len(kv) != 2 {
			fail(fmt.Errorf("--set %q: want key=value", s))
		}
		setPath(values, kv[0], parseScalar(kv[1]))
	}

	// every non-template file of the chart, for .Files
	allFiles := files{}
	filepath.Walk(chartDir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(chartDir, p)
		rel = filepath.ToSlash(rel)
		if strings.HasPrefix(rel, "templates/") || rel == "Chart.yaml" || rel == "values.yaml" {
			return nil
		}
		b, _ := os.ReadFile(p)
		allFiles[rel] = b
		return nil
	})

	chartName := fmt.Sprint(chartMeta["name"])
	var tplNames []string
	tplDir := filepath.Join(chartDir, "templates")
	filepath.Walk(tplDir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		switch filepath.Ext(p) {
		case ".yaml", ".yml", ".tpl", ".txt":
			tplNames = append(tplNames, p)
		}
		return nil
	})
	sort.Strings(tplNames)

	root := template.New("gotpl")
	funcs := sprig.TxtFuncMap()
	delete(funcs, "env")
	delete(funcs, "expandenv")
	includedNames := map[string]int{}
	funcs["include"] = func(name string, data interface{}) (string, error) {
		if includedNames[name] > 1000 {
			return "", fmt.Errorf("rendering template has a nested reference name: %s", name)
		}
		includedNames[name]++
		defer func() { includedNames[name]-- }()
		var buf bytes.Buffer
		err := root.ExecuteTemplate(&buf, name, data)
		return buf.String(), err
	}
	funcs["tpl"] = func(text string, data interface{}) (string, error) {
		t, err := root.Clone()
		if err != nil {
			return "", err
		}
		t, err = t.New("tpl").Option("missingkey=zero").Parse(text)
		if err != nil {
			return "", err
		}
		var buf bytes.Buffer
		err = t.Execute(&buf, data)
		return strings.ReplaceAll(buf.String(), "<no value>", ""), err
	}
	funcs["required"] = func(msg string, v interface{}) (interface{}, error) {
		if v == nil {
			return nil, errors.New(msg)
		}
		if s, ok := v.(string); ok && s == "" {
			return nil, errors.New(msg)
		}
		return v, nil
	}
	funcs["toYaml"] = toYAML
	funcs["fromYaml"] = func(s string) map[string]interface{} {
		m := map[string]interface{}{}
		if err := yaml.Unmarshal([]byte(s), &m); err != nil {
			m["Error"] = err.Error()
		}
		return m
	}
	funcs["fromYamlArray"] = func(s string) []interface{} {
		var a []interface{}
		if err := yaml.Unmarshal([]byte(s), &a); err != nil {
			a = []interface{}{err.Error()}
		}
		return a
	}
	funcs["mustToYaml"] = func(v interface{}) (string, error) {
		b, err := yaml.Marshal(v)
		return strings.TrimSuffix(string(b), "\n"), err
	}
	funcs["toJson"] = func(v interface{}) string { b, _ := json.Marshal(v); return string(b) }
	funcs["mustToJson"] = func(v interface{}) (string, error) { b, err := json.Marshal(v); return string(b), err }
	funcs["fromJsonArray"] = func(s string) []interface{} {
		var a []interface{}
		if err := json.Unmarshal([]byte(s), &a); err != nil {
			a = []interface{}{err.Error()}
		}
		return a
	}
	funcs["fromJson"] = func(s string) map[string]interface{} {
		m := map[string]interface{}{}
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			m["Error"] = err.Error()
		}
		return m
	}
	funcs["lookup"] = func(...interface{}) (map[string]interface{}, error) { return map[string]interface{}{}, nil }
	root.Funcs(funcs).Option("missingkey=zero")

	for _, p := range tplNames {
		b, err := os.ReadFile(p)
		if err != nil {
			fail(err)
		}
		rel, _ := filepath.Rel(chartDir, p)
		tname := chartName + "/" + filepath.ToSlash(rel)
		if _, err := root.New(tname).Parse(string(b)); err != nil {
			fail(err)
		}
	}

	failed := false
	for _, p := range tplNames {
		rel, _ := filepath.Rel(chartDir, p)
		rel = filepath.ToSlash(rel)
		base := path.Base(rel)
		if *notes {
			if base != "NOTES.txt" {
				continue
			}
		} else if strings.HasPrefix(base, "_") || base == "NOTES.txt" || !(strings.HasSuffix(base, ".yaml") || strings.HasSuffix(base, ".yml")) {
			continue
		}
		tname := chartName + "/" + rel
		data := map[string]interface{}{
			"Values":       values,
			"Chart":        chart,
			"Release":      map[string]interface{}{"Name": *name, "Namespace": *ns, "Service": "Helm", "IsInstall": true, "IsUpgrade": false, "Revision": 1},
			"Capabilities": map[string]interface{}{"KubeVersion": map[string]interface{}{"Version": *kubeVersion, "GitVersion": *kubeVersion, "Major": "1", "Minor": "32"}, "APIVersions": apiVersions{"v1", "apps/v1", "batch/v1", "networking.k8s.io/v1", "policy/v1", "autoscaling/v2", "rbac.authorization.k8s.io/v1", "storage.k8s.io/v1"}},
			"Template":     map[string]interface{}{"Name": tname, "BasePath": chartName + "/templates"},
			"Files":        allFiles,
		}
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, tname, data); err != nil {
			fmt.Fprintf(os.Stderr, "Error: %v\n", err)
			failed = true
			continue
		}
		out := strings.ReplaceAll(buf.String(), "<no value>", "")
		// A template that starts its first document with "---" must not
		// produce an empty document after the "# Source:" line.
		out = strings.TrimPrefix(strings.TrimLeft(out, "\n"), "---\n")
		if strings.TrimSpace(out) == "" {
			continue
		}
		if *notes {
			fmt.Println(strings.TrimRight(out, "\n"))
			continue
		}
		fmt.Printf("---\n# Source: %s\n%s\n", tname, strings.TrimRight(out, "\n"))
	}
	if failed {
		os.Exit(1)
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "Error: %v\n", err)
	os.Exit(1)
}
