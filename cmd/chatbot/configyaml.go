package main

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// envRef matches ${VAR}; a bare $ is left alone, so prompts may hold prices.
var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// parseConfig decodes data, expanding ${VAR} in every value with lookup, rejecting
// unknown keys and naming the key of any bad value, then defaults and validates.
func parseConfig(data []byte, lookup func(string) (string, bool)) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg := &Config{}
	if len(root.Content) > 0 {
		expandEnv(&root, lookup)
		if err := decodeNode(root.Content[0], reflect.ValueOf(cfg).Elem(), ""); err != nil {
			return nil, err
		}
	}
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// expandEnv replaces ${VAR} in every scalar below n. An unset variable expands to
// nothing, so `token: ${TELEGRAM_BOT_TOKEN}` leaves a platform off until it is exported.
func expandEnv(n *yaml.Node, lookup func(string) (string, bool)) {
	switch n.Kind {
	case yaml.ScalarNode:
		if !envRef.MatchString(n.Value) {
			return
		}
		n.Value = envRef.ReplaceAllStringFunc(n.Value, func(ref string) string {
			v, _ := lookup(ref[2 : len(ref)-1])
			return v
		})
		if n.Style == 0 {
			n.Tag = "" // let the expanded text resolve to its own type (numbers, booleans)
		}
	default:
		for _, c := range n.Content {
			expandEnv(c, lookup)
		}
	}
}

// decodeNode decodes n into v, walking structs by their yaml tags so that an unknown
// key or a bad value is reported with its full dotted name.
func decodeNode(n *yaml.Node, v reflect.Value, path string) error {
	if v.Kind() != reflect.Struct || v.Type() == reflect.TypeFor[time.Time]() {
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			return nil
		}
		if err := n.Decode(v.Addr().Interface()); err != nil {
			return fmt.Errorf("config: %s: %s", path, yamlReason(err))
		}
		return nil
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("config: %s: must be a map of keys", or(path, "the file"))
	}
	fields := map[string]int{}
	t := v.Type()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		fields[name] = i
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key := n.Content[i].Value
		idx, ok := fields[key]
		if !ok {
			return fmt.Errorf("config: %s: unknown key (line %d)", join(path, key), n.Content[i].Line)
		}
		if err := decodeNode(n.Content[i+1], v.Field(idx), join(path, key)); err != nil {
			return err
		}
	}
	return nil
}

// yamlReason turns yaml.v3's type errors into a short reason that does not echo
// the value (it may have come from a secret in the environment).
func yamlReason(err error) string {
	var te *yaml.TypeError
	if !errors.As(err, &te) || len(te.Errors) == 0 {
		return err.Error()
	}
	msg := te.Errors[0]
	switch {
	case strings.HasSuffix(msg, "into int"), strings.HasSuffix(msg, "into int64"):
		return "must be a whole number"
	case strings.HasSuffix(msg, "into bool"):
		return "must be true or false"
	case strings.HasSuffix(msg, "into string"):
		return "must be a single value, not a list or a map"
	}
	return "has the wrong type"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// Duration is a time.Duration written as "30s", "2m" or "1h30m".
type Duration time.Duration

// UnmarshalYAML reads a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(strings.TrimSpace(n.Value))
	if err != nil {
		return fmt.Errorf("must be a duration such as 30s or 2m, got %q", n.Value)
	}
	*d = Duration(v)
	return nil
}

// IntList is a list of numeric ids, written as a YAML list or as "1, 2, 3" (handy
// from an environment variable).
type IntList []int64

// UnmarshalYAML reads a list or a comma-separated scalar.
func (l *IntList) UnmarshalYAML(n *yaml.Node) error {
	items, err := listItems(n)
	if err != nil {
		return err
	}
	out := make(IntList, 0, len(items))
	for _, s := range items {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("must be a list of numeric ids, got %q", s)
		}
		out = append(out, id)
	}
	*l = out
	return nil
}

// StringList is a list of ids, written as a YAML list or as "A, B, C".
type StringList []string

// UnmarshalYAML reads a list or a comma-separated scalar.
func (l *StringList) UnmarshalYAML(n *yaml.Node) error {
	items, err := listItems(n)
	*l = items
	return err
}

func listItems(n *yaml.Node) ([]string, error) {
	var raw []string
	switch n.Kind {
	case yaml.SequenceNode:
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("must be a list of ids")
			}
			raw = append(raw, c.Value)
		}
	case yaml.ScalarNode:
		raw = strings.Split(n.Value, ",")
	default:
		return nil, fmt.Errorf("must be a list of ids")
	}
	var items []string
	for _, s := range raw {
		if s = strings.TrimSpace(s); s != "" {
			items = append(items, s)
		}
	}
	return items, nil
}
