package main

// Helm never parses or prints YAML with a YAML library directly: it goes
// through sigs.k8s.io/yaml (v1.4.0 in Helm 3.17), which converts YAML to JSON
// and back around gopkg.in/yaml.v2 (v2.4.0). That round trip is what gives
// Helm its well-known quirks (every number in values.yaml is a float64, so
// `{{ .Values.n }}` prints 1000000 as 1e+06; `toYaml` sorts keys and wraps
// long strings at 80 columns; `appVersion: 1.10` in Chart.yaml reads as
// "1.1"), so this file
// reproduces sigs.k8s.io/yaml on top of Debian's yaml.v2 2.4.0 rather than
// using yaml.v2 directly.

import (
	"bytes"
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	yaml "gopkg.in/yaml.v2"
)

// yamlUnmarshal mirrors sigs.k8s.io/yaml.Unmarshal: YAML -> JSON (coercing
// scalars to strings where the target field is a string) -> encoding/json.
func yamlUnmarshal(data []byte, obj interface{}) error {
	j, err := yamlToJSON(data, reflect.TypeOf(obj))
	if err != nil {
		return fmt.Errorf("error converting YAML to JSON: %v", err)
	}
	if err := json.NewDecoder(bytes.NewReader(j)).Decode(obj); err != nil {
		return fmt.Errorf("error unmarshaling JSON: while decoding JSON: %v", err)
	}
	return nil
}

// yamlMarshal mirrors sigs.k8s.io/yaml.Marshal: encoding/json first (so json
// tags and MarshalJSON apply), then JSON -> yaml.v2 objects -> YAML text.
func yamlMarshal(v interface{}) ([]byte, error) {
	j, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("error marshaling into JSON: %v", err)
	}
	// yaml.v2 (not encoding/json) reads the JSON back, because it keeps
	// integers as ints where encoding/json would turn them into float64s.
	var obj interface{}
	if err := yaml.Unmarshal(j, &obj); err != nil {
		return nil, fmt.Errorf("error converting JSON to YAML: %v", err)
	}
	out, err := yaml.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("error converting JSON to YAML: %v", err)
	}
	return out, nil
}

func yamlToJSON(data []byte, target reflect.Type) ([]byte, error) {
	var obj interface{}
	if err := yaml.Unmarshal(data, &obj); err != nil {
		return nil, err
	}
	converted, err := toJSONable(obj, target)
	if err != nil {
		return nil, err
	}
	return json.Marshal(converted)
}

var (
	jsonUnmarshalerType = reflect.TypeOf((*json.Unmarshaler)(nil)).Elem()
	textUnmarshalerType = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
)

// resolveTarget follows pointers the way encoding/json's indirect does, and
// gives up (nil) on types that decode themselves: those never get the
// number-to-string coercion.
func resolveTarget(t reflect.Type) reflect.Type {
	for t != nil {
		if t.Implements(jsonUnmarshalerType) || t.Implements(textUnmarshalerType) ||
			reflect.PtrTo(t).Implements(jsonUnmarshalerType) || reflect.PtrTo(t).Implements(textUnmarshalerType) {
			return nil
		}
		if t.Kind() != reflect.Ptr {
			return t
		}
		t = t.Elem()
	}
	return nil
}

// structFieldType finds the field encoding/json would fill for key: exact
// json name first, else a case-insensitive match.
func structFieldType(t reflect.Type, key string) reflect.Type {
	var folded reflect.Type
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.PkgPath != "" {
			continue
		}
		name := f.Name
		if tag := f.Tag.Get("json"); tag != "" {
			if tag == "-" {
				continue
			}
			if n := strings.Split(tag, ",")[0]; n != "" {
				name = n
			}
		}
		if name == key {
			return f.Type
		}
		if folded == nil && strings.EqualFold(name, key) {
			folded = f.Type
		}
	}
	return folded
}

// toJSONable is sigs.k8s.io/yaml's convertToJSONableObject: map keys become
// strings, and numbers/bools become strings when the Go target is a string.
func toJSONable(obj interface{}, target reflect.Type) (interface{}, error) {
	if target != nil {
		target = resolveTarget(target)
	}
	switch typed := obj.(type) {
	case map[interface{}]interface{}:
		out := make(map[string]interface{}, len(typed))
		for k, v := range typed {
			var key string
			switch tk := k.(type) {
			case string:
				key = tk
			case int:
				key = strconv.Itoa(tk)
			case int64:
				key = strconv.FormatInt(tk, 10)
			case float64:
				key = formatYAMLFloat(tk)
			case bool:
				key = strconv.FormatBool(tk)
			default:
				return nil, fmt.Errorf("unsupported map key of type: %s, key: %+#v, value: %+#v", reflect.TypeOf(k), k, v)
			}
			var sub reflect.Type
			if target != nil {
				switch target.Kind() {
				case reflect.Struct:
					sub = structFieldType(target, key)
				case reflect.Map:
					sub = target.Elem()
				}
			}
			converted, err := toJSONable(v, sub)
			if err != nil {
				return nil, err
			}
			out[key] = converted
		}
		return out, nil
	case []interface{}:
		var elem reflect.Type
		if target != nil && target.Kind() == reflect.Slice {
			elem = target.Elem()
		}
		out := make([]interface{}, len(typed))
		for i, v := range typed {
			converted, err := toJSONable(v, elem)
			if err != nil {
				return nil, err
			}
			out[i] = converted
		}
		return out, nil
	default:
		if target != nil && target.Kind() == reflect.String {
			switch tv := typed.(type) {
			case int:
				return strconv.FormatInt(int64(tv), 10), nil
			case int64:
				return strconv.FormatInt(tv, 10), nil
			case uint64:
				return strconv.FormatUint(tv, 10), nil
			case float64:
				return formatYAMLFloat(tv), nil
			case bool:
				return strconv.FormatBool(tv), nil
			}
		}
		return obj, nil
	}
}

// formatYAMLFloat uses 32-bit precision on purpose: sigs.k8s.io/yaml v1.4.0
// does, which is why Chart.yaml's unquoted `appVersion: 1.10` becomes "1.1".
func formatYAMLFloat(f float64) string {
	s := strconv.FormatFloat(f, 'g', -1, 32)
	switch s {
	case "+Inf":
		return ".inf"
	case "-Inf":
		return "-.inf"
	case "NaN":
		return ".nan"
	}
	return s
}
