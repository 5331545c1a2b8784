package enroll

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"gopkg.in/yaml.v3"
)

// Config is an organisation as a QA team keeps it next to its tests: the
// directory's groups and users, the enrollment type profiles and the
// settings. YAML or JSON (JSON is YAML).
type Config struct {
	Settings     *Settings     `yaml:"settings"`
	Groups       []Group       `yaml:"groups"`
	Users        []User        `yaml:"users"`
	TypeProfiles []TypeProfile `yaml:"enrollment_type_profiles"`
}

// ParseConfig decodes a config file; errors name the file and line.
func ParseConfig(name string, data []byte) (*Config, []int, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var c Config
	if err := dec.Decode(&c); err != nil {
		return nil, nil, fmt.Errorf("%s: %w (known keys: settings, groups, users, enrollment_type_profiles)", name, err)
	}
	return &c, itemLines(&root), nil
}

// itemLines returns the line of each list item, in the order Apply
// applies them: groups, users, type profiles.
func itemLines(root *yaml.Node) []int {
	var lines []int
	if len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return nil
	}
	m := root.Content[0]
	for _, key := range []string{"groups", "users", "enrollment_type_profiles"} {
		for i := 0; i+1 < len(m.Content); i += 2 {
			if m.Content[i].Value == key {
				for _, it := range m.Content[i+1].Content {
					lines = append(lines, it.Line)
				}
			}
		}
	}
	return lines
}

// LoadConfig parses and applies a config file: every group, user and type
// profile is validated as the API validates it, and the first refusal is
// reported with the file, line and the item at fault.
func (s *Service) LoadConfig(ctx context.Context, name string, data []byte) error {
	c, lines, err := ParseConfig(name, data)
	if err != nil {
		return err
	}
	at := func(i int) string {
		if i < len(lines) {
			return fmt.Sprintf("%s:%d", name, lines[i])
		}
		return name
	}
	if c.Settings != nil {
		if err := s.PutSettings(ctx, *c.Settings); err != nil {
			return fmt.Errorf("%s: settings: %w", name, err)
		}
	}
	n := 0
	for i, g := range c.Groups {
		if err := s.PutGroup(ctx, g); err != nil {
			return fmt.Errorf("%s: groups[%d]: %w", at(n), i, err)
		}
		n++
	}
	for i, u := range c.Users {
		if err := s.PutUser(ctx, u); err != nil {
			return fmt.Errorf("%s: users[%d]: %w", at(n), i, err)
		}
		n++
	}
	for i, p := range c.TypeProfiles {
		if err := s.PutTypeProfile(ctx, p); err != nil {
			return fmt.Errorf("%s: enrollment_type_profiles[%d]: %w", at(n), i, err)
		}
		n++
	}
	return nil
}

// ErrorOf returns the enrollment rule error in err's chain, if any.
func ErrorOf(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
