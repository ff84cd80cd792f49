package probe

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxTargetSize bounds the size of a target file.
const maxTargetSize = 1 << 20

// TargetError is a problem in a target file. Key is the dotted path of the offending key
// (such as "login.csrf.pattern"), empty when the problem is the whole file; Line is
// 1-based, 0 when unknown.
type TargetError struct {
	File string
	Line int
	Key  string
	Msg  string
}

// Error formats the problem as "file:line: key: message".
func (e *TargetError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ParseTarget reads a YAML target file. file names the file in errors; lookupEnv resolves
// ${NAME} references in values (pass os.LookupEnv; nil treats every variable as unset),
// and $$ stands for a literal $. It returns a validated Target with defaults filled in,
// or an error joining one [*TargetError] per problem found. It never panics, whatever
// data holds.
func ParseTarget(file string, data []byte, lookupEnv func(string) (string, bool)) (*Target, error) {
	if len(data) > maxTargetSize {
		return nil, &TargetError{File: file, Msg: fmt.Sprintf("file is larger than %d bytes", maxTargetSize)}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlError(file, &root, err)
	}
	if root.Kind == 0 || len(root.Content) == 0 {
		return nil, &TargetError{File: file, Msg: "file is empty"}
	}
	if doc := root.Content[0]; doc.Kind != yaml.MappingNode {
		return nil, &TargetError{File: file, Line: doc.Line, Msg: "must be a mapping of keys such as base_url and login"}
	}
	// Look for unknown keys before expansion, so that every one is reported.
	if errs := unknownKeys(file, root.Content[0], reflect.TypeFor[Target](), ""); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if lookupEnv == nil {
		lookupEnv = func(string) (string, bool) { return "", false }
	}
	if err := expandEnv(file, root.Content[0], "", lookupEnv); err != nil {
		return nil, err
	}
	var t Target
	if err := root.Content[0].Decode(&t); err != nil {
		return nil, yamlError(file, &root, err)
	}
	v := &validator{file: file, root: root.Content[0]}
	v.target(&t)
	if len(v.errs) > 0 {
		return nil, errors.Join(v.errs...)
	}
	return &t, nil
}

var (
	yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	envRef   = regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)
)

// unknownKeys returns an error for every key below n, a node to be decoded into a value
// of type t found at path, that t has no field for. It follows the Go type, not the
// document, so it ends even on documents whose aliases refer to themselves. yaml.v3's
// own strict mode stops at the first unknown key and cannot be combined with the
// scalar form of [Logout].
func unknownKeys(file string, n *yaml.Node, t reflect.Type, path string) []error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	var errs []error
	switch {
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for i, c := range n.Content {
			errs = append(errs, unknownKeys(file, c, t.Elem(), fmt.Sprintf("%s[%d]", path, i))...)
		}
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			ft, ok := fields[k.Value]
			if !ok {
				errs = append(errs, &TargetError{File: file, Line: k.Line, Key: join(path, k.Value),
					Msg: fmt.Sprintf("unknown key %q; known here: %s", k.Value, strings.Join(slices.Sorted(maps.Keys(fields)), ", "))})
				continue
			}
			errs = append(errs, unknownKeys(file, n.Content[i+1], ft, join(path, k.Value))...)
		}
	}
	return errs
}

// yamlFields maps the keys of a struct type, inline fields included, to their types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for f := range t.Fields() {
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		switch {
		case !f.IsExported() || name == "-":
		case opts == "inline":
			maps.Copy(out, yamlFields(f.Type))
		case name != "":
			out[name] = f.Type
		}
	}
	return out
}

// yamlError turns a yaml.v3 error into a TargetError naming the line and, where the
// line holds a key, the key.
func yamlError(file string, root *yaml.Node, err error) error {
	msg := err.Error()
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	e := &TargetError{File: file, Msg: msg}
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Msg = m[2]
		e.Msg = strings.ReplaceAll(e.Msg, "probe.", "")
		if len(root.Content) > 0 {
			e.Key = keyAtLine(root.Content[0], "", e.Line)
		}
	}
	return e
}

// keyAtLine returns the dotted path of the key or sequence item that starts on line.
func keyAtLine(n *yaml.Node, path string, line int) string {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := join(path, n.Content[i].Value)
			if n.Content[i].Line == line {
				if sub := keyAtLine(n.Content[i+1], p, line); sub != "" {
					return sub
				}
				return p
			}
			if sub := keyAtLine(n.Content[i+1], p, line); sub != "" {
				return sub
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			if sub := keyAtLine(c, p, line); sub != "" {
				return sub
			}
			if c.Line == line {
				return p
			}
		}
	}
	return ""
}

// lineOf returns the line of the key at the dotted path, or of its deepest ancestor
// present in the file.
func lineOf(n *yaml.Node, path string) int {
	line := 0
	for seg := range strings.SplitSeq(path, ".") {
		name, index, hasIndex := strings.Cut(seg, "[")
		if n.Kind != yaml.MappingNode {
			return line
		}
		found := false
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == name {
				line, n, found = n.Content[i].Line, n.Content[i+1], true
				break
			}
		}
		if !found {
			return line
		}
		if hasIndex {
			i, err := strconv.Atoi(strings.TrimSuffix(index, "]"))
			if err != nil || n.Kind != yaml.SequenceNode || i < 0 || i >= len(n.Content) {
				return line
			}
			n = n.Content[i]
			line = n.Line
		}
	}
	return line
}

// expandEnv replaces ${NAME} in every scalar value below n, in place.
func expandEnv(file string, n *yaml.Node, path string, lookup func(string) (string, bool)) error {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if err := expandEnv(file, n.Content[i+1], join(path, n.Content[i].Value), lookup); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if err := expandEnv(file, c, fmt.Sprintf("%s[%d]", path, i), lookup); err != nil {
				return err
			}
		}
	case yaml.ScalarNode:
		var missing string
		n.Value = envRef.ReplaceAllStringFunc(n.Value, func(ref string) string {
			if ref == "$$" {
				return "$"
			}
			name := ref[2 : len(ref)-1]
			v, ok := lookup(name)
			if !ok && missing == "" {
				missing = name
			}
			return v
		})
		if missing != "" {
			return &TargetError{File: file, Line: n.Line, Key: path,
				Msg: fmt.Sprintf("environment variable %s is not set", missing)}
		}
	}
	return nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
