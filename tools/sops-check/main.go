package main

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

type Comment struct {
	Value  string
	Inline bool
}
type TreeItem struct {
	Key   interface{}
	Value interface{}
}
type TreeBranch []TreeItem

// ---- stores/yaml/store.go (loading) ----

func appendCommentToList(comment string, list []interface{}, inline bool) []interface{} {
	if comment != "" {
		for _, line := range strings.Split(comment, "\n") {
			if line != "" {
				list = append(list, Comment{Value: line[1:], Inline: inline})
			}
		}
	}
	return list
}

func appendCommentToMap(comment string, branch TreeBranch, inline bool) TreeBranch {
	if comment != "" {
		for _, line := range strings.Split(comment, "\n") {
			if line != "" {
				branch = append(branch, TreeItem{Key: Comment{Value: line[1:], Inline: inline}, Value: nil})
			}
		}
	}
	return branch
}

func nodeToTreeValue(node *yaml.Node, commentsWereHandled bool) (interface{}, error) {
	switch node.Kind {
	case yaml.SequenceNode:
		var result []interface{}
		if !commentsWereHandled {
			result = appendCommentToList(node.HeadComment, result, false)
			result = appendCommentToList(node.LineComment, result, false)
		}
		for _, item := range node.Content {
			result = appendCommentToList(item.HeadComment, result, false)
			result = appendCommentToList(item.LineComment, result, true)
			val, err := nodeToTreeValue(item, true)
			if err != nil {
				return nil, err
			}
			result = append(result, val)
			result = appendCommentToList(item.FootComment, result, false)
		}
		if !commentsWereHandled {
			result = appendCommentToList(node.FootComment, result, false)
		}
		return result, nil
	case yaml.MappingNode:
		return appendYamlNodeToTreeBranch(node, make(TreeBranch, 0), commentsWereHandled)
	case yaml.ScalarNode:
		var result interface{}
		node.Decode(&result)
		return result, nil
	case yaml.AliasNode:
		return nodeToTreeValue(node.Alias, false)
	}
	return nil, nil
}

func appendYamlNodeToTreeBranch(node *yaml.Node, branch TreeBranch, commentsWereHandled bool) (TreeBranch, error) {
	var err error
	if !commentsWereHandled {
		branch = appendCommentToMap(node.HeadComment, branch, false)
		branch = appendCommentToMap(node.LineComment, branch, false)
	}
	switch node.Kind {
	case yaml.DocumentNode:
		for _, item := range node.Content {
			branch, err = appendYamlNodeToTreeBranch(item, branch, false)
			if err != nil {
				return nil, err
			}
		}
	case yaml.SequenceNode:
		return nil, fmt.Errorf("YAML documents that are sequences are not supported")
	case yaml.MappingNode:
		for i := 0; i < len(node.Content); i += 2 {
			key := node.Content[i]
			value := node.Content[i+1]
			branch = appendCommentToMap(key.HeadComment, branch, false)
			branch = appendCommentToMap(key.LineComment, branch, false)
			handleValueComments := value.Kind == yaml.ScalarNode || value.Kind == yaml.AliasNode
			if handleValueComments {
				branch = appendCommentToMap(value.HeadComment, branch, false)
				branch = appendCommentToMap(value.LineComment, branch, true)
			}
			var keyValue interface{}
			key.Decode(&keyValue)
			valueTV, err := nodeToTreeValue(value, handleValueComments)
			if err != nil {
				return nil, err
			}
			branch = append(branch, TreeItem{Key: keyValue, Value: valueTV})
			if handleValueComments {
				branch = appendCommentToMap(value.FootComment, branch, false)
			}
			branch = appendCommentToMap(key.FootComment, branch, false)
		}
	case yaml.ScalarNode:
		if node.ShortTag() == "!!null" {
			return branch, nil
		}
		return nil, fmt.Errorf("YAML documents that are values are not supported")
	case yaml.AliasNode:
		return appendYamlNodeToTreeBranch(node.Alias, branch, false)
	}
	if !commentsWereHandled {
		branch = appendCommentToMap(node.FootComment, branch, false)
	}
	return branch, nil
}

func loadPlainFile(in []byte) ([]TreeBranch, error) {
	var branches []TreeBranch
	if len(in) > 0 {
		if err := yaml.NewDecoder(bytes.NewReader(in)).Decode(make(map[string]interface{})); err != nil {
			return nil, err
		}
	}
	d := yaml.NewDecoder(bytes.NewReader(in))
	for {
		var data yaml.Node
		err := d.Decode(&data)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		branch, err := appendYamlNodeToTreeBranch(&data, make(TreeBranch, 0), false)
		if err != nil {
			return nil, err
		}
		branches = append(branches, branch)
	}
	return branches, nil
}

// ---- stores/yaml/store.go (emitting) ----

func addCommentsHead(node *yaml.Node, comments []string) []string {
	if len(comments) > 0 {
		comment := "#" + strings.Join(comments, "\n#")
		if len(node.HeadComment) > 0 {
			node.HeadComment = comment + "\n" + node.HeadComment
		} else {
			node.HeadComment = comment
		}
	}
	return nil
}

func addCommentsFoot(node *yaml.Node, comments []string) []string {
	if len(comments) > 0 {
		comment := "#" + strings.Join(comments, "\n#")
		if len(node.FootComment) > 0 {
			node.FootComment += "\n" + comment
		} else {
			node.FootComment = comment
		}
	}
	return nil
}

func addCommentsLine(node *yaml.Node, comments []string) []string {
	if len(comments) > 0 {
		comment := "#" + strings.Join(comments, "\n#")
		if len(node.LineComment) > 0 {
			node.LineComment += "\n" + comment
		} else {
			node.LineComment = comment
		}
	}
	return nil
}

func treeValueToNode(in interface{}) *yaml.Node {
	switch in := in.(type) {
	case TreeBranch:
		mapping := &yaml.Node{Kind: yaml.MappingNode}
		appendTreeBranch(in, mapping)
		return mapping
	case []interface{}:
		sequence := &yaml.Node{Kind: yaml.SequenceNode}
		appendSequence(in, sequence)
		return sequence
	default:
		valueNode := &yaml.Node{}
		valueNode.Encode(in)
		return valueNode
	}
}

func appendSequence(in []interface{}, sequence *yaml.Node) {
	var headComments, inlineComments []string
	beginning := true
	for _, item := range in {
		if comment, ok := item.(Comment); ok {
			if comment.Inline {
				inlineComments = append(inlineComments, comment.Value)
			} else {
				headComments = append(headComments, comment.Value)
			}
		} else {
			if beginning {
				headComments = addCommentsHead(sequence, headComments)
				beginning = false
			}
			itemNode := treeValueToNode(item)
			headComments = addCommentsHead(itemNode, headComments)
			inlineComments = addCommentsLine(itemNode, inlineComments)
			sequence.Content = append(sequence.Content, itemNode)
		}
	}
	headComments = append(headComments, inlineComments...)
	if len(headComments) > 0 {
		if beginning {
			addCommentsHead(sequence, headComments)
		} else {
			addCommentsFoot(sequence.Content[len(sequence.Content)-1], headComments)
		}
	}
}

func appendTreeBranch(branch TreeBranch, mapping *yaml.Node) {
	var headComments, inlineComments []string
	beginning := true
	for _, item := range branch {
		if comment, ok := item.Key.(Comment); ok {
			if comment.Inline {
				inlineComments = append(inlineComments, comment.Value)
			} else {
				headComments = append(headComments, comment.Value)
			}
		} else {
			if beginning {
				headComments = addCommentsHead(mapping, headComments)
				beginning = false
			}
			keyNode := &yaml.Node{}
			keyNode.Encode(item.Key)
			headComments = addCommentsHead(keyNode, headComments)
			valueNode := treeValueToNode(item.Value)
			inlineComments = addCommentsLine(valueNode, inlineComments)
			mapping.Content = append(mapping.Content, keyNode, valueNode)
		}
	}
	headComments = append(headComments, inlineComments...)
	if len(headComments) > 0 {
		if beginning {
			addCommentsHead(mapping, headComments)
		} else {
			addCommentsFoot(mapping.Content[len(mapping.Content)-2], headComments)
		}
	}
}

func emitPlainFile(branches []TreeBranch, indent int) ([]byte, error) {
	var b bytes.Buffer
	e := yaml.NewEncoder(io.Writer(&b))
	e.SetIndent(indent)
	for _, branch := range branches {
		doc := yaml.Node{Kind: yaml.DocumentNode}
		mapping := yaml.Node{Kind: yaml.MappingNode}
		appendTreeBranch(branch, &mapping)
		doc.Content = append(doc.Content, &mapping)
		if err := e.Encode(&doc); err != nil {
			return nil, err
		}
	}
	e.Close()
	return b.Bytes(), nil
}

// ---- aes/cipher.go (decryption) ----

var encre = regexp.MustCompile(`^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]`)

func decrypt(ciphertext string, key []byte, aad string) (interface{}, error) {
	if ciphertext == "" {
		return "", nil
	}
	m := encre.FindStringSubmatch(ciphertext)
	if m == nil {
		return nil, fmt.Errorf("not sops' data format: %s", ciphertext)
	}
	data, err := base64.StdEncoding.DecodeString(m[1])
	if err != nil {
		return nil, err
	}
	iv, err := base64.StdEncoding.DecodeString(m[2])
	if err != nil {
		return nil, err
	}
	tag, err := base64.StdEncoding.DecodeString(m[3])
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCMWithNonceSize(block, len(iv))
	if err != nil {
		return nil, err
	}
	plain, err := gcm.Open(nil, iv, append(data, tag...), []byte(aad))
	if err != nil {
		return nil, fmt.Errorf("Could not decrypt with AES_GCM: %s", err)
	}
	s := string(plain)
	switch m[4] {
	case "str":
		return s, nil
	case "int":
		return strconv.Atoi(s)
	case "float":
		return strconv.ParseFloat(s, 64)
	case "bytes":
		return plain, nil
	case "bool":
		return strconv.ParseBool(s)
	case "time":
		var t time.Time
		err := t.UnmarshalText(plain)
		return t, err
	case "comment":
		return Comment{Value: s}, nil
	}
	return nil, fmt.Errorf("Unknown datatype: %s", m[4])
}

// ---- sops.go (tree walk, MAC) ----

func toBytes(in interface{}) ([]byte, error) {
	switch in := in.(type) {
	case string:
		return []byte(in), nil
	case int:
		return []byte(strconv.Itoa(in)), nil
	case float64:
		return []byte(strconv.FormatFloat(in, 'f', -1, 64)), nil
	case bool:
		if in {
			return []byte("True"), nil
		}
		return []byte("False"), nil
	case []byte:
		return in, nil
	case time.Time:
		return in.MarshalText()
	case Comment:
		return toBytes(in.Value)
	}
	return nil, fmt.Errorf("Could not convert unknown type %T to bytes", in)
}

type rules struct {
	unencryptedSuffix, encryptedSuffix, unencryptedRegex, encryptedRegex string
	macOnlyEncrypted                                                     bool
}

func (r rules) shouldBeEncrypted(path []string) bool {
	encrypted := true
	if r.unencryptedSuffix != "" {
		for _, v := range path {
			if strings.HasSuffix(v, r.unencryptedSuffix) {
				encrypted = false
				break
			}
		}
	}
	if r.encryptedSuffix != "" {
		encrypted = false
		for _, v := range path {
			if strings.HasSuffix(v, r.encryptedSuffix) {
				encrypted = true
				break
			}
		}
	}
	if r.unencryptedRegex != "" {
		for _, p := range path {
			if matched, _ := regexp.Match(r.unencryptedRegex, []byte(p)); matched {
				encrypted = false
				break
			}
		}
	}
	if r.encryptedRegex != "" {
		encrypted = false
		for _, p := range path {
			if matched, _ := regexp.Match(r.encryptedRegex, []byte(p)); matched {
				encrypted = true
				break
			}
		}
	}
	return encrypted
}

type walker struct {
	key   []byte
	rules rules
	hash  []byte
	buf   bytes.Buffer
}

func (w *walker) leaf(in interface{}, path []string) (interface{}, error) {
	_, isComment := in.(Comment)
	encrypted := w.rules.shouldBeEncrypted(path)
	v := in
	if encrypted {
		aad := strings.Join(path, ":") + ":"
		if c, ok := in.(Comment); ok {
			d, err := decrypt(c.Value, w.key, aad)
			if err != nil {
				v = c
			} else {
				v = d
			}
		} else if s, ok := in.(string); ok {
			d, err := decrypt(s, w.key, aad)
			if err != nil {
				return nil, fmt.Errorf("Could not decrypt value: %s", err)
			}
			v = d
		} else {
			return nil, fmt.Errorf("Expected encrypted value as string, but got %T", in)
		}
	}
	if (!w.rules.macOnlyEncrypted || encrypted) && !isComment {
		b, err := toBytes(v)
		if err != nil {
			return nil, err
		}
		w.buf.Write(b)
	}
	return v, nil
}

func (w *walker) value(in interface{}, path []string) (interface{}, error) {
	switch in := in.(type) {
	case TreeBranch:
		return w.branch(in, path)
	case []interface{}:
		for i, v := range in {
			nv, err := w.value(v, path)
			if err != nil {
				return nil, err
			}
			in[i] = nv
		}
		return in, nil
	case nil:
		return nil, nil
	case string, int, bool, float64, time.Time, []byte, Comment:
		return w.leaf(in, path)
	}
	return nil, fmt.Errorf("Cannot walk value, unknown type: %T", in)
}

func (w *walker) branch(in TreeBranch, path []string) (TreeBranch, error) {
	for i, item := range in {
		if _, ok := item.Key.(Comment); ok {
			enc, err := w.value(item.Key, path)
			if err != nil {
				return nil, err
			}
			if c, ok := enc.(Comment); ok {
				in[i].Key = c
			} else if s, ok := enc.(string); ok {
				in[i].Key = Comment{Value: s}
			}
			continue
		}
		key, ok := item.Key.(string)
		if !ok {
			return nil, fmt.Errorf("Tree contains a non-string key (type %T)", item.Key)
		}
		nv, err := w.value(item.Value, append(append([]string{}, path...), key))
		if err != nil {
			return nil, err
		}
		in[i].Value = nv
	}
	return in, nil
}

// ---- output ----

func typed(v interface{}) interface{} {
	switch v := v.(type) {
	case TreeBranch:
		out := [][]interface{}{}
		for _, item := range v {
			if _, ok := item.Key.(Comment); ok {
				continue
			}
			out = append(out, []interface{}{item.Key, typed(item.Value)})
		}
		return map[string]interface{}{"map": out}
	case []interface{}:
		out := []interface{}{}
		for _, item := range v {
			if _, ok := item.(Comment); ok {
				continue
			}
			out = append(out, typed(item))
		}
		return out
	case int:
		return map[string]string{"int": strconv.Itoa(v)}
	case float64:
		return map[string]string{"float": strconv.FormatFloat(v, 'f', -1, 64)}
	case time.Time:
		b, _ := v.MarshalText()
		return map[string]string{"time": string(b)}
	}
	return v
}

type result struct {
	MacOk     bool          `json:"macOk"`
	Computed  string        `json:"computed"`
	Stored    string        `json:"stored"`
	Error     string        `json:"error,omitempty"`
	Reemitted string        `json:"reemitted"`
	Documents []interface{} `json:"documents"`
}

func str(b TreeBranch, k string) string {
	for _, item := range b {
		if item.Key == k {
			if s, ok := item.Value.(string); ok {
				return s
			}
		}
	}
	return ""
}

func check(indent int, in []byte, key []byte) (res result) {
	branches, err := loadPlainFile(in)
	if err != nil {
		res.Error = err.Error()
		return
	}
	out, err := emitPlainFile(branches, indent)
	if err != nil {
		res.Error = err.Error()
		return
	}
	res.Reemitted = string(out)
	branches, _ = loadPlainFile(in)
	var meta TreeBranch
	for bi, branch := range branches {
		kept := TreeBranch{}
		for _, item := range branch {
			if item.Key == "sops" {
				if bi == 0 {
					meta, _ = item.Value.(TreeBranch)
				}
				continue
			}
			kept = append(kept, item)
		}
		branches[bi] = kept
	}
	if meta == nil {
		res.Error = "no sops metadata"
		return
	}
	r := rules{
		unencryptedSuffix: str(meta, "unencrypted_suffix"),
		encryptedSuffix:   str(meta, "encrypted_suffix"),
		unencryptedRegex:  str(meta, "unencrypted_regex"),
		encryptedRegex:    str(meta, "encrypted_regex"),
	}
	for _, item := range meta {
		if item.Key == "mac_only_encrypted" && item.Value == true {
			r.macOnlyEncrypted = true
		}
	}
	if r.unencryptedSuffix == "" && r.encryptedSuffix == "" && r.unencryptedRegex == "" && r.encryptedRegex == "" {
		r.unencryptedSuffix = "_unencrypted"
	}
	lastModified, err := time.Parse(time.RFC3339, str(meta, "lastmodified"))
	if err != nil {
		res.Error = err.Error()
		return
	}
	w := &walker{key: key, rules: r}
	if r.macOnlyEncrypted {
		w.buf.Write([]byte{0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0xb, 0xb, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69})
	}
	for i, branch := range branches {
		nb, err := w.branch(branch, []string{})
		if err != nil {
			res.Error = err.Error()
			return
		}
		res.Documents = append(res.Documents, typed(nb))
		branches[i] = nb
	}
	sum := sha512.Sum512(w.buf.Bytes())
	res.Computed = fmt.Sprintf("%X", sum[:])
	stored, err := decrypt(str(meta, "mac"), key, lastModified.Format(time.RFC3339))
	if err != nil {
		res.Error = "Failed to decrypt original mac: " + err.Error()
		return
	}
	res.Stored, _ = stored.(string)
	res.MacOk = res.Stored == res.Computed
	return
}

func main() {
	indent, _ := strconv.Atoi(os.Args[1])
	in, err := os.ReadFile(os.Args[2])
	if err != nil {
		panic(err)
	}
	key, err := hex.DecodeString(os.Args[3])
	if err != nil {
		panic(err)
	}
	out, _ := json.Marshal(check(indent, in, key))
	os.Stdout.Write(out)
}
