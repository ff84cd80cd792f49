package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/problem"
)

// apiDoc is openapi.json decoded, with the little of OpenAPI and JSON
// Schema the tests need to read it.
type apiDoc struct {
	root map[string]any
}

func loadDoc(t *testing.T) *apiDoc {
	t.Helper()
	var root map[string]any
	if err := json.Unmarshal(OpenAPI(), &root); err != nil {
		t.Fatalf("openapi.json is not JSON: %v", err)
	}
	return &apiDoc{root: root}
}

// pointer resolves a local JSON pointer such as "#/components/schemas/Session".
func (d *apiDoc) pointer(ref string) (any, error) {
	rest, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, fmt.Errorf("$ref %q is not local", ref)
	}
	var v any = d.root
	for _, tok := range strings.Split(rest, "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("$ref %q: %q is not in an object", ref, tok)
		}
		if v, ok = m[tok]; !ok {
			return nil, fmt.Errorf("$ref %q does not resolve: no %q", ref, tok)
		}
	}
	return v, nil
}

// deref follows the $ref of an OpenAPI reference object (a response,
// parameter or header) to the object itself.
func (d *apiDoc) deref(v any) (map[string]any, error) {
	for range 10 {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%v is not an object", v)
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return m, nil
		}
		var err error
		if v, err = d.pointer(ref); err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("$ref chain too long at %v", v)
}

func (d *apiDoc) mustDeref(t *testing.T, v any) map[string]any {
	t.Helper()
	m, err := d.deref(v)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// docOp is one operation of the document.
type docOp struct {
	method, path string
	item, op     map[string]any
}

func (o docOp) key() string { return o.method + " " + o.path }

func (d *apiDoc) operations() []docOp {
	var ops []docOp
	paths, _ := d.root["paths"].(map[string]any)
	for path, item := range paths {
		item, _ := item.(map[string]any)
		for _, m := range httpMethods {
			if op, ok := item[m].(map[string]any); ok {
				ops = append(ops, docOp{method: strings.ToUpper(m), path: path, item: item, op: op})
			}
		}
	}
	slices.SortFunc(ops, func(a, b docOp) int { return strings.Compare(a.key(), b.key()) })
	return ops
}

// eventDataKey holds, in a text/event-stream media type, the schema of
// each event's data: OpenAPI 3.1 has no place for it (3.2's itemSchema
// describes the whole event).
const eventDataKey = "x-lapse-event-data"

// servedElsewhere reports whether an operation is mounted outside
// package httpapi (GET /metrics, by cmd/lapse).
func (o docOp) servedElsewhere() bool { return o.op["x-lapse-served-by"] != nil }

// parameters returns the path-level and operation-level parameters.
func (d *apiDoc) parameters(t *testing.T, o docOp) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, src := range []map[string]any{o.item, o.op} {
		list, _ := src["parameters"].([]any)
		for _, p := range list {
			out = append(out, d.mustDeref(t, p))
		}
	}
	return out
}

// Keywords of JSON Schema that validate does check, and annotations it
// may ignore. A schema with any other keyword fails
// TestOpenAPIDocumentIsOpenAPI31, so that nothing in the document goes
// unchecked.
var (
	checkedKeywords = []string{"$ref", "allOf", "type", "enum", "const", "required", "properties",
		"additionalProperties", "items", "minimum", "maximum", "minLength", "maxLength", "minItems",
		"maxItems", "pattern", "format"}
	annotationKeywords = []string{"description", "title", "default", "examples", "deprecated", "readOnly", "writeOnly"}
	checkedFormats     = []string{"date-time", "uri"}
	jsonTypes          = []string{"object", "array", "string", "integer", "number", "boolean", "null"}
)

// lint reports what validate could not check in schema.
func (d *apiDoc) lint(schema any, at string) []string {
	s, ok := schema.(map[string]any)
	if !ok {
		return []string{at + ": a schema must be an object"}
	}
	var errs []string
	for k, v := range s {
		switch {
		case slices.Contains(annotationKeywords, k):
		case !slices.Contains(checkedKeywords, k):
			errs = append(errs, fmt.Sprintf("%s: keyword %q is not checked by the tests' validator", at, k))
		case k == "$ref":
			// The target is linted where it is declared.
			if _, err := d.pointer(fmt.Sprint(v)); err != nil {
				errs = append(errs, at+": "+err.Error())
			} else if !strings.HasPrefix(fmt.Sprint(v), "#/components/schemas/") {
				errs = append(errs, fmt.Sprintf("%s: schema $ref %v is not to #/components/schemas", at, v))
			}
		case k == "allOf":
			list, _ := v.([]any)
			for i, sub := range list {
				errs = append(errs, d.lint(sub, fmt.Sprintf("%s/allOf/%d", at, i))...)
			}
		case k == "properties":
			props, _ := v.(map[string]any)
			for name, sub := range props {
				errs = append(errs, d.lint(sub, at+"/properties/"+name)...)
			}
		case k == "items":
			errs = append(errs, d.lint(v, at+"/items")...)
		case k == "additionalProperties":
			if b, ok := v.(bool); ok && b {
				errs = append(errs, at+": additionalProperties true says nothing; leave it out or make it false")
			} else if !ok {
				errs = append(errs, d.lint(v, at+"/additionalProperties")...)
			}
		case k == "type":
			for _, typ := range typeList(v) {
				if !slices.Contains(jsonTypes, typ) {
					errs = append(errs, fmt.Sprintf("%s: unknown type %q", at, typ))
				}
			}
		case k == "format":
			if !slices.Contains(checkedFormats, fmt.Sprint(v)) {
				errs = append(errs, fmt.Sprintf("%s: format %q is not checked by the tests' validator", at, v))
			}
		case k == "pattern":
			if _, err := regexp.Compile(fmt.Sprint(v)); err != nil {
				errs = append(errs, fmt.Sprintf("%s: pattern: %v", at, err))
			}
		case k == "enum":
			if list, ok := v.([]any); !ok || len(list) == 0 {
				errs = append(errs, at+": enum must be a non-empty array")
			}
		}
	}
	return errs
}

func typeList(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, x := range v {
			out = append(out, fmt.Sprint(x))
		}
		return out
	}
	return nil
}

// validate checks the JSON value v against schema and returns what is
// wrong, each prefixed with where.
func (d *apiDoc) validate(schema any, v any, at string) []string {
	s, ok := schema.(map[string]any)
	if !ok {
		return []string{at + ": bad schema"}
	}
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, at+": "+fmt.Sprintf(format, args...)) }
	if ref, ok := s["$ref"].(string); ok {
		target, err := d.pointer(ref)
		if err != nil {
			return []string{at + ": " + err.Error()}
		}
		errs = append(errs, d.validate(target, v, at)...)
	}
	if list, ok := s["allOf"].([]any); ok {
		for _, sub := range list {
			errs = append(errs, d.validate(sub, v, at)...)
		}
	}
	if types, ok := s["type"]; ok {
		if !slices.ContainsFunc(typeList(types), func(t string) bool { return hasType(v, t) }) {
			bad("%s is not of type %v", short(v), types)
			return errs
		}
	}
	if enum, ok := s["enum"].([]any); ok && !slices.ContainsFunc(enum, func(e any) bool { return reflect.DeepEqual(e, v) }) {
		bad("%s is not one of %v", short(v), enum)
	}
	if c, ok := s["const"]; ok && !reflect.DeepEqual(c, v) {
		bad("%s is not %v", short(v), c)
	}
	switch v := v.(type) {
	case map[string]any:
		req, _ := s["required"].([]any)
		for _, name := range req {
			if _, ok := v[name.(string)]; !ok {
				bad("member %q is required", name)
			}
		}
		props, _ := s["properties"].(map[string]any)
		for name, val := range v {
			if sub, ok := props[name]; ok {
				errs = append(errs, d.validate(sub, val, at+"."+name)...)
				continue
			}
			switch ap := s["additionalProperties"].(type) {
			case bool:
				if !ap {
					bad("member %q is not in the schema", name)
				}
			case map[string]any:
				errs = append(errs, d.validate(ap, val, at+"."+name)...)
			}
		}
	case []any:
		if items, ok := s["items"]; ok {
			for i, item := range v {
				errs = append(errs, d.validate(items, item, fmt.Sprintf("%s[%d]", at, i))...)
			}
		}
		if n, ok := s["minItems"].(float64); ok && float64(len(v)) < n {
			bad("%d items, fewer than %v", len(v), n)
		}
		if n, ok := s["maxItems"].(float64); ok && float64(len(v)) > n {
			bad("%d items, more than %v", len(v), n)
		}
	case string:
		n := float64(len([]rune(v)))
		if m, ok := s["minLength"].(float64); ok && n < m {
			bad("%q is shorter than %v", v, m)
		}
		if m, ok := s["maxLength"].(float64); ok && n > m {
			bad("%s is longer than %v", short(v), m)
		}
		if p, ok := s["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(v) {
			bad("%q does not match %s", v, p)
		}
		switch s["format"] {
		case "date-time":
			if _, err := time.Parse(time.RFC3339Nano, v); err != nil {
				bad("%q is not an RFC 3339 date-time", v)
			}
		case "uri":
			if u, err := url.Parse(v); err != nil || u.Scheme == "" {
				bad("%q is not an absolute URI", v)
			}
		}
	case float64:
		if m, ok := s["minimum"].(float64); ok && v < m {
			bad("%v is less than %v", v, m)
		}
		if m, ok := s["maximum"].(float64); ok && v > m {
			bad("%v is more than %v", v, m)
		}
	}
	return errs
}

func hasType(v any, typ string) bool {
	switch v := v.(type) {
	case nil:
		return typ == "null"
	case bool:
		return typ == "boolean"
	case float64:
		return typ == "number" || typ == "integer" && v == math.Trunc(v) && !math.IsInf(v, 0)
	case string:
		return typ == "string"
	case []any:
		return typ == "array"
	case map[string]any:
		return typ == "object"
	}
	return false
}

func short(v any) string {
	b, _ := json.Marshal(v)
	if len(b) > 80 {
		return string(b[:77]) + "..."
	}
	return string(b)
}

func TestOpenAPIDocumentIsOpenAPI31(t *testing.T) {
	d := loadDoc(t)
	if v, _ := d.root["openapi"].(string); !regexp.MustCompile(`^3\.1\.\d+$`).MatchString(v) {
		t.Fatalf("openapi = %q, want 3.1.x", v)
	}
	info, _ := d.root["info"].(map[string]any)
	if info["title"] == nil || info["version"] == nil {
		t.Errorf("info = %v, want title and version", info)
	}
	t.Run("every_schema_uses_only_checked_keywords", func(t *testing.T) {
		var errs []string
		var walk func(v any, at string)
		walk = func(v any, at string) {
			switch v := v.(type) {
			case map[string]any:
				for k, child := range v {
					switch {
					case k == "schema" || k == eventDataKey:
						errs = append(errs, d.lint(child, at+"/"+k)...)
					case at == "#/components" && k == "schemas":
						for name, s := range child.(map[string]any) {
							errs = append(errs, d.lint(s, "#/components/schemas/"+name)...)
						}
					default:
						walk(child, at+"/"+k)
					}
				}
			case []any:
				for i, child := range v {
					walk(child, fmt.Sprintf("%s/%d", at, i))
				}
			}
		}
		walk(d.root, "#")
		for _, e := range errs {
			t.Error(e)
		}
	})
	t.Run("every_ref_resolves", func(t *testing.T) {
		for _, ref := range regexp.MustCompile(`"\$ref":\s*"([^"]*)"`).FindAllStringSubmatch(string(OpenAPI()), -1) {
			if _, err := d.pointer(ref[1]); err != nil {
				t.Error(err)
			}
		}
	})
	t.Run("every_operation_has_an_id_and_responses", func(t *testing.T) {
		ids := map[string]string{}
		for _, o := range d.operations() {
			id, _ := o.op["operationId"].(string)
			if id == "" || ids[id] != "" {
				t.Errorf("%s: operationId %q is missing or also used by %s", o.key(), id, ids[id])
			}
			ids[id] = o.key()
			if res, _ := o.op["responses"].(map[string]any); len(res) == 0 {
				t.Errorf("%s: no responses", o.key())
			}
		}
	})
	t.Run("errors_are_problem_json_and_successes_are_json", func(t *testing.T) {
		for _, o := range d.operations() {
			for status, res := range o.op["responses"].(map[string]any) {
				content, _ := d.mustDeref(t, res)["content"].(map[string]any)
				for mt := range content {
					isErr := status >= "400"
					if isErr != (mt == "application/problem+json") {
						t.Errorf("%s %s: media type %s", o.key(), status, mt)
					}
				}
			}
		}
	})
}

func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	d := loadDoc(t)
	ops := map[string]docOp{}
	for _, o := range d.operations() {
		ops[o.key()] = o
	}
	inTable := map[string]route{}
	for _, rt := range routes {
		inTable[rt.method+" "+rt.path] = rt
	}
	t.Run("every_route_is_documented", func(t *testing.T) {
		for key := range inTable {
			if _, ok := ops[key]; !ok {
				t.Errorf("route %s is not in openapi.json", key)
			}
		}
	})
	t.Run("every_documented_operation_is_a_route", func(t *testing.T) {
		for key, o := range ops {
			_, ok := inTable[key]
			switch {
			case o.servedElsewhere() && ok:
				t.Errorf("%s is marked x-lapse-served-by %v but is in the routes table", key, o.op["x-lapse-served-by"])
			case o.servedElsewhere() && key != "GET /metrics":
				t.Errorf("%s is marked served outside httpapi; only GET /metrics is", key)
			case !o.servedElsewhere() && !ok:
				t.Errorf("openapi.json documents %s, which the routes table does not serve", key)
			}
		}
		if _, ok := ops["GET /metrics"]; !ok {
			t.Error("GET /metrics, which lapse serve mounts, is not documented")
		}
	})
	t.Run("security_matches_the_routes_table", func(t *testing.T) {
		schemes, _ := d.root["components"].(map[string]any)["securitySchemes"].(map[string]any)
		for _, rt := range routes {
			if rt.session && !rt.public() {
				t.Errorf("%s %s: a session route must not also need the API key", rt.method, rt.path)
			}
		}
		for key, o := range ops {
			sec, ok := o.op["security"]
			if !ok {
				sec = d.root["security"]
			}
			// Each requirement object is one alternative; each must name
			// one scheme, so that no route needs two credentials at once.
			var names []string
			for _, req := range sec.([]any) {
				req := req.(map[string]any)
				if len(req) != 1 {
					t.Errorf("%s: security requirement %v names %d schemes, want 1", key, req, len(req))
				}
				for name := range req {
					names = append(names, name)
				}
			}
			slices.Sort(names)
			rt := inTable[key]
			var want []string
			switch {
			case key == "GET /metrics": // mounted by lapse serve behind the API key
				want = []string{"apiKey"}
			case o.servedElsewhere():
			case rt.session:
				want = []string{"sessionCookie", "sessionToken"}
			case !rt.public():
				want = []string{"apiKey"}
			}
			if !slices.Equal(names, want) {
				t.Errorf("%s: security %v, want %v", key, names, want)
			}
			// x-lapse-scope is the scope the routes table requires.
			wantScope := string(rt.scope)
			if key == "GET /metrics" {
				wantScope = string(lapse.ScopeMetricsRead)
			}
			if got, _ := o.op["x-lapse-scope"].(string); got != wantScope {
				t.Errorf("%s: x-lapse-scope %q, want %q", key, got, wantScope)
			}
			if !strings.HasPrefix(o.path, "/v1/") && o.path != "/metrics" && len(names) > 0 {
				t.Errorf("%s: only /v1 routes need credentials", key)
			}
		}
		for name, want := range map[string]map[string]any{
			"apiKey":        {"type": "http", "scheme": "bearer"},
			"sessionToken":  {"type": "http", "scheme": "bearer"},
			"sessionCookie": {"type": "apiKey", "in": "cookie", "name": defaultSessionCookie},
		} {
			s, _ := schemes[name].(map[string]any)
			for k, v := range want {
				if s[k] != v {
					t.Errorf("security scheme %s: %s = %v, want %v", name, k, s[k], v)
				}
			}
		}
	})
	t.Run("path_parameters_are_declared", func(t *testing.T) {
		for key, o := range ops {
			var want, got []string
			for _, m := range regexp.MustCompile(`\{([^}]+)\}`).FindAllStringSubmatch(o.path, -1) {
				want = append(want, m[1])
			}
			for _, p := range d.parameters(t, o) {
				if p["in"] == "path" {
					got = append(got, p["name"].(string))
					if p["required"] != true {
						t.Errorf("%s: path parameter %v is not required", key, p["name"])
					}
				}
			}
			slices.Sort(want)
			slices.Sort(got)
			if !slices.Equal(want, got) {
				t.Errorf("%s: path parameters %v, want %v", key, got, want)
			}
		}
	})
	// The session routes act on the session alone, but for the passkey
	// ones that carry a name or a browser's credential.
	sessionBodies := []string{"POST /v1/session/passkeys", "POST /v1/session/passkeys/{id}/rename",
		"POST /v1/session/passkeys/{id}/remove", "POST /v1/session/step-up/passkey"}
	t.Run("post_routes_but_the_session_ones_take_a_json_body", func(t *testing.T) {
		for key, o := range ops {
			rb, hasBody := o.op["requestBody"]
			if (o.method == "POST" && (!inTable[key].session || slices.Contains(sessionBodies, key))) != hasBody {
				t.Errorf("%s: requestBody present = %v", key, hasBody)
				continue
			}
			if hasBody {
				rb := d.mustDeref(t, rb)
				if rb["required"] != true || rb["content"].(map[string]any)["application/json"] == nil {
					t.Errorf("%s: requestBody %v, want a required application/json body", key, rb)
				}
			}
		}
	})
}

// jsonMembers returns the JSON member names of a struct type and which
// are always written.
func jsonMembers(typ reflect.Type) (names, always []string) {
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		names = append(names, name)
		if !strings.Contains(opts, "omitempty") && !strings.Contains(opts, "omitzero") {
			always = append(always, name)
		}
	}
	slices.Sort(names)
	slices.Sort(always)
	return names, always
}

func schemaMembers(s map[string]any) (names, required []string) {
	for name := range s["properties"].(map[string]any) {
		names = append(names, name)
	}
	for _, r := range s["required"].([]any) {
		required = append(required, r.(string))
	}
	slices.Sort(names)
	slices.Sort(required)
	return names, required
}

func TestOpenAPISchemasMatchGoTypes(t *testing.T) {
	d := loadDoc(t)
	requests := map[string]any{
		"/v1/sessions":        createRequest{},
		"/v1/sessions/verify": verifyRequest{},
		"/v1/sessions/revoke": revokeRequest{},

		"/v1/sessions/step-up":                        stepUpRequest{},
		"/v1/sessions/step-up/totp":                   totpStepUpRequest{},
		"/v1/subjects/{subject}/factors/totp":         enrolRequest{},
		"/v1/subjects/{subject}/factors/totp/confirm": confirmRequest{},
		"/v1/subjects/{subject}/factors/totp/remove":  removeRequest{},
		"/v1/subjects/{subject}/credential-changed":   credentialChangedRequest{},

		"/v1/session/passkeys":             registerPasskeyRequest{},
		"/v1/session/passkeys/{id}/rename": renamePasskeyRequest{},
		"/v1/session/passkeys/{id}/remove": removePasskeyRequest{},
		"/v1/session/step-up/passkey":      passkeyStepUpRequest{},

		"/v1/keys": createKeyRequest{},
	}
	for _, o := range d.operations() {
		if o.op["requestBody"] == nil {
			continue
		}
		t.Run("request/"+o.path, func(t *testing.T) {
			goType, ok := requests[o.path]
			if !ok {
				t.Fatalf("no Go request type known for %s", o.key())
			}
			rb := d.mustDeref(t, o.op["requestBody"])
			schema := d.mustDeref(t, rb["content"].(map[string]any)["application/json"].(map[string]any)["schema"])
			if schema["additionalProperties"] != false || schema["type"] != "object" {
				t.Errorf("schema is not a closed object: type %v, additionalProperties %v", schema["type"], schema["additionalProperties"])
			}
			names, _ := jsonMembers(reflect.TypeOf(goType))
			got, _ := schemaMembers(schema)
			if !slices.Equal(got, names) {
				t.Errorf("schema members %v, Go members %v", got, names)
			}
		})
	}
	responses := map[string]any{
		"Session": Session{}, "Problem": problem.Problem{}, "CreateResponse": tokenResponse{},
		"SessionResponse": sessionResponse{}, "SessionList": sessionsResponse{}, "RevokedCount": revokedResponse{},
		"CurrentSession": currentResponse{}, "SessionEvent": streamEvent{}, "AuditPage": auditResponse{}, "Event": lapse.Event{},
		"FactorList": factorsResponse{}, "TOTPEnrolment": enrolResponse{}, "RecoveryCodes": recoveryCodesResponse{},
		"Passkey": Passkey{}, "PasskeyList": passkeysResponse{}, "PasskeyRegistered": registeredResponse{},
		"PasskeyAnswer": passkeyResponse{}, "EndedCount": endedResponse{}, "PasskeySteppedUp": steppedUpResponse{},
		"Key": Key{}, "KeyList": keysResponse{}, "CreatedKey": createKeyResponse{},
	}
	for name, goType := range responses {
		t.Run("response/"+name, func(t *testing.T) {
			s := d.mustDeref(t, map[string]any{"$ref": "#/components/schemas/" + name})
			if s["additionalProperties"] != false {
				t.Errorf("additionalProperties = %v, want false so that an undocumented member fails the tests", s["additionalProperties"])
			}
			names, always := jsonMembers(reflect.TypeOf(goType))
			gotNames, gotRequired := schemaMembers(s)
			if !slices.Equal(gotNames, names) {
				t.Errorf("schema members %v, Go members %v", gotNames, names)
			}
			if !slices.Equal(gotRequired, always) {
				t.Errorf("schema requires %v, Go always writes %v", gotRequired, always)
			}
		})
	}
}

func TestOpenAPICodesMatchStatusTable(t *testing.T) {
	d := loadDoc(t)
	var documented []string
	for _, c := range d.mustDeref(t, map[string]any{"$ref": "#/components/schemas/Code"})["enum"].([]any) {
		documented = append(documented, c.(string))
	}
	var table []string
	for _, c := range problem.Codes() {
		// Only the Go middleware and the forward-auth gateway answer these,
		// not the JSON API.
		if !slices.Contains([]lapse.Code{problem.CodeCrossOrigin, problem.CodeCSRFToken, problem.CodeTierRequired, problem.CodeUntrustedProxy, problem.CodeNoOriginalRequest}, c) {
			table = append(table, string(c))
		}
	}
	slices.Sort(documented)
	slices.Sort(table)
	if !slices.Equal(documented, table) {
		t.Errorf("Problem.code enum %v, status table %v", documented, table)
	}
	// Each problem response narrows the code; each code it allows must
	// map to its status (session_not_found is also 404 by id).
	check := func(where, status string, res any) {
		res = d.mustDeref(t, res)
		content, _ := res.(map[string]any)["content"].(map[string]any)
		pj, ok := content["application/problem+json"].(map[string]any)
		if !ok {
			return
		}
		var codes []any
		for _, sub := range pj["schema"].(map[string]any)["allOf"].([]any) {
			props, _ := sub.(map[string]any)["properties"].(map[string]any)
			if code, ok := props["code"].(map[string]any); ok && code["enum"] != nil {
				codes = code["enum"].([]any)
			}
		}
		if len(codes) == 0 {
			t.Errorf("%s %s: the problem response does not say which codes it has", where, status)
		}
		for _, c := range codes {
			code := lapse.Code(c.(string))
			want, _ := strconv.Atoi(status)
			if problem.Status(code) != want && !(code == lapse.CodeSessionNotFound && want == http.StatusNotFound) {
				t.Errorf("%s %s: code %s is answered with %d", where, status, code, problem.Status(code))
			}
		}
	}
	for _, o := range d.operations() {
		for status, res := range o.op["responses"].(map[string]any) {
			check(o.key(), status, res)
		}
	}
	for status, res := range d.root["x-lapse-unrouted-responses"].(map[string]any) {
		check("unrouted", status, res)
	}
}

func TestOpenAPIDocumentIsServed(t *testing.T) {
	h := newHarness(t)
	r := h.call("GET", "/openapi.json", nil)
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/json" || !bytes.Equal(r.body, OpenAPI()) {
		t.Errorf("got %d %s with %d bytes, want 200 application/json with the embedded document", r.status, r.header.Get("Content-Type"), len(r.body))
	}
}

// liveCheck checks answers of a real server against the document and
// records which documented statuses were seen.
type liveCheck struct {
	t      *testing.T
	d      *apiDoc
	ops    map[string]docOp
	router *http.ServeMux // the routes table's patterns, to name the operation of a request
	seen   map[string]map[string]bool
}

func newLiveCheck(t *testing.T, d *apiDoc) *liveCheck {
	lc := &liveCheck{t: t, d: d, ops: map[string]docOp{}, router: http.NewServeMux(), seen: map[string]map[string]bool{}}
	for _, o := range d.operations() {
		lc.ops[o.key()] = o
	}
	for _, rt := range routes {
		lc.router.Handle(rt.method+" "+rt.path, http.NotFoundHandler())
	}
	return lc
}

// check validates an answer against what the document says of the
// request's operation: the status is documented for it, the body and
// headers match, and, for a success, so do the request body and query.
func (lc *liveCheck) check(req *http.Request, sent []byte, r *response) {
	t := lc.t
	t.Helper()
	_, pattern := lc.router.Handler(req)
	status := strconv.Itoa(r.status)
	var res any
	var op docOp
	if pattern == "" {
		res = lc.d.root["x-lapse-unrouted-responses"].(map[string]any)[status]
		pattern = "unrouted"
	} else {
		var ok bool
		if op, ok = lc.ops[pattern]; !ok {
			t.Errorf("%s is served but not documented", pattern)
			return
		}
		res = op.op["responses"].(map[string]any)[status]
	}
	where := fmt.Sprintf("%s %s (%s) answered %d", req.Method, req.URL.RequestURI(), pattern, r.status)
	if res == nil {
		t.Errorf("%s: status not documented: %s", where, r)
		return
	}
	if lc.seen[pattern] == nil {
		lc.seen[pattern] = map[string]bool{}
	}
	lc.seen[pattern][status] = true
	resObj := lc.d.mustDeref(t, res)

	content, _ := resObj["content"].(map[string]any)
	if len(content) == 0 {
		if len(r.body) != 0 {
			t.Errorf("%s: documented without a body but has %q", where, r.body)
		}
	} else {
		mt, _, _ := mime.ParseMediaType(r.header.Get("Content-Type"))
		media, ok := content[mt].(map[string]any)
		switch {
		case !ok:
			t.Errorf("%s: Content-Type %q is not documented", where, r.header.Get("Content-Type"))
		case mt == "text/event-stream":
			lc.checkEvents(where, media, r.body)
		default:
			var body any
			dec := json.NewDecoder(bytes.NewReader(r.body))
			if err := dec.Decode(&body); err != nil || dec.Decode(new(any)) != io.EOF {
				t.Errorf("%s: body is not one JSON value: %q", where, r.body)
			} else {
				for _, e := range lc.d.validate(media["schema"], body, "body") {
					t.Errorf("%s: %s", where, e)
				}
			}
		}
	}
	headers, _ := resObj["headers"].(map[string]any)
	for name, hdr := range headers {
		hdr := lc.d.mustDeref(t, hdr)
		got, present := r.header[http.CanonicalHeaderKey(name)]
		if !present {
			if hdr["required"] == true {
				t.Errorf("%s: required header %s is missing", where, name)
			}
			continue
		}
		if schema, ok := hdr["schema"]; ok {
			for _, e := range lc.d.validate(schema, got[0], "header "+name) {
				t.Errorf("%s: %s", where, e)
			}
		}
	}

	if r.status >= 300 || pattern == "unrouted" {
		return
	}
	// A request the server accepted must be one the document allows.
	if rb, ok := op.op["requestBody"]; ok {
		schema := lc.d.mustDeref(t, rb)["content"].(map[string]any)["application/json"].(map[string]any)["schema"]
		var body any
		if err := json.Unmarshal(sent, &body); err != nil {
			t.Errorf("%s: accepted a body that is not JSON: %q", where, sent)
		}
		for _, e := range lc.d.validate(schema, body, "request") {
			t.Errorf("%s: the server accepted a request the document refuses: %s", where, e)
		}
	}
	params := map[string]map[string]any{}
	for _, p := range lc.d.parameters(t, op) {
		if p["in"] == "query" {
			params[p["name"].(string)] = p
		}
	}
	for name, vals := range req.URL.Query() {
		p, ok := params[name]
		if !ok {
			t.Errorf("%s: query parameter %q is not documented", where, name)
			continue
		}
		for _, e := range lc.d.validate(p["schema"], queryValue(p["schema"], vals[0]), "query "+name) {
			t.Errorf("%s: %s", where, e)
		}
	}
}

// checkEvents validates the events of a stream (send keeps the first)
// against the schema of their data: each is one JSON value whose type
// is the event's name.
func (lc *liveCheck) checkEvents(where string, media map[string]any, body []byte) {
	t := lc.t
	t.Helper()
	schema, ok := media[eventDataKey]
	if !ok {
		t.Errorf("%s: the event stream does not document its data (%s)", where, eventDataKey)
		return
	}
	events, err := parseEvents(body)
	if err != nil || len(events) == 0 {
		t.Errorf("%s: got events %v (%v) from %q, want at least one", where, events, err, body)
		return
	}
	for _, ev := range events {
		var data any
		if err := json.Unmarshal([]byte(ev.data), &data); err != nil {
			t.Errorf("%s: event %s: data %q is not JSON", where, ev.name, ev.data)
			continue
		}
		for _, e := range lc.d.validate(schema, data, "event "+ev.name) {
			t.Errorf("%s: %s", where, e)
		}
		if typ, _ := data.(map[string]any)["type"].(string); typ != ev.name {
			t.Errorf("%s: event %s has data of type %q", where, ev.name, typ)
		}
	}
}

// queryValue reads a query parameter's raw value as its schema's type,
// as OpenAPI's form style serializes it; a value that does not parse is
// left a string, for the validator to refuse.
func queryValue(schema any, raw string) any {
	s, _ := schema.(map[string]any)
	types := typeList(s["type"])
	switch {
	case slices.Contains(types, "integer") || slices.Contains(types, "number"):
		if f, err := strconv.ParseFloat(raw, 64); err == nil {
			return f
		}
	case slices.Contains(types, "boolean"):
		if b, err := strconv.ParseBool(raw); err == nil {
			return b
		}
	}
	return raw
}

// liveCase is one request to send, after setup on the harness.
type liveCase struct {
	name       string
	wantStatus int
	// request prepares the harness and returns the request to send.
	request func(h *harness) *http.Request
}

func TestOpenAPIDescribesEveryAnswer(t *testing.T) {
	d := loadDoc(t)
	lc := newLiveCheck(t, d)
	h := newHarness(t, harnessOptions{feed: true})
	// bare has neither an event feed nor an audit log: its requests are
	// sent like h's.
	bare := newHarness(t, harnessOptions{noAuditLog: true})
	// tight throttles a client address after one wrong key, and holds one
	// event stream per session.
	tight := newHarness(t, harnessOptions{feed: true, throttleBurst: 1, streamsPerSession: 1})

	req := func(method, path string, body any) func(h *harness) *http.Request {
		return func(h *harness) *http.Request { return h.newRequest(method, path, body) }
	}
	withSession := func(create map[string]any, then func(h *harness, tok, id string) *http.Request) func(h *harness) *http.Request {
		return func(h *harness) *http.Request {
			tok, id := h.create(create)
			return then(h, tok, id)
		}
	}
	alice := map[string]any{"subject": "alice"}
	cases := []liveCase{
		{"create_minimal", 201, req("POST", "/v1/sessions", alice)},
		{"create_full", 201, req("POST", "/v1/sessions", map[string]any{"subject": "alice", "tenant": "acme", "tier": "sensitive", "aal": 3,
			"amr": []string{"pwd", "hwk"}, "ip": "192.0.2.1", "user_agent": "Mozilla/5.0", "metadata": map[string]any{"device": "laptop"}})},
		{"create_malformed", 400, req("POST", "/v1/sessions", `{"subject"`)},
		{"create_unknown_field", 400, req("POST", "/v1/sessions", `{"subject":"a","x":1}`)},
		{"create_too_large", 400, req("POST", "/v1/sessions", `{"subject":"`+big+`"}`)},
		{"create_unknown_tier", 400, req("POST", "/v1/sessions", `{"subject":"a","tier":"gold"}`)},
		{"create_unknown_tenant", 400, req("POST", "/v1/sessions", `{"subject":"a","tenant":"globex"}`)},
		{"create_invalid", 400, req("POST", "/v1/sessions", `{"subject":""}`)},
		{"create_conflict", 409, func(h *harness) *http.Request {
			h.store.failWith(errConflict)
			return h.newRequest("POST", "/v1/sessions", alice)
		}},

		{"verify_valid", 200, withSession(alice, func(h *harness, tok, _ string) *http.Request {
			return h.newRequest("POST", "/v1/sessions/verify", map[string]any{"token": tok, "touch": true, "require_aal": 1, "max_auth_age": "1h"})
		})},
		{"verify_bad_duration", 400, withSession(alice, func(h *harness, tok, _ string) *http.Request {
			return h.newRequest("POST", "/v1/sessions/verify", map[string]any{"token": tok, "max_auth_age": "soon"})
		})},
		{"verify_no_token", 400, req("POST", "/v1/sessions/verify", `{}`)},
		{"verify_unknown", 401, req("POST", "/v1/sessions/verify", map[string]any{"token": string(lapse.NewToken())})},
		{"verify_idle", 401, withSession(alice, func(h *harness, tok, _ string) *http.Request {
			h.clock.Advance(31 * time.Minute)
			return h.newRequest("POST", "/v1/sessions/verify", map[string]any{"token": tok})
		})},
		{"verify_revoked", 401, withSession(alice, func(h *harness, tok, id string) *http.Request {
			h.call("DELETE", "/v1/sessions/"+id, nil)
			return h.newRequest("POST", "/v1/sessions/verify", map[string]any{"token": tok})
		})},
		{"verify_step_up", 403, withSession(map[string]any{"subject": "alice", "tier": "sensitive"}, func(h *harness, tok, _ string) *http.Request {
			return h.newRequest("POST", "/v1/sessions/verify", map[string]any{"token": tok})
		})},
		{"verify_step_up_age", 403, withSession(alice, func(h *harness, tok, _ string) *http.Request {
			h.clock.Advance(time.Minute)
			return h.newRequest("POST", "/v1/sessions/verify", map[string]any{"token": tok, "max_auth_age": "30s"})
		})},

		{"revoke", 204, withSession(alice, func(h *harness, tok, _ string) *http.Request {
			return h.newRequest("POST", "/v1/sessions/revoke", map[string]any{"token": tok})
		})},
		{"revoke_no_token", 400, req("POST", "/v1/sessions/revoke", `{"token":""}`)},

		{"get_active", 200, withSession(alice, func(h *harness, _, id string) *http.Request {
			return h.newRequest("GET", "/v1/sessions/"+id, nil)
		})},
		{"get_revoked", 200, withSession(alice, func(h *harness, _, id string) *http.Request {
			h.call("DELETE", "/v1/sessions/"+id, nil)
			return h.newRequest("GET", "/v1/sessions/"+id, nil)
		})},
		{"get_unknown", 404, req("GET", "/v1/sessions/ses_unknown", nil)},
		{"delete", 204, withSession(alice, func(h *harness, _, id string) *http.Request {
			return h.newRequest("DELETE", "/v1/sessions/"+id, nil)
		})},
		{"delete_unknown", 404, req("DELETE", "/v1/sessions/ses_unknown", nil)},

		{"list_active", 200, req("GET", "/v1/subjects/alice/sessions", nil)},
		{"list_all_in_tenant", 200, req("GET", "/v1/subjects/alice/sessions?status=all&tenant=acme", nil)},
		{"list_all", 200, req("GET", "/v1/subjects/alice/sessions?status=all", nil)},
		{"list_bad_status", 400, req("GET", "/v1/subjects/alice/sessions?status=expired", nil)},
		{"end_subject", 200, withSession(alice, func(h *harness, _, id string) *http.Request {
			return h.newRequest("DELETE", "/v1/subjects/alice/sessions?except="+id+"&reason=password_change&tenant=", nil)
		})},
		{"end_subject_bad_reason", 400, req("DELETE", "/v1/subjects/alice/sessions?reason=logout", nil)},

		{"audit_every_filter", 200, req("GET", "/v1/audit?subject=alice&tenant=acme&session=ses_0000000000000000000000"+
			"&type=session.created,session.revoked&since=2026-03-01T09:00:00Z&until=2026-03-02T10:00:00.5%2B01:00&after=0&limit=1000", nil)},
		{"audit_a_full_page", 200, req("GET", "/v1/audit?limit=1", nil)},
		{"audit_bad_since", 400, req("GET", "/v1/audit?since=yesterday", nil)},
		{"audit_unknown_type", 400, req("GET", "/v1/audit?type=revoked", nil)},
		{"audit_without_audit_log", 404, func(*harness) *http.Request { return bare.newRequest("GET", "/v1/audit", nil) }},

		{"current_by_bearer", 200, withSession(alice, func(h *harness, tok, _ string) *http.Request {
			return h.asSession("GET", "/v1/session", tok, viaBearer)
		})},
		{"current_by_cookie", 200, withSession(alice, func(h *harness, tok, _ string) *http.Request {
			return h.asSession("GET", "/v1/session", tok, viaCookie)
		})},
		{"current_idle", 401, withSession(alice, func(h *harness, tok, _ string) *http.Request {
			h.clock.Advance(31 * time.Minute)
			return h.asSession("GET", "/v1/session", tok, viaBearer)
		})},
		{"current_revoked", 401, withSession(alice, func(h *harness, tok, id string) *http.Request {
			h.call("DELETE", "/v1/sessions/"+id, nil)
			return h.asSession("GET", "/v1/session", tok, viaCookie)
		})},
		{"extend_by_bearer", 200, withSession(alice, func(h *harness, tok, _ string) *http.Request {
			h.clock.Advance(time.Minute)
			return h.asSession("POST", "/v1/session/extend", tok, viaBearer)
		})},
		{"extend_by_cookie_with_csrf_header", 200, withSession(alice, func(h *harness, tok, _ string) *http.Request {
			h.clock.Advance(time.Minute)
			return h.asSession("POST", "/v1/session/extend", tok, viaCookieCSRF)
		})},
		{"extend_by_cookie_without_csrf_header", 403, withSession(alice, func(h *harness, tok, _ string) *http.Request {
			return h.asSession("POST", "/v1/session/extend", tok, viaCookie)
		})},
		{"extend_revoked", 401, withSession(alice, func(h *harness, tok, _ string) *http.Request {
			h.call("POST", "/v1/sessions/revoke", map[string]any{"token": tok})
			return h.asSession("POST", "/v1/session/extend", tok, viaBearer)
		})},
		{"activity_by_bearer", 200, withSession(alice, func(h *harness, tok, _ string) *http.Request {
			h.clock.Advance(time.Minute)
			return h.asSession("POST", "/v1/session/activity", tok, viaBearer)
		})},
		{"activity_within_the_touch_interval", 200, withSession(map[string]any{"subject": "alice", "tier": "sensitive", "aal": 1}, func(h *harness, tok, _ string) *http.Request {
			return h.asSession("POST", "/v1/session/activity", tok, viaCookieCSRF)
		})},
		{"activity_by_cookie_without_csrf_header", 403, withSession(alice, func(h *harness, tok, _ string) *http.Request {
			return h.asSession("POST", "/v1/session/activity", tok, viaCookie)
		})},
		{"activity_absolute", 401, withSession(alice, func(h *harness, tok, _ string) *http.Request {
			for range 25 {
				h.clock.Advance(29 * time.Minute)
				h.verify(tok, nil)
			}
			return h.asSession("POST", "/v1/session/activity", tok, viaBearer)
		})},
		{"activity_revoked_by_logout", 401, withSession(alice, func(h *harness, tok, _ string) *http.Request {
			h.send(h.asSession("POST", "/v1/session/logout", tok, viaBearer))
			return h.asSession("POST", "/v1/session/activity", tok, viaBearer)
		})},
		{"logout_by_bearer", 204, withSession(alice, func(h *harness, tok, _ string) *http.Request {
			return h.asSession("POST", "/v1/session/logout", tok, viaBearer)
		})},
		{"logout_by_cookie_with_csrf_header", 204, withSession(alice, func(h *harness, tok, _ string) *http.Request {
			return h.asSession("POST", "/v1/session/logout", tok, viaCookieCSRF)
		})},
		{"logout_by_cookie_without_csrf_header", 403, withSession(alice, func(h *harness, tok, _ string) *http.Request {
			return h.asSession("POST", "/v1/session/logout", tok, viaCookie)
		})},
		{"events_by_bearer", 200, withSession(alice, func(h *harness, tok, _ string) *http.Request {
			return h.asSession("GET", "/v1/session/events", tok, viaBearer)
		})},
		{"events_by_cookie", 200, withSession(alice, func(h *harness, tok, _ string) *http.Request {
			return h.asSession("GET", "/v1/session/events", tok, viaCookie)
		})},
		{"events_idle", 401, withSession(alice, func(h *harness, tok, _ string) *http.Request {
			h.clock.Advance(31 * time.Minute)
			return h.asSession("GET", "/v1/session/events", tok, viaBearer)
		})},
		{"events_without_feed", 404, func(*harness) *http.Request {
			tok, _ := bare.create(alice)
			return bare.asSession("GET", "/v1/session/events", tok, viaBearer)
		}},
		{"events_past_the_cap", 429, func(*harness) *http.Request {
			tok, _ := tight.create(alice)
			tight.openStream(t, tight.asSession("GET", "/v1/session/events", tok, viaBearer)) // held to the test's end
			return tight.asSession("GET", "/v1/session/events", tok, viaBearer)
		}},
		{"factors_reserved_subject", 400, req("GET", "/v1/subjects/lapse:console-admin/factors", nil)},
		{"audit_key_rejected", 200, func(h *harness) *http.Request {
			wrong := h.newRequest("GET", "/v1/audit", nil)
			wrong.Header.Set("Authorization", "Bearer "+lapse.NewAPIKey())
			h.send(wrong)
			return h.newRequest("GET", "/v1/audit?type=security.key_rejected", nil)
		}},

		{"verify_step_up_lists_factors", 403, func(h *harness) *http.Request {
			tok, _, _ := h.enrolled("fay")
			return h.newRequest("POST", "/v1/sessions/verify", map[string]any{"token": tok, "require_aal": 2})
		}},

		{"step_up_app_asserted", 200, withSession(alice, func(h *harness, tok, _ string) *http.Request {
			return h.newRequest("POST", "/v1/sessions/step-up", map[string]any{"token": tok, "aal": 2, "amr": []string{"pwd", "hwk"}})
		})},
		{"step_up_without_aal", 400, withSession(alice, func(h *harness, tok, _ string) *http.Request {
			return h.newRequest("POST", "/v1/sessions/step-up", map[string]any{"token": tok})
		})},
		{"step_up_unknown_token", 401, req("POST", "/v1/sessions/step-up", map[string]any{"token": string(lapse.NewToken()), "aal": 2})},
		{"step_up_lost_race", 409, withSession(alice, func(h *harness, tok, _ string) *http.Request {
			h.store.failWith(errConflict)
			return h.newRequest("POST", "/v1/sessions/step-up", map[string]any{"token": tok, "aal": 2})
		})},

		{"step_up_totp", 200, func(h *harness) *http.Request {
			tok, secret, _ := h.enrolled("gus")
			h.clock.Advance(30 * time.Second)
			return h.newRequest("POST", "/v1/sessions/step-up/totp", map[string]any{"token": tok, "code": codeAt(h.t, secret, h.clock.Now())})
		}},
		{"step_up_recovery_code", 200, func(h *harness) *http.Request {
			tok, _, codes := h.enrolled("hal")
			return h.newRequest("POST", "/v1/sessions/step-up/totp", map[string]any{"token": tok, "code": codes[0]})
		}},
		{"step_up_totp_bad_code", 400, withSession(alice, func(h *harness, tok, _ string) *http.Request {
			return h.newRequest("POST", "/v1/sessions/step-up/totp", map[string]any{"token": tok, "code": "12"})
		})},
		{"step_up_totp_unknown_token", 401, req("POST", "/v1/sessions/step-up/totp", map[string]any{"token": string(lapse.NewToken()), "code": "123456"})},
		{"step_up_totp_wrong_code", 403, func(h *harness) *http.Request {
			tok, secret, _ := h.enrolled("ida")
			return h.newRequest("POST", "/v1/sessions/step-up/totp", map[string]any{"token": tok, "code": wrongCode(h.t, secret, h.clock.Now())})
		}},
		{"step_up_totp_replay", 403, func(h *harness) *http.Request {
			tok, secret, _ := h.enrolled("jan")
			return h.newRequest("POST", "/v1/sessions/step-up/totp", map[string]any{"token": tok, "code": codeAt(h.t, secret, h.clock.Now())})
		}},
		{"step_up_totp_not_enrolled", 404, withSession(alice, func(h *harness, tok, _ string) *http.Request {
			return h.newRequest("POST", "/v1/sessions/step-up/totp", map[string]any{"token": tok, "code": "123456"})
		})},
		{"step_up_totp_without_factors", 404, func(*harness) *http.Request {
			tok, _ := bare.create(alice)
			return bare.newRequest("POST", "/v1/sessions/step-up/totp", map[string]any{"token": tok, "code": "123456"})
		}},
		{"step_up_totp_lost_race", 409, func(h *harness) *http.Request {
			tok, secret, _ := h.enrolled("kim")
			h.clock.Advance(30 * time.Second)
			h.store.failWith(errConflict)
			return h.newRequest("POST", "/v1/sessions/step-up/totp", map[string]any{"token": tok, "code": codeAt(h.t, secret, h.clock.Now())})
		}},
		{"step_up_totp_too_many_attempts", 429, func(h *harness) *http.Request {
			tok, secret, _ := h.enrolled("lea")
			for range 5 {
				h.stepUpTOTP(tok, wrongCode(h.t, secret, h.clock.Now()))
			}
			return h.newRequest("POST", "/v1/sessions/step-up/totp", map[string]any{"token": tok, "code": wrongCode(h.t, secret, h.clock.Now())})
		}},

		{"factors_enrolled", 200, func(h *harness) *http.Request {
			h.enrolled("max")
			return h.newRequest("GET", "/v1/subjects/max/factors", nil)
		}},
		{"factors_pending", 200, withSession(map[string]any{"subject": "ned"}, func(h *harness, tok, _ string) *http.Request {
			h.enrol("ned", tok)
			return h.newRequest("GET", "/v1/subjects/ned/factors", nil)
		})},
		{"factors_none", 200, req("GET", "/v1/subjects/nobody/factors", nil)},
		{"factors_without_factors", 404, func(*harness) *http.Request { return bare.newRequest("GET", "/v1/subjects/alice/factors", nil) }},

		{"enrol", 201, withSession(map[string]any{"subject": "ona"}, func(h *harness, tok, _ string) *http.Request {
			return h.newRequest("POST", "/v1/subjects/ona/factors/totp", map[string]any{"token": tok, "account": "ona@example.com", "issuer": "Acme"})
		})},
		{"enrol_bad_issuer", 400, withSession(alice, func(h *harness, tok, _ string) *http.Request {
			return h.newRequest("POST", "/v1/subjects/alice/factors/totp", map[string]any{"token": tok, "issuer": "a:b"})
		})},
		{"enrol_unknown_token", 401, req("POST", "/v1/subjects/alice/factors/totp", map[string]any{"token": string(lapse.NewToken())})},
		{"enrol_old_authentication", 403, withSession(alice, func(h *harness, tok, _ string) *http.Request {
			h.clock.Advance(15 * time.Minute)
			return h.newRequest("POST", "/v1/subjects/alice/factors/totp", map[string]any{"token": tok})
		})},
		{"enrol_without_factors", 404, func(*harness) *http.Request {
			tok, _ := bare.create(alice)
			return bare.newRequest("POST", "/v1/subjects/alice/factors/totp", map[string]any{"token": tok})
		}},
		{"enrol_already_enrolled", 409, func(h *harness) *http.Request {
			tok, _, _ := h.enrolled("pia")
			return h.newRequest("POST", "/v1/subjects/pia/factors/totp", map[string]any{"token": tok})
		}},

		{"confirm", 200, withSession(map[string]any{"subject": "quinn"}, func(h *harness, tok, _ string) *http.Request {
			secret := h.enrol("quinn", tok)
			return h.newRequest("POST", "/v1/subjects/quinn/factors/totp/confirm", map[string]any{"token": tok, "code": codeAt(h.t, secret, h.clock.Now())})
		})},
		{"confirm_not_digits", 400, withSession(alice, func(h *harness, tok, _ string) *http.Request {
			return h.newRequest("POST", "/v1/subjects/alice/factors/totp/confirm", map[string]any{"token": tok, "code": "abcdef"})
		})},
		{"confirm_unknown_token", 401, req("POST", "/v1/subjects/alice/factors/totp/confirm", map[string]any{"token": string(lapse.NewToken()), "code": "123456"})},
		{"confirm_wrong_code", 403, withSession(map[string]any{"subject": "rex"}, func(h *harness, tok, _ string) *http.Request {
			secret := h.enrol("rex", tok)
			return h.newRequest("POST", "/v1/subjects/rex/factors/totp/confirm", map[string]any{"token": tok, "code": wrongCode(h.t, secret, h.clock.Now())})
		})},
		{"confirm_nothing_to_confirm", 404, withSession(alice, func(h *harness, tok, _ string) *http.Request {
			return h.newRequest("POST", "/v1/subjects/alice/factors/totp/confirm", map[string]any{"token": tok, "code": "123456"})
		})},
		{"confirm_already_confirmed", 409, func(h *harness) *http.Request {
			tok, secret, _ := h.enrolled("sid")
			return h.newRequest("POST", "/v1/subjects/sid/factors/totp/confirm", map[string]any{"token": tok, "code": codeAt(h.t, secret, h.clock.Now())})
		}},
		{"confirm_too_many_attempts", 429, withSession(map[string]any{"subject": "ted"}, func(h *harness, tok, _ string) *http.Request {
			secret := h.enrol("ted", tok)
			for range 5 {
				h.call("POST", "/v1/subjects/ted/factors/totp/confirm", map[string]any{"token": tok, "code": wrongCode(h.t, secret, h.clock.Now())})
			}
			return h.newRequest("POST", "/v1/subjects/ted/factors/totp/confirm", map[string]any{"token": tok, "code": codeAt(h.t, secret, h.clock.Now())})
		})},

		{"remove", 204, func(h *harness) *http.Request {
			tok, secret, _ := h.enrolled("ula")
			h.clock.Advance(30 * time.Second)
			tok = newToken(h.t, h.stepUpTOTP(tok, codeAt(h.t, secret, h.clock.Now())))
			return h.newRequest("POST", "/v1/subjects/ula/factors/totp/remove", map[string]any{"token": tok})
		}},
		{"remove_another_subjects_token", 400, withSession(map[string]any{"subject": "bob", "aal": 2}, func(h *harness, tok, _ string) *http.Request {
			return h.newRequest("POST", "/v1/subjects/alice/factors/totp/remove", map[string]any{"token": tok})
		})},
		{"remove_unknown_token", 401, req("POST", "/v1/subjects/alice/factors/totp/remove", map[string]any{"token": string(lapse.NewToken())})},
		{"remove_without_step_up", 403, func(h *harness) *http.Request {
			tok, _, _ := h.enrolled("val")
			return h.newRequest("POST", "/v1/subjects/val/factors/totp/remove", map[string]any{"token": tok})
		}},
		{"remove_nothing", 404, withSession(map[string]any{"subject": "wes", "aal": 2}, func(h *harness, tok, _ string) *http.Request {
			return h.newRequest("POST", "/v1/subjects/wes/factors/totp/remove", map[string]any{"token": tok})
		})},

		{"credential_changed_keep_token", 200, withSession(alice, func(h *harness, tok, _ string) *http.Request {
			h.create(alice)
			return h.newRequest("POST", "/v1/subjects/alice/credential-changed", map[string]any{"keep": tok, "tenant": ""})
		})},
		{"credential_changed_keep_id", 200, withSession(alice, func(h *harness, _, id string) *http.Request {
			return h.newRequest("POST", "/v1/subjects/alice/credential-changed", map[string]any{"keep": id})
		})},
		{"credential_changed_keep_other_subject", 400, withSession(map[string]any{"subject": "bob"}, func(h *harness, tok, _ string) *http.Request {
			return h.newRequest("POST", "/v1/subjects/alice/credential-changed", map[string]any{"keep": tok})
		})},

		{"healthz", 200, req("GET", "/healthz", nil)},
		{"readyz", 200, req("GET", "/readyz", nil)},
		{"readyz_store_down", 503, func(h *harness) *http.Request {
			h.store.failWith(errUnavailable)
			return h.newRequest("GET", "/readyz", nil)
		}},
		{"openapi", 200, req("GET", "/openapi.json", nil)},

		{"keys_list", 200, req("GET", "/v1/keys", nil)},
		{"keys_create", 201, req("POST", "/v1/keys", map[string]any{"name": "app", "scopes": []string{"sessions:verify"}, "tenant": "acme", "expires_in": "24h"})},
		{"keys_create_invalid", 400, req("POST", "/v1/keys", map[string]any{"name": "app", "scopes": []string{"keys:admin"}, "tenant": "acme"})},
		{"keys_get", 200, func(h *harness) *http.Request {
			_, k := h.apiKey(lapse.ScopeAuditRead)
			return h.newRequest("GET", "/v1/keys/"+k.ID, nil)
		}},
		{"keys_get_unknown", 404, req("GET", "/v1/keys/nothing", nil)},
		{"keys_revoke", 200, func(h *harness) *http.Request {
			_, k := h.apiKey(lapse.ScopeAuditRead)
			return h.newRequest("DELETE", "/v1/keys/"+k.ID, nil)
		}},
		{"keys_revoke_unknown", 404, req("DELETE", "/v1/keys/nothing", nil)},

		{"unknown_route", 404, req("GET", "/v1/nothing", nil)},
		{"wrong_method", 405, req("PUT", "/v1/sessions/verify", `{}`)},
	}
	cases = append(cases, passkeyLiveCases(bare)...) // passkey_test.go
	// Every /v1 route: without its credential, and with the store failing.
	for _, rt := range routes {
		if rt.public() && !rt.session {
			continue
		}
		var body any
		switch rt.path {
		case "/v1/sessions":
			body = alice
		case "/v1/sessions/verify", "/v1/sessions/revoke", "/v1/subjects/{subject}/factors/totp", "/v1/subjects/{subject}/factors/totp/remove":
			body = map[string]any{"token": string(lapse.NewToken())} // not cached: the store is asked
		case "/v1/sessions/step-up":
			body = map[string]any{"token": string(lapse.NewToken()), "aal": 2}
		case "/v1/sessions/step-up/totp", "/v1/subjects/{subject}/factors/totp/confirm":
			body = map[string]any{"token": string(lapse.NewToken()), "code": "123456"}
		case "/v1/subjects/{subject}/credential-changed":
			body = map[string]any{"keep": string(lapse.NewToken())}
		case "/v1/keys":
			if rt.method == "POST" {
				body = map[string]any{"name": "app", "scopes": []string{"audit:read"}}
			}
		}
		path := pathOf(rt.path)
		// A session route is sent a token never seen, so that the store
		// is asked.
		newRequest := func(h *harness) *http.Request {
			if rt.session {
				return h.asSession(rt.method, path, string(lapse.NewToken()), viaBearer)
			}
			return h.newRequest(rt.method, path, body)
		}
		cases = append(cases,
			liveCase{rt.method + "_" + rt.path + "_without_credential", 401, func(h *harness) *http.Request {
				r := newRequest(h)
				r.Header.Del("Authorization")
				return r
			}},
			liveCase{rt.method + "_" + rt.path + "_store_unavailable", 503, func(h *harness) *http.Request {
				h.store.failWith(errUnavailable)
				return newRequest(h)
			}},
			liveCase{rt.method + "_" + rt.path + "_internal_error", 500, func(h *harness) *http.Request {
				h.store.failWith(errUncoded)
				return newRequest(h)
			}},
		)
		if !rt.public() {
			// A valid key with every scope but the route's.
			cases = append(cases, liveCase{rt.method + "_" + rt.path + "_insufficient_scope", 403, func(h *harness) *http.Request {
				key, _ := h.apiKey(otherScopes(rt.scope)...)
				r := newRequest(h)
				r.Header.Set("Authorization", "Bearer "+key)
				return r
			}})
			if body != nil {
				cases = append(cases, liveCase{rt.method + "_" + rt.path + "_text_plain", 415, func(h *harness) *http.Request {
					r := newRequest(h)
					r.Header.Set("Content-Type", "text/plain")
					return r
				}})
			}
			// A wrong key spends tight's budget for this address; the
			// right key is then refused unseen.
			cases = append(cases, liveCase{rt.method + "_" + rt.path + "_throttled", 429, func(*harness) *http.Request {
				wrong := newRequest(tight)
				wrong.Header.Set("Authorization", "Bearer "+lapse.NewAPIKey())
				tight.send(wrong)
				return newRequest(tight)
			}})
		}
	}

	for _, c := range cases {
		req := c.request(h)
		var sent []byte
		if req.GetBody != nil {
			rc, _ := req.GetBody()
			sent, _ = io.ReadAll(rc)
		}
		r := h.send(req)
		h.store.failWith(nil)
		if r.status != c.wantStatus {
			t.Errorf("%s: got %s, want %d", c.name, r, c.wantStatus)
		}
		lc.check(req, sent, r)
	}

	t.Run("every_documented_status_was_produced", func(t *testing.T) {
		for key, o := range lc.ops {
			if o.servedElsewhere() {
				continue // GET /metrics is served by cmd/lapse
			}
			for status := range o.op["responses"].(map[string]any) {
				if !lc.seen[key][status] {
					t.Errorf("%s: documented status %s was never produced", key, status)
				}
			}
		}
		for status := range d.root["x-lapse-unrouted-responses"].(map[string]any) {
			if !lc.seen["unrouted"][status] {
				t.Errorf("unrouted: documented status %s was never produced", status)
			}
		}
	})
}
