// yaml-read decodes YAML the way Go programs that read this repository's files do, and prints what
// they saw as JSON, so tests can compare it with the object that was written.
//
//	yaml-read [FILE...]    (no FILE: one stream from stdin)
//
// Every input is decoded twice, with gopkg.in/yaml.v2 (YAML 1.1 rules: what sigs.k8s.io/yaml, kubectl,
// Flux's kustomize-controller and Helm read with) and with gopkg.in/yaml.v3 (kyaml, kustomize). One JSON
// line per input:
//
//	{"source": "a.yaml",
//	 "v2": {"docs": [<value>, …], "nonStringKeys": [...], "error": "..."},
//	 "v3": {"docs": [...], "nonStringKeys": [...], "nonStringTags": [...], "error": "..."}}
//
// A value is the document decoded into interface{}, converted to JSON: maps with non-string keys (a
// bool, an int, a merged `<<`) get the key's text as JSON key and the key is listed in nonStringKeys
// ("<path>: <Go type> <value>"). Floats that JSON cannot carry (NaN, ±Inf) become {"$float": "+Inf"},
// time.Time {"$timestamp": "…"}, []byte {"$binary": "<base64>"}. For v3, nonStringTags also lists every
// scalar of the node tree (keys and values) whose resolved tag is neither !!str nor the tag its decoded
// value has in JSON (!!int, !!float, !!bool, !!null): "<path>: !!timestamp" or "<path> (key): !!merge".
// A decode error ends that reader's documents for the input and is reported in "error".
// Paths are JSON pointers (RFC 6901).
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	yamlv2 "gopkg.in/yaml.v2"
	yamlv3 "gopkg.in/yaml.v3"
)

type readerResult struct {
	Docs          []interface{} `json:"docs"`
	NonStringKeys []string      `json:"nonStringKeys"`
	NonStringTags []string      `json:"nonStringTags,omitempty"`
	Error         string        `json:"error,omitempty"`
}

type inputResult struct {
	Source string       `json:"source"`
	V2     readerResult `json:"v2"`
	V3     readerResult `json:"v3"`
}

func pointer(path, key string) string {
	key = strings.ReplaceAll(key, "~", "~0")
	key = strings.ReplaceAll(key, "/", "~1")
	return path + "/" + key
}

// toJSON converts a decoded value into something encoding/json can print, noting non-string keys.
func toJSON(v interface{}, path string, res *readerResult) interface{} {
	switch x := v.(type) {
	case map[interface{}]interface{}:
		out := make(map[string]interface{}, len(x))
		for k, val := range x {
			ks, ok := k.(string)
			if !ok {
				ks = fmt.Sprint(k)
				res.NonStringKeys = append(res.NonStringKeys, fmt.Sprintf("%s: %T %v", pointer(path, ks), k, k))
			}
			out[ks] = toJSON(val, pointer(path, ks), res)
		}
		return out
	case map[string]interface{}:
		out := make(map[string]interface{}, len(x))
		for k, val := range x {
			out[k] = toJSON(val, pointer(path, k), res)
		}
		return out
	case []interface{}:
		out := make([]interface{}, len(x))
		for i, val := range x {
			out[i] = toJSON(val, pointer(path, strconv.Itoa(i)), res)
		}
		return out
	case float64:
		if math.IsNaN(x) {
			return map[string]string{"$float": "NaN"}
		}
		if math.IsInf(x, 1) {
			return map[string]string{"$float": "+Inf"}
		}
		if math.IsInf(x, -1) {
			return map[string]string{"$float": "-Inf"}
		}
		return x
	case time.Time:
		return map[string]string{"$timestamp": x.Format(time.RFC3339Nano)}
	case []byte:
		return map[string]string{"$binary": base64.StdEncoding.EncodeToString(x)}
	default:
		return x
	}
}

// The tag a scalar may have without being a surprise: !!str, or the tag matching the JSON type its
// decoded value has (a number written as a number is !!int, and that is what the writer meant).
func expectedTag(decoded interface{}) string {
	switch decoded.(type) {
	case bool:
		return "!!bool"
	case nil:
		return "!!null"
	case int, int64, uint64:
		return "!!int"
	case float64:
		return "!!float"
	}
	return "!!str"
}

// checkTags walks a v3 node tree next to its decoded value and lists scalars whose tag is unexpected.
func checkTags(n *yamlv3.Node, decoded interface{}, path string, res *readerResult) {
	switch n.Kind {
	case yamlv3.DocumentNode:
		for _, c := range n.Content {
			checkTags(c, decoded, path, res)
		}
	case yamlv3.MappingNode:
		m, _ := decoded.(map[string]interface{})
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Kind != yamlv3.ScalarNode {
				res.NonStringTags = append(res.NonStringTags, fmt.Sprintf("%s (key): %s node", path, kindName(k.Kind)))
				continue
			}
			if tag := k.ShortTag(); tag != "!!str" {
				res.NonStringTags = append(res.NonStringTags, fmt.Sprintf("%s (key): %s", pointer(path, k.Value), tag))
			}
			var child interface{}
			if m != nil {
				child = m[k.Value]
			}
			checkTags(val, child, pointer(path, k.Value), res)
		}
	case yamlv3.SequenceNode:
		s, _ := decoded.([]interface{})
		for i, c := range n.Content {
			var child interface{}
			if i < len(s) {
				child = s[i]
			}
			checkTags(c, child, pointer(path, strconv.Itoa(i)), res)
		}
	case yamlv3.ScalarNode:
		tag := n.ShortTag()
		if tag != "!!str" && tag != expectedTag(decoded) {
			res.NonStringTags = append(res.NonStringTags, fmt.Sprintf("%s: %s", path, tag))
		}
	case yamlv3.AliasNode:
		res.NonStringTags = append(res.NonStringTags, fmt.Sprintf("%s: alias *%s", path, n.Value))
	}
}

func kindName(k yamlv3.Kind) string {
	switch k {
	case yamlv3.MappingNode:
		return "mapping"
	case yamlv3.SequenceNode:
		return "sequence"
	case yamlv3.AliasNode:
		return "alias"
	}
	return strconv.Itoa(int(k))
}

// decodeAll is the decode loop of both readers, so they end a stream alike: documents to res.Docs, the first error (decode's or each's) to res.Error.
func decodeAll(decode func(v interface{}) error, res *readerResult, each func(doc interface{}) error) {
	for {
		var v interface{}
		err := decode(&v)
		if err == io.EOF {
			return
		}
		if err != nil {
			res.Error = err.Error()
			return
		}
		res.Docs = append(res.Docs, toJSON(v, "", res))
		if each == nil {
			continue
		}
		if err := each(v); err != nil {
			res.Error = err.Error()
			return
		}
	}
}

func readV2(data []byte) readerResult {
	res := readerResult{Docs: []interface{}{}, NonStringKeys: []string{}}
	decodeAll(yamlv2.NewDecoder(bytes.NewReader(data)).Decode, &res, nil)
	sort.Strings(res.NonStringKeys)
	return res
}

func readV3(data []byte) readerResult {
	res := readerResult{Docs: []interface{}{}, NonStringKeys: []string{}, NonStringTags: []string{}}
	// The same stream again as node trees, one per decoded document, for the tags.
	nodes := yamlv3.NewDecoder(bytes.NewReader(data))
	decodeAll(yamlv3.NewDecoder(bytes.NewReader(data)).Decode, &res, func(doc interface{}) error {
		var n yamlv3.Node
		if err := nodes.Decode(&n); err != nil {
			return fmt.Errorf("node tree: %w", err)
		}
		checkTags(&n, doc, "", &res)
		return nil
	})
	sort.Strings(res.NonStringKeys)
	sort.Strings(res.NonStringTags)
	return res
}

func main() {
	sources := os.Args[1:]
	if len(sources) == 0 {
		sources = []string{"-"}
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	for _, src := range sources {
		var data []byte
		var err error
		if src == "-" {
			data, err = io.ReadAll(os.Stdin)
		} else {
			data, err = os.ReadFile(src)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "yaml-read: %v\n", err)
			os.Exit(2)
		}
		if err := enc.Encode(inputResult{Source: src, V2: readV2(data), V3: readV3(data)}); err != nil {
			fmt.Fprintf(os.Stderr, "yaml-read: %v\n", err)
			os.Exit(2)
		}
	}
}
