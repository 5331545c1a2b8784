package scenario

import (
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// withParams reads a step's "with:" mapping as text values and, when the
// step's target declares its parameters (declared returns ok), refuses an
// unknown parameter, a value outside the allowed ones and a missing
// required one, naming the file, line and field. what names the target in
// messages ("enrollment path ade").
func (p *parser) withParams(m map[string]kv, field, what string, declared func() ([]Param, bool)) (map[string]string, error) {
	wfield := sibling(field, "with")
	specs, strict := declared()
	var out map[string]string
	var order []string
	var wm map[string]kv
	var withNode *yaml.Node
	if f, ok := m["with"]; ok {
		var err error
		if wm, order, err = p.mapping(f.value, wfield); err != nil {
			return nil, err
		}
		withNode = f.key
		out = map[string]string{}
		for _, k := range order {
			if out[k], err = p.str(wm[k].value, join(wfield, k)); err != nil {
				return nil, err
			}
		}
	}
	if !strict {
		return out, nil
	}
	names := make([]string, 0, len(specs))
	for _, s := range specs {
		names = append(names, s.Name)
	}
	for _, k := range order {
		i := slices.IndexFunc(specs, func(s Param) bool { return s.Name == k })
		if i < 0 {
			if len(names) == 0 {
				return nil, p.errf(wm[k].key, join(wfield, k), "%s takes no parameters", what)
			}
			return nil, p.errf(wm[k].key, join(wfield, k), "unknown parameter for %s (known: %s)", what, strings.Join(names, ", "))
		}
		if vs := specs[i].Values; len(vs) > 0 && !slices.Contains(vs, out[k]) {
			return nil, p.errf(deref(wm[k].value), join(wfield, k), "%q: %s takes %s", clip(out[k]), k, strings.Join(vs, ", "))
		}
	}
	for _, s := range specs {
		if !s.Required {
			continue
		}
		if _, ok := out[s.Name]; ok {
			continue
		}
		at := withNode
		if at == nil {
			at = m[field[strings.LastIndex(field, ".")+1:]].key
		}
		return nil, p.errf(at, join(wfield, s.Name), "missing: %s needs %s (%s)", what, s.Name, s.Doc)
	}
	return out, nil
}
