package probe

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// lookupJSON returns the value at a dotted path such as "data.items.0.id" in a JSON
// document, and whether it exists.
func lookupJSON(doc []byte, path string) (any, bool) {
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		return nil, false
	}
	for seg := range strings.SplitSeq(path, ".") {
		switch node := v.(type) {
		case map[string]any:
			next, ok := node[seg]
			if !ok {
				return nil, false
			}
			v = next
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(node) {
				return nil, false
			}
			v = node[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// jsonString returns the non-empty string at path in a JSON document.
func jsonString(doc []byte, path string) (string, error) {
	v, ok := lookupJSON(doc, path)
	if !ok {
		return "", fmt.Errorf("no value at %s in the answer", path)
	}
	s, ok := v.(string)
	if !ok || s == "" {
		return "", fmt.Errorf("the value at %s is not a non-empty string", path)
	}
	return s, nil
}
