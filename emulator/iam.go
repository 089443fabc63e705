// IAM-lite: the subset of IAM policy documents the emulator evaluates
// (Effect, Action and Resource, with * and ? wildcards and, in Resource,
// the policy variables the credentials carry), and the checks
// that turn a refusal into AccessDeniedException.

package emulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxPolicySize bounds an identity policy ([Config.Policy]). AWS's own
// quotas are smaller (6,144 characters for a managed policy); this only
// keeps a runaway file out.
const maxPolicySize = 64 << 10

// maxSessionPolicyChars is STS's limit on AssumeRole's Policy parameter.
const maxSessionPolicyChars = 2048

// policy is a parsed policy document.
type policy struct {
	statements []statement
}

type statement struct {
	deny      bool
	actions   []string // lower-cased patterns
	resources []string // patterns, case-sensitive
	// vars: some resource holds a policy variable (${…}) to substitute
	// (Version 2012-10-17; under 2008-10-17 ${ is literal text).
	vars bool
}

// decision is what one policy says about a request.
type decision int

const (
	implicitDeny decision = iota // no statement matches
	allowed
	explicitDeny
)

// decide evaluates p for action on resource: an explicit Deny wins over
// any Allow; with neither, the request is implicitly denied.
func (p *policy) decide(action, resource string) decision {
	return p.decideWith(action, resource, nil)
}

// decideWith is decide with the values of the policy variables the
// credentials carry (keys lower-cased, e.g. credentials-iot:thingname).
func (p *policy) decideWith(action, resource string, vars map[string]string) decision {
	action = strings.ToLower(action)
	d := implicitDeny
	for i := range p.statements {
		s := &p.statements[i]
		if !matchAny(s.actions, action) {
			continue
		}
		if s.vars && !matchSubstituted(s.resources, resource, vars) || !s.vars && !matchAny(s.resources, resource) {
			continue
		}
		if s.deny {
			return explicitDeny
		}
		d = allowed
	}
	return d
}

// matchSubstituted is matchAny after substituting policy variables; a
// pattern with a variable the credentials do not carry matches nothing,
// as in IAM.
func matchSubstituted(patterns []string, s string, vars map[string]string) bool {
	for _, p := range patterns {
		if q, ok := substitute(p, vars); ok && wildcardMatch(q, s) {
			return true
		}
	}
	return false
}

// substitute replaces each ${name} of pattern with its value (names are
// case-insensitive), and ${$} with $; ok is false if a variable has no
// value, or one with * or ?. The parser has checked the syntax.
func substitute(pattern string, vars map[string]string) (string, bool) {
	var b strings.Builder
	for {
		i := strings.Index(pattern, "${")
		if i < 0 {
			b.WriteString(pattern)
			return b.String(), true
		}
		j := strings.IndexByte(pattern[i:], '}')
		if j < 0 {
			return "", false
		}
		name := pattern[i+2 : i+j]
		v, ok := vars[strings.ToLower(name)]
		if name == "$" {
			v, ok = "$", true
		}
		// A value holding a wildcard would match more than itself; no
		// value the emulator issues has one, so refusing it costs nothing.
		if !ok || v == "" || strings.ContainsAny(v, "*?") {
			return "", false
		}
		b.WriteString(pattern[:i])
		b.WriteString(v)
		pattern = pattern[i+j+1:]
	}
}

// checkVariables returns the rule the policy variables of a resource
// pattern break, or "".
func checkVariables(r string) string {
	for rest := r; ; {
		i := strings.Index(rest, "${")
		if i < 0 {
			return ""
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return "a policy variable ${ is not closed by }"
		}
		name := rest[i+2 : i+j]
		switch {
		case name == "*" || name == "?":
			return "${*} and ${?} (a literal * or ?) are not evaluated by the emulator; write the resource without them"
		case name == "$":
		case strings.Contains(name, ","):
			return "policy variables with a default value (${name, 'default'}) are not evaluated by the emulator"
		case !policyVarRE.MatchString(name):
			return "a policy variable must be ${SERVICE:NAME}, e.g. ${credentials-iot:ThingName} or ${aws:userid}"
		}
		rest = rest[i+j+1:]
	}
}

var policyVarRE = regexp.MustCompile(`^[A-Za-z0-9-]+:[A-Za-z0-9_-]+$`)

func matchAny(patterns []string, s string) bool {
	for _, p := range patterns {
		if wildcardMatch(p, s) {
			return true
		}
	}
	return false
}

// wildcardMatch reports whether s matches pattern, in which * stands for
// any run of characters (none included) and ? for exactly one character;
// every other character stands for itself. It runs in O(len(pattern) *
// len(s)) at worst, without recursion.
func wildcardMatch(pattern, s string) bool {
	p, i := 0, 0
	starP, starI := -1, 0 // the last * seen, and where in s it began
	for i < len(s) {
		if p < len(pattern) {
			pc, pw := utf8.DecodeRuneInString(pattern[p:])
			sc, sw := utf8.DecodeRuneInString(s[i:])
			switch {
			case pc == '*':
				starP, starI = p, i
				p += pw
				continue
			case pc == '?' || pc == sc:
				p += pw
				i += sw
				continue
			}
		}
		if starP < 0 {
			return false
		}
		// Let the last * take one more character, and try again after it.
		_, w := utf8.DecodeRuneInString(s[starI:])
		starI += w
		i = starI
		p = starP + 1
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// policyError is what is wrong with a policy document: the element, as a
// path such as Statement[1].Action[0], and the rule it breaks.
type policyError struct {
	path string
	rule string
}

func (e *policyError) Error() string {
	if e.path == "" {
		return e.rule
	}
	return e.path + ": " + e.rule
}

func perr(path, format string, args ...any) error {
	return &policyError{path: path, rule: fmt.Sprintf(format, args...)}
}

// ValidatePolicy reports whether document is a policy the emulator can
// evaluate (see [Config.Policy]); the error names the element and the
// rule it breaks.
func ValidatePolicy(document string) error {
	if _, err := parsePolicy(document, maxPolicySize); err != nil {
		return fmt.Errorf("emulator: policy: %w", err)
	}
	return nil
}

// parsePolicy parses a JSON policy document of at most maxBytes bytes.
// Elements the emulator does not evaluate are refused rather than ignored,
// so that no policy is judged more generously than AWS would judge it.
func parsePolicy(doc string, maxBytes int) (*policy, error) {
	if len(doc) > maxBytes {
		return nil, perr("", "the document is %d bytes; the most accepted is %d", len(doc), maxBytes)
	}
	if strings.TrimSpace(doc) == "" {
		return nil, perr("", "the document is empty; want a JSON object with a Statement")
	}
	fields, err := jsonObject([]byte(doc), "")
	if err != nil {
		return nil, err
	}
	version := "2008-10-17" // IAM's default when Version is absent
	var stmts json.RawMessage
	for _, f := range fields {
		switch f.key {
		case "Version":
			v, err := jsonString(f.value, "Version")
			if err != nil {
				return nil, err
			}
			if v != "2012-10-17" && v != "2008-10-17" {
				return nil, perr("Version", "%s: must be \"2012-10-17\" or \"2008-10-17\"", quote(v))
			}
			version = v
		case "Id":
			if _, err := jsonString(f.value, "Id"); err != nil {
				return nil, err
			}
		case "Statement":
			stmts = f.value
		default:
			return nil, unknownElement("", f.key, []string{"Version", "Id", "Statement"})
		}
	}
	if stmts == nil {
		return nil, perr("Statement", "is missing; a policy needs at least one statement")
	}
	p := &policy{}
	var sids map[string]string
	addSid := func(sid, path string) error {
		if sid == "" {
			return nil
		}
		if prev, ok := sids[sid]; ok {
			return perr(path+".Sid", "%s is also the Sid of %s; Sids must be unique within a policy", quote(sid), prev)
		}
		if sids == nil {
			sids = map[string]string{}
		}
		sids[sid] = path
		return nil
	}
	switch rawKind(stmts) {
	case '{':
		s, sid, err := parseStatement(stmts, "Statement", version)
		if err != nil {
			return nil, err
		}
		p.statements = append(p.statements, s)
		_ = addSid(sid, "Statement")
	case '[':
		var list []json.RawMessage
		if err := json.Unmarshal(stmts, &list); err != nil {
			return nil, perr("Statement", "is not a valid JSON array: %v", err)
		}
		if len(list) == 0 {
			return nil, perr("Statement", "is an empty list; a policy needs at least one statement")
		}
		for i, raw := range list {
			path := "Statement[" + strconv.Itoa(i) + "]"
			s, sid, err := parseStatement(raw, path, version)
			if err != nil {
				return nil, err
			}
			if err := addSid(sid, path); err != nil {
				return nil, err
			}
			p.statements = append(p.statements, s)
		}
	default:
		return nil, perr("Statement", "must be an object or a list of objects, not %s", kindName(stmts))
	}
	return p, nil
}

// parseStatement parses one statement and returns it with its Sid.
func parseStatement(raw json.RawMessage, path, version string) (statement, string, error) {
	var s statement
	fields, err := jsonObject(raw, path)
	if err != nil {
		return s, "", err
	}
	var sid string
	var effect, actions, resources json.RawMessage
	for _, f := range fields {
		fp := path + "." + f.key
		switch f.key {
		case "Sid":
			if sid, err = jsonString(f.value, fp); err != nil {
				return s, "", err
			}
			for _, c := range sid {
				if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
					return s, "", perr(fp, "%s: must be letters and digits only (A-Z, a-z, 0-9)", quote(sid))
				}
			}
		case "Effect":
			effect = f.value
		case "Action":
			actions = f.value
		case "Resource":
			resources = f.value
		case "NotAction", "NotResource":
			elem := strings.TrimPrefix(f.key, "Not")
			return s, "", perr(fp, "the emulator does not evaluate %s; list the %ss the statement applies to in %s instead",
				f.key, strings.ToLower(elem), elem)
		case "Principal", "NotPrincipal":
			return s, "", perr(fp, "identity and session policies name no principal (AWS refuses %s in them too); the policy applies to whoever holds the credentials", f.key)
		case "Condition":
			return s, "", perr(fp, "the emulator does not evaluate conditions; a statement that depends on one cannot be judged, so remove it or the condition")
		default:
			return s, "", unknownElement(path, f.key, []string{"Sid", "Effect", "Action", "Resource"})
		}
	}
	if effect == nil {
		return s, "", perr(path+".Effect", "is missing; must be \"Allow\" or \"Deny\"")
	}
	e, err := jsonString(effect, path+".Effect")
	if err != nil {
		return s, "", err
	}
	switch e {
	case "Allow":
	case "Deny":
		s.deny = true
	default:
		return s, "", perr(path+".Effect", "%s: must be \"Allow\" or \"Deny\" (case-sensitive)", quote(e))
	}
	if actions == nil {
		return s, "", perr(path+".Action", "is missing; a statement needs an action, e.g. \"kinesisvideo:ConnectAsViewer\"")
	}
	if s.actions, err = patterns(actions, path+".Action", checkAction); err != nil {
		return s, "", err
	}
	for i, a := range s.actions {
		s.actions[i] = strings.ToLower(a)
	}
	if resources == nil {
		return s, "", perr(path+".Resource", "is missing; a statement needs a resource: \"*\" or an ARN")
	}
	checkRes := func(r string) string { return checkResource(r, version) }
	if s.resources, err = patterns(resources, path+".Resource", checkRes); err != nil {
		return s, "", err
	}
	s.vars = version == "2012-10-17" && slices.ContainsFunc(s.resources, func(r string) bool { return strings.Contains(r, "${") })
	return s, sid, nil
}

// patterns parses a string or a non-empty list of strings, each checked by
// check (which returns the rule broken, or "").
func patterns(raw json.RawMessage, path string, check func(string) string) ([]string, error) {
	var list []string
	switch rawKind(raw) {
	case '"':
		s, err := jsonString(raw, path)
		if err != nil {
			return nil, err
		}
		if rule := check(s); rule != "" {
			return nil, perr(path, "%s: %s", quote(s), rule)
		}
		return []string{s}, nil
	case '[':
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, perr(path, "is not a valid JSON array: %v", err)
		}
		if len(items) == 0 {
			return nil, perr(path, "is an empty list; give at least one")
		}
		for i, item := range items {
			ip := path + "[" + strconv.Itoa(i) + "]"
			s, err := jsonString(item, ip)
			if err != nil {
				return nil, err
			}
			if rule := check(s); rule != "" {
				return nil, perr(ip, "%s: %s", quote(s), rule)
			}
			list = append(list, s)
		}
		return list, nil
	}
	return nil, perr(path, "must be a string or a list of strings, not %s", kindName(raw))
}

// checkAction returns the rule a pattern of Action breaks, or "".
func checkAction(a string) string {
	if a == "*" {
		return ""
	}
	const rule = `must be "*" or SERVICE:ACTION, e.g. "kinesisvideo:ConnectAsViewer" or "kinesisvideo:Describe*" (letters, digits, * and ?)`
	svc, name, ok := strings.Cut(a, ":")
	if !ok || svc == "" || name == "" {
		return rule
	}
	for _, c := range svc {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '*' || c == '?') {
			return rule
		}
	}
	for _, c := range name {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '*' || c == '?') {
			return rule
		}
	}
	return ""
}

// checkResource returns the rule a pattern of Resource breaks, or "".
func checkResource(r, version string) string {
	if r == "*" {
		return ""
	}
	parts := strings.SplitN(r, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] == "" || parts[5] == "" {
		return `must be "*" or an ARN arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE, e.g. "arn:aws:kinesisvideo:*:*:channel/demo/*"`
	}
	if strings.ContainsAny(parts[2], "*?") {
		return "the service part of an ARN takes no wildcard (as in AWS)"
	}
	if version == "2012-10-17" {
		return checkVariables(r)
	}
	return ""
}

func unknownElement(path, key string, known []string) error {
	p := join(path, key)
	for _, k := range known {
		if strings.EqualFold(k, key) {
			return perr(p, "unknown element; element names are case-sensitive: did you mean %q?", k)
		}
	}
	where := "a policy"
	if path != "" {
		where = "a statement"
	}
	return perr(p, "unknown element; %s has %s", where, strings.Join(known, ", "))
}

type jsonField struct {
	key   string
	value json.RawMessage
}

// jsonObject splits a JSON object into its fields, in order, refusing
// anything else, duplicate keys (which encoding/json would silently
// resolve to the last) and data after the object.
func jsonObject(raw []byte, path string) ([]jsonField, error) {
	name := path
	if name == "" {
		name = "the document"
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return nil, perr(path, "%s is not valid JSON: %v", name, jsonErr(err))
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, perr(path, "%s must be a JSON object, not %s", name, tokenKind(tok))
	}
	var fields []jsonField
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, perr(path, "%s is not valid JSON: %v", name, jsonErr(err))
		}
		key, _ := tok.(string) // object keys are always strings
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, perr(join(path, key), "is not valid JSON: %v", jsonErr(err))
		}
		if seen[key] {
			return nil, perr(join(path, key), "appears twice; give each element once")
		}
		seen[key] = true
		fields = append(fields, jsonField{key, v})
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, perr(path, "%s is not valid JSON: %v", name, jsonErr(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, perr(path, "%s has data after the JSON object", name)
	}
	return fields, nil
}

func join(path, key string) string {
	if path == "" {
		return elementName(key)
	}
	return path + "." + elementName(key)
}

// elementName shows a JSON key in an error: as it is if it looks like an
// element name, quoted and clipped if not (it may be long, or hold a
// newline).
func elementName(key string) string {
	if key != "" && len(key) <= 32 && strings.IndexFunc(key, func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9')
	}) < 0 {
		return key
	}
	return quote(key)
}

func jsonErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("unexpected end of input")
	}
	return err
}

// jsonString decodes a JSON string.
func jsonString(raw json.RawMessage, path string) (string, error) {
	if rawKind(raw) != '"' {
		return "", perr(path, "must be a string, not %s", kindName(raw))
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", perr(path, "is not a valid JSON string: %v", err)
	}
	return s, nil
}

// rawKind returns the first byte of a JSON value: {, [, ", t, f, n, or a
// digit or - for numbers; 0 if empty.
func rawKind(raw []byte) byte {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return 0
	}
	return raw[0]
}

func kindName(raw []byte) string {
	switch k := rawKind(raw); {
	case k == '{':
		return "an object"
	case k == '[':
		return "a list"
	case k == '"':
		return "a string"
	case k == 't' || k == 'f':
		return "a boolean"
	case k == 'n':
		return "null"
	case k == 0:
		return "nothing"
	default:
		return "a number"
	}
}

func tokenKind(tok json.Token) string {
	switch t := tok.(type) {
	case json.Delim:
		if t == '[' {
			return "a list"
		}
		return "a " + string(t)
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	default:
		return "a number"
	}
}

// quote quotes s for an error message, clipped to keep messages short.
func quote(s string) string {
	return strconv.Quote(clipValue(s))
}

// grant is what limits a set of credentials: every policy must allow a
// request. An empty grant allows everything (no IAM configured).
type grant []*policy

// allows reports whether every policy of g allows action on resource.
func (g grant) allows(action, resource string) bool { return g.allowsWith(action, resource, nil) }

// allowsWith is allows with the values of policy variables.
func (g grant) allowsWith(action, resource string, vars map[string]string) bool {
	for _, p := range g {
		if p.decideWith(action, resource, vars) != allowed {
			return false
		}
	}
	return true
}

// with returns g plus p, without sharing g's backing array.
func (g grant) with(p *policy) grant {
	if p == nil {
		return g
	}
	out := make(grant, 0, len(g)+1)
	return append(append(out, g...), p)
}

const actionPrefix = "kinesisvideo:"

// authorize checks that who may perform kinesisvideo:op on resource; who
// is nil for the Go API and the admin endpoints, which are not checked.
// A refusal is a 403 AccessDeniedException worded as AWS words it.
func (e *Emulator) authorize(who *issued, op, resource string) *apiError {
	if who == nil || who.grant.allowsWith(actionPrefix+op, resource, who.vars) {
		return nil
	}
	return e.deny(who, "AccessDeniedException", actionPrefix+op, resource)
}

// deny counts, logs and words a refusal of action on resource; code is
// the service's error code (STS says AccessDenied).
func (e *Emulator) deny(who *issued, code, action, resource string) *apiError {
	e.stats.denied.Add(1)
	e.log.Info("access denied", "principal", who.arn, "action", action, "resource", resource)
	return errf(http.StatusForbidden, code, "User: %s is not authorized to perform: %s on resource: %s", who.arn, action, resource)
}

// caller returns who signed a request the verifier accepted.
func (e *Emulator) caller(accessKeyID string) (*issued, *apiError) {
	c, ok := e.creds.get(accessKeyID)
	if !ok {
		// Only possible if the credentials were dropped since they were
		// verified, a moment ago.
		return nil, &apiError{Status: http.StatusForbidden, Code: "UnrecognizedClientException",
			Message: "The security token included in the request is invalid.", lowerKey: true}
	}
	return &c, nil
}
