package policy

import (
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// decoder fills a Config from a yaml.Node tree itself, rather than with
// yaml.v3's Decode, so that every error, unknown key and invalid value
// carries file:line:column and all of them are reported at once.
type decoder struct {
	file string
	errs []error
	// keys and values remember where each setting was written, by path
	// ("rules.create-index", "profiles[1].name"), for validation.
	keys   map[string]*yaml.Node
	values map[string]*yaml.Node
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func (d *decoder) errorf(n *yaml.Node, format string, args ...any) {
	line, col := 0, 0
	if n != nil {
		line, col = n.Line, n.Column
	}
	d.errs = append(d.errs, &PositionError{File: d.file, Line: line, Column: col, Msg: fmt.Sprintf(format, args...)})
}

// PositionError is one problem in a rules file, at a position.
type PositionError struct {
	File         string
	Line, Column int
	Msg          string
}

func (e *PositionError) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Msg)
}

func (d *decoder) decodeDocument(data []byte, cfg *Config) {
	d.keys, d.values = map[string]*yaml.Node{}, map[string]*yaml.Node{}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		d.values = nil // nothing to validate
		// The YAML parser knows only the line of a syntax error.
		if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
			line, _ := strconv.Atoi(m[1])
			d.errs = append(d.errs, &PositionError{File: d.file, Line: line, Column: 1, Msg: "invalid YAML: " + m[2]})
			return
		}
		d.errs = append(d.errs, &PositionError{File: d.file, Line: 1, Column: 1, Msg: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")})
		return
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return // an empty file: the defaults
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return
	}
	d.decode(root, reflect.ValueOf(cfg).Elem(), "")
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	d.values[path] = n
	if v.CanAddr() && v.Addr().Type().Implements(unmarshalerType) {
		if err := v.Addr().Interface().(yaml.Unmarshaler).UnmarshalYAML(n); err != nil {
			d.errorf(n, "%s: %v", path, err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Pointer:
		if n.Tag == "!!null" {
			v.SetZero()
			return
		}
		p := reflect.New(v.Type().Elem())
		d.decode(n, p.Elem(), path)
		v.Set(p)
	case reflect.Slice:
		if n.Tag == "!!null" {
			v.SetZero()
			return
		}
		if n.Kind != yaml.SequenceNode {
			d.errorf(n, "%s: expected a list, got a %s", path, kindName(n))
			return
		}
		if len(n.Content) == 0 {
			v.SetZero() // [] and no key at all mean the same
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.Map:
		d.decodeMap(n, v, path)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.errorf(n, "%s: expected a string, got a %s", path, kindName(n))
			return
		}
		if n.Tag != "!!null" {
			v.SetString(n.Value)
		}
	case reflect.Int, reflect.Int64, reflect.Int32:
		i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 10, 64)
		if n.Kind != yaml.ScalarNode || err != nil || v.OverflowInt(i) {
			d.errorf(n, "%s: expected an integer, got %q", path, n.Value)
			return
		}
		v.SetInt(i)
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.Decode(&b) != nil {
			d.errorf(n, "%s: expected true or false, got %q", path, n.Value)
			return
		}
		v.SetBool(b)
	default:
		d.errorf(n, "%s: cannot decode into %s", path, v.Type())
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Tag == "!!null" {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%s: expected a mapping, got a %s", nonEmpty(path), kindName(n))
		return
	}
	fields := map[string]int{}
	var names []string
	for i := 0; i < v.NumField(); i++ {
		tag, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ",")
		if tag != "" && tag != "-" {
			fields[tag] = i
			names = append(names, tag)
		}
	}
	sort.Strings(names)
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		idx, ok := fields[k.Value]
		switch {
		case !ok:
			d.errorf(k, "unknown key %q in %s (valid keys: %s)", k.Value, nonEmpty(path), strings.Join(names, ", "))
			continue
		case seen[k.Value]:
			d.errorf(k, "%s is set twice", join(path, k.Value))
			continue
		}
		seen[k.Value] = true
		d.keys[join(path, k.Value)] = k
		d.decode(val, v.Field(idx), join(path, k.Value))
	}
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Tag == "!!null" {
		v.Set(reflect.MakeMap(v.Type()))
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%s: expected a mapping, got a %s", path, kindName(n))
		return
	}
	m := reflect.MakeMap(v.Type())
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		p := join(path, k.Value)
		if _, dup := d.keys[p]; dup {
			d.errorf(k, "%s is set twice", p)
			continue
		}
		d.keys[p] = k
		e := reflect.New(v.Type().Elem()).Elem()
		d.decode(val, e, p)
		m.SetMapIndex(reflect.ValueOf(k.Value), e)
	}
	v.Set(m)
}

func nonEmpty(path string) string {
	if path == "" {
		return "the top level"
	}
	return path
}
