package emulator

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	chanDemo  = "arn:aws:kinesisvideo:us-west-2:123456789012:channel/demo/1700000000000"
	chanOther = "arn:aws:kinesisvideo:us-west-2:123456789012:channel/other/1700000000001"
)

func TestParsePolicyValid(t *testing.T) {
	cases := []struct {
		name string
		doc  string
		want int // statements
	}{
		{"one statement object, no version", `{"Statement":{"Effect":"Allow","Action":"kinesisvideo:*","Resource":"*"}}`, 1},
		{"list, 2012 version, Id and Sids", `{"Version":"2012-10-17","Id":"p1","Statement":[
			{"Sid":"Viewer1","Effect":"Allow","Action":["kinesisvideo:ConnectAsViewer","kinesisvideo:Describe*"],"Resource":["` + chanDemo + `","arn:aws:kinesisvideo:*:*:channel/demo/*"]},
			{"Sid":"NoDelete","Effect":"Deny","Action":"kinesisvideo:DeleteSignalingChannel","Resource":"*"}]}`, 2},
		{"2008 version", `{"Version":"2008-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}`, 1},
		{"whitespace around", " \n\t{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}]}\n ", 1},
		{"wildcards everywhere", `{"Statement":[{"Effect":"Allow","Action":["*:*","kinesis?ideo:Get*","KinesisVideo:describesignalingchannel"],"Resource":"arn:*:kinesisvideo:??-*:*:channel/*"}]}`, 1},
		{"${ is literal under 2008", `{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"arn:aws:kinesisvideo:*:*:channel/${x}/*"}]}`, 1},
		{"same statement twice without Sids", `{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Allow","Action":"*","Resource":"*"}]}`, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := parsePolicy(tc.doc, maxPolicySize)
			if err != nil {
				t.Fatalf("parsePolicy: %v", err)
			}
			if len(p.statements) != tc.want {
				t.Errorf("%d statements; want %d", len(p.statements), tc.want)
			}
			if err := ValidatePolicy(tc.doc); err != nil {
				t.Errorf("ValidatePolicy: %v", err)
			}
		})
	}
}

func TestParsePolicyInvalid(t *testing.T) {
	stmt := func(body string) string { return `{"Version":"2012-10-17","Statement":[` + body + `]}` }
	cases := []struct {
		name string
		doc  string
		want string // the error, exactly
	}{
		// Elements the emulator does not evaluate.
		{"NotAction", stmt(`{"Effect":"Allow","NotAction":"kinesisvideo:DeleteSignalingChannel","Resource":"*"}`),
			`Statement[0].NotAction: the emulator does not evaluate NotAction; list the actions the statement applies to in Action instead`},
		{"NotResource", stmt(`{"Effect":"Allow","Action":"*","NotResource":"*"}`),
			`Statement[0].NotResource: the emulator does not evaluate NotResource; list the resources the statement applies to in Resource instead`},
		{"Principal", stmt(`{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}`),
			`Statement[0].Principal: identity and session policies name no principal (AWS refuses Principal in them too); the policy applies to whoever holds the credentials`},
		{"NotPrincipal", `{"Statement":{"Effect":"Deny","NotPrincipal":{"AWS":"x"},"Action":"*","Resource":"*"}}`,
			`Statement.NotPrincipal: identity and session policies name no principal (AWS refuses NotPrincipal in them too); the policy applies to whoever holds the credentials`},
		{"Condition", stmt(`{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"true"}}}`),
			`Statement[1].Condition: the emulator does not evaluate conditions; a statement that depends on one cannot be judged, so remove it or the condition`},
		{"unknown statement element", stmt(`{"Effect":"Allow","Action":"*","Resource":"*","Extra":1}`),
			`Statement[0].Extra: unknown element; a statement has Sid, Effect, Action, Resource`},
		{"element name in the wrong case", stmt(`{"effect":"Allow","Action":"*","Resource":"*"}`),
			`Statement[0].effect: unknown element; element names are case-sensitive: did you mean "Effect"?`},
		{"unknown top-level element", `{"Statements":[]}`, `Statements: unknown element; a policy has Version, Id, Statement`},
		{"element name with a newline, quoted", `{"Ver\nsion":"2012-10-17"}`, `"Ver\nsion": unknown element; a policy has Version, Id, Statement`},

		// Malformed JSON.
		{"empty", ``, `the document is empty; want a JSON object with a Statement`},
		{"blank", " \n ", `the document is empty; want a JSON object with a Statement`},
		{"truncated", `{"Statement":[`, `Statement: is not valid JSON: unexpected end of input`},
		{"not JSON", `Allow everything`, `the document is not valid JSON: invalid character 'A' looking for beginning of value`},
		{"trailing data", `{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}} {}`, `the document has data after the JSON object`},
		{"duplicate key", stmt(`{"Effect":"Allow","Effect":"Deny","Action":"*","Resource":"*"}`), `Statement[0].Effect: appears twice; give each element once`},
		{"too large", `{"Id":"` + strings.Repeat("x", maxPolicySize) + `"}`, `the document is 65545 bytes; the most accepted is 65536`},

		// Wrong types.
		{"a list", `[{"Effect":"Allow"}]`, `the document must be a JSON object, not a list`},
		{"a string", `"policy"`, `the document must be a JSON object, not a string`},
		{"Version a number", `{"Version":2012,"Statement":[]}`, `Version: must be a string, not a number`},
		{"Statement a string", `{"Statement":"Allow"}`, `Statement: must be an object or a list of objects, not a string`},
		{"Statement null", `{"Statement":null}`, `Statement: must be an object or a list of objects, not null`},
		{"statement a string", stmt(`"Allow"`), `Statement[0]: Statement[0] must be a JSON object, not a string`},
		{"Effect a boolean", stmt(`{"Effect":true,"Action":"*","Resource":"*"}`), `Statement[0].Effect: must be a string, not a boolean`},
		{"Action an object", stmt(`{"Effect":"Allow","Action":{"a":1},"Resource":"*"}`), `Statement[0].Action: must be a string or a list of strings, not an object`},
		{"Action list with a number", stmt(`{"Effect":"Allow","Action":["kinesisvideo:Connect*",5],"Resource":"*"}`), `Statement[0].Action[1]: must be a string, not a number`},
		{"Resource null", stmt(`{"Effect":"Allow","Action":"*","Resource":null}`), `Statement[0].Resource: must be a string or a list of strings, not null`},
		{"Sid a number", stmt(`{"Sid":1,"Effect":"Allow","Action":"*","Resource":"*"}`), `Statement[0].Sid: must be a string, not a number`},

		// Missing and empty.
		{"no Statement", `{"Version":"2012-10-17"}`, `Statement: is missing; a policy needs at least one statement`},
		{"empty statement list", `{"Version":"2012-10-17","Statement":[]}`, `Statement: is an empty list; a policy needs at least one statement`},
		{"empty statement", stmt(`{}`), `Statement[0].Effect: is missing; must be "Allow" or "Deny"`},
		{"no Action", stmt(`{"Effect":"Allow","Resource":"*"}`), `Statement[0].Action: is missing; a statement needs an action, e.g. "kinesisvideo:ConnectAsViewer"`},
		{"no Resource", stmt(`{"Effect":"Allow","Action":"*"}`), `Statement[0].Resource: is missing; a statement needs a resource: "*" or an ARN`},
		{"empty Action list", stmt(`{"Effect":"Allow","Action":[],"Resource":"*"}`), `Statement[0].Action: is an empty list; give at least one`},
		{"empty Resource list", stmt(`{"Effect":"Allow","Action":"*","Resource":[]}`), `Statement[0].Resource: is an empty list; give at least one`},

		// Values.
		{"Version unknown", `{"Version":"2020-01-01","Statement":[]}`, `Version: "2020-01-01": must be "2012-10-17" or "2008-10-17"`},
		{"Effect lower-case", stmt(`{"Effect":"allow","Action":"*","Resource":"*"}`), `Statement[0].Effect: "allow": must be "Allow" or "Deny" (case-sensitive)`},
		{"Sid with a hyphen", stmt(`{"Sid":"no-hyphens","Effect":"Allow","Action":"*","Resource":"*"}`), `Statement[0].Sid: "no-hyphens": must be letters and digits only (A-Z, a-z, 0-9)`},
		{"Sid twice", stmt(`{"Sid":"A","Effect":"Allow","Action":"*","Resource":"*"},{"Sid":"A","Effect":"Deny","Action":"*","Resource":"*"}`),
			`Statement[1].Sid: "A" is also the Sid of Statement[0]; Sids must be unique within a policy`},
		{"action without service", stmt(`{"Effect":"Allow","Action":"ConnectAsViewer","Resource":"*"}`),
			`Statement[0].Action: "ConnectAsViewer": must be "*" or SERVICE:ACTION, e.g. "kinesisvideo:ConnectAsViewer" or "kinesisvideo:Describe*" (letters, digits, * and ?)`},
		{"action with empty name", stmt(`{"Effect":"Allow","Action":["kinesisvideo:"],"Resource":"*"}`),
			`Statement[0].Action[0]: "kinesisvideo:": must be "*" or SERVICE:ACTION, e.g. "kinesisvideo:ConnectAsViewer" or "kinesisvideo:Describe*" (letters, digits, * and ?)`},
		{"action with a space", stmt(`{"Effect":"Allow","Action":"kinesisvideo:Connect AsViewer","Resource":"*"}`),
			`Statement[0].Action: "kinesisvideo:Connect AsViewer": must be "*" or SERVICE:ACTION, e.g. "kinesisvideo:ConnectAsViewer" or "kinesisvideo:Describe*" (letters, digits, * and ?)`},
		{"resource not an ARN", stmt(`{"Effect":"Allow","Action":"*","Resource":"channel/demo"}`),
			`Statement[0].Resource: "channel/demo": must be "*" or an ARN arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE, e.g. "arn:aws:kinesisvideo:*:*:channel/demo/*"`},
		{"resource ARN too short", stmt(`{"Effect":"Allow","Action":"*","Resource":"arn:aws:kinesisvideo:*"}`),
			`Statement[0].Resource: "arn:aws:kinesisvideo:*": must be "*" or an ARN arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE, e.g. "arn:aws:kinesisvideo:*:*:channel/demo/*"`},
		{"resource empty", stmt(`{"Effect":"Allow","Action":"*","Resource":""}`),
			`Statement[0].Resource: "": must be "*" or an ARN arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE, e.g. "arn:aws:kinesisvideo:*:*:channel/demo/*"`},
		{"wildcard service", stmt(`{"Effect":"Allow","Action":"*","Resource":"arn:aws:kinesis*:*:*:channel/*"}`),
			`Statement[0].Resource: "arn:aws:kinesis*:*:*:channel/*": the service part of an ARN takes no wildcard (as in AWS)`},
		{"policy variable not closed", stmt(`{"Effect":"Allow","Action":"*","Resource":["*","arn:aws:kinesisvideo:*:*:channel/${aws:username/*"]}`),
			`Statement[0].Resource[1]: "arn:aws:kinesisvideo:*:*:channel/${aws:username/*": a policy variable ${ is not closed by }`},
		{"policy variable without a service", stmt(`{"Effect":"Allow","Action":"*","Resource":"arn:aws:kinesisvideo:*:*:channel/${username}/*"}`),
			`Statement[0].Resource: "arn:aws:kinesisvideo:*:*:channel/${username}/*": a policy variable must be ${SERVICE:NAME}, e.g. ${credentials-iot:ThingName} or ${aws:userid}`},
		{"policy variable with a default", stmt(`{"Effect":"Allow","Action":"*","Resource":"arn:aws:kinesisvideo:*:*:channel/${aws:username, 'x'}/*"}`),
			`Statement[0].Resource: "arn:aws:kinesisvideo:*:*:channel/${aws:username, 'x'}/*": policy variables with a default value (${name, 'default'}) are not evaluated by the emulator`},
		{"literal star variable", stmt(`{"Effect":"Allow","Action":"*","Resource":"arn:aws:kinesisvideo:*:*:channel/a${*}/*"}`),
			`Statement[0].Resource: "arn:aws:kinesisvideo:*:*:channel/a${*}/*": ${*} and ${?} (a literal * or ?) are not evaluated by the emulator; write the resource without them`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parsePolicy(tc.doc, maxPolicySize)
			if err == nil {
				t.Fatalf("parsePolicy(%q) succeeded; want %q", tc.doc, tc.want)
			}
			if diff := cmp.Diff(tc.want, err.Error()); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if err := ValidatePolicy(tc.doc); err == nil || err.Error() != "emulator: policy: "+tc.want {
				t.Errorf("ValidatePolicy = %v; want the same error with the package prefix", err)
			}
		})
	}
}

func TestNewRefusesABadPolicy(t *testing.T) {
	_, err := New(Config{Policy: `{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{}}]}`})
	if err == nil || !strings.HasPrefix(err.Error(), "emulator: policy: Statement[0].Condition: ") {
		t.Errorf("New with a Condition = %v; want an error naming Statement[0].Condition", err)
	}
	if _, err := New(Config{Policy: `{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}`}); err != nil {
		t.Errorf("New with a valid policy: %v", err)
	}
}

func TestPolicyDecide(t *testing.T) {
	const (
		connectViewerDemo = `{"Effect":"Allow","Action":"kinesisvideo:ConnectAsViewer","Resource":"` + chanDemo + `"}`
		allowAll          = `{"Effect":"Allow","Action":"*","Resource":"*"}`
	)
	policy := func(stmts ...string) string {
		return `{"Version":"2012-10-17","Statement":[` + strings.Join(stmts, ",") + `]}`
	}
	type req struct{ action, resource string }
	cases := []struct {
		name string
		doc  string
		reqs map[req]decision
	}{
		{"allow one action on one channel", policy(connectViewerDemo), map[req]decision{
			{"kinesisvideo:ConnectAsViewer", chanDemo}:  allowed,
			{"kinesisvideo:ConnectAsViewer", chanOther}: implicitDeny,
			{"kinesisvideo:ConnectAsMaster", chanDemo}:  implicitDeny,
			{"kinesisvideo:ListSignalingChannels", "*"}: implicitDeny,
		}},
		{"explicit deny wins, in either order", policy(allowAll, `{"Effect":"Deny","Action":"kinesisvideo:DeleteSignalingChannel","Resource":"*"}`, allowAll), map[req]decision{
			{"kinesisvideo:DeleteSignalingChannel", chanDemo}:   explicitDeny,
			{"kinesisvideo:DescribeSignalingChannel", chanDemo}: allowed,
		}},
		{"deny on one channel only", policy(allowAll, `{"Effect":"Deny","Action":"kinesisvideo:Connect*","Resource":"arn:aws:kinesisvideo:us-west-2:123456789012:channel/demo/*"}`), map[req]decision{
			{"kinesisvideo:ConnectAsMaster", chanDemo}:  explicitDeny,
			{"kinesisvideo:ConnectAsViewer", chanDemo}:  explicitDeny,
			{"kinesisvideo:ConnectAsViewer", chanOther}: allowed,
		}},
		{"action wildcards", policy(`{"Effect":"Allow","Action":["kinesisvideo:Connect*","kinesisvideo:Get?ceServerConfig"],"Resource":"*"}`), map[req]decision{
			{"kinesisvideo:ConnectAsMaster", chanDemo}:             allowed,
			{"kinesisvideo:ConnectAsViewer", chanDemo}:             allowed,
			{"kinesisvideo:GetIceServerConfig", chanDemo}:          allowed,
			{"kinesisvideo:GetSignalingChannelEndpoint", chanDemo}: implicitDeny,
			{"kinesis:ConnectAsMaster", chanDemo}:                  implicitDeny,
		}},
		{"actions match in any case", policy(`{"Effect":"Allow","Action":"KinesisVideo:describesignalingchannel","Resource":"*"}`), map[req]decision{
			{"kinesisvideo:DescribeSignalingChannel", chanDemo}: allowed,
			{"KINESISVIDEO:DESCRIBESIGNALINGCHANNEL", chanDemo}: allowed,
		}},
		{"a bare * action is every action", policy(`{"Effect":"Allow","Action":"*","Resource":"` + chanDemo + `"}`), map[req]decision{
			{"kinesisvideo:DeleteSignalingChannel", chanDemo}:  allowed,
			{"kinesisvideo:DeleteSignalingChannel", chanOther}: implicitDeny,
		}},
		{"resource wildcards", policy(`{"Effect":"Allow","Action":"*","Resource":["arn:aws:kinesisvideo:us-west-2:123456789012:channel/demo/*","arn:aws:kinesisvideo:*:*:channel/oth?r/*"]}`), map[req]decision{
			{"kinesisvideo:ConnectAsMaster", chanDemo}:                                                       allowed,
			{"kinesisvideo:ConnectAsMaster", chanOther}:                                                      allowed,
			{"kinesisvideo:ConnectAsMaster", "arn:aws:kinesisvideo:us-west-2:123456789012:channel/demo2/1"}:  implicitDeny,
			{"kinesisvideo:ConnectAsMaster", "arn:aws:kinesisvideo:us-west-2:123456789012:channel/othar/1"}:  allowed,
			{"kinesisvideo:ConnectAsMaster", "arn:aws:kinesisvideo:us-west-2:123456789012:channel/othxxr/1"}: implicitDeny,
			{"kinesisvideo:ListSignalingChannels", "*"}:                                                      implicitDeny,
		}},
		{"resources are case-sensitive", policy(`{"Effect":"Allow","Action":"*","Resource":"arn:aws:kinesisvideo:us-west-2:123456789012:channel/Demo/*"}`), map[req]decision{
			{"kinesisvideo:ConnectAsMaster", chanDemo}:                                                     implicitDeny,
			{"kinesisvideo:ConnectAsMaster", "arn:aws:kinesisvideo:us-west-2:123456789012:channel/Demo/1"}: allowed,
		}},
		{"Resource * covers the * of ListSignalingChannels", policy(`{"Effect":"Allow","Action":"kinesisvideo:List*","Resource":"*"}`), map[req]decision{
			{"kinesisvideo:ListSignalingChannels", "*"}: allowed,
		}},
		{"only denies: implicit deny elsewhere", policy(`{"Effect":"Deny","Action":"*","Resource":"` + chanDemo + `"}`), map[req]decision{
			{"kinesisvideo:ConnectAsMaster", chanDemo}:  explicitDeny,
			{"kinesisvideo:ConnectAsMaster", chanOther}: implicitDeny,
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := parsePolicy(tc.doc, maxPolicySize)
			if err != nil {
				t.Fatal(err)
			}
			for r, want := range tc.reqs {
				if got := p.decide(r.action, r.resource); got != want {
					t.Errorf("decide(%s, %s) = %v; want %v", r.action, r.resource, got, want)
				}
			}
		})
	}
}

func TestGrantIntersection(t *testing.T) {
	mustParse := func(doc string) *policy {
		t.Helper()
		p, err := parsePolicy(doc, maxPolicySize)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	identity := mustParse(`{"Statement":[{"Effect":"Allow","Action":"kinesisvideo:*","Resource":"*"},
		{"Effect":"Deny","Action":"kinesisvideo:ConnectAsViewer","Resource":"` + chanOther + `"}]}`)
	session := mustParse(`{"Statement":{"Effect":"Allow","Action":"kinesisvideo:ConnectAsViewer","Resource":"*"}}`)
	cases := []struct {
		name             string
		g                grant
		action, resource string
		want             bool
	}{
		{"no policy allows all", nil, "kinesisvideo:DeleteSignalingChannel", chanDemo, true},
		{"identity alone", grant(nil).with(identity), "kinesisvideo:DeleteSignalingChannel", chanDemo, true},
		{"identity's deny", grant(nil).with(identity), "kinesisvideo:ConnectAsViewer", chanOther, false},
		{"session alone narrows", grant(nil).with(session), "kinesisvideo:DescribeSignalingChannel", chanDemo, false},
		{"both allow", grant(nil).with(identity).with(session), "kinesisvideo:ConnectAsViewer", chanDemo, true},
		{"session allows, identity denies", grant(nil).with(identity).with(session), "kinesisvideo:ConnectAsViewer", chanOther, false},
		{"identity allows, session does not", grant(nil).with(identity).with(session), "kinesisvideo:ConnectAsMaster", chanDemo, false},
	}
	for _, tc := range cases {
		if got := tc.g.allows(tc.action, tc.resource); got != tc.want {
			t.Errorf("%s: allows(%s, %s) = %v; want %v", tc.name, tc.action, tc.resource, got, tc.want)
		}
	}
	// with does not share the backing array: two sessions of one identity
	// stay apart.
	base := make(grant, 1, 4)
	base[0] = identity
	a, b := base.with(session), base.with(identity)
	if a[1] != session || b[1] != identity {
		t.Error("grant.with shares its backing array")
	}
}

func TestWildcardMatch(t *testing.T) {
	cases := []struct {
		pattern, s string
		want       bool
	}{
		{"", "", true},
		{"", "a", false},
		{"*", "", true},
		{"*", "anything/at:all", true},
		{"**", "x", true},
		{"a*", "a", true},
		{"a*b", "ab", true},
		{"a*b", "axxb", true},
		{"a*b", "axxbc", false},
		{"a*b*c", "abxbxc", true},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"a??", "ab", false},
		{"?", "é", true}, // one character, however many bytes
		{"caf?", "café", true},
		{"*é", "caffé", true},
		{"abc", "ABC", false},
		{"*/demo/*", "arn:x:channel/demo/1", true},
		{"*/demo/*", "arn:x:channel/demo", false},
		{"a*a*a*a*a*a*b", strings.Repeat("a", 200), false}, // no blow-up
	}
	for _, tc := range cases {
		if got := wildcardMatch(tc.pattern, tc.s); got != tc.want {
			t.Errorf("wildcardMatch(%q, %q) = %v; want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}

// FuzzParsePolicy parses arbitrary documents: no panic, and an accepted
// policy decides the same way every time, parsed again or asked again.
func FuzzParsePolicy(f *testing.F) {
	for _, s := range []string{
		`{"Version":"2012-10-17","Statement":[{"Sid":"A","Effect":"Allow","Action":["kinesisvideo:Connect*"],"Resource":"arn:aws:kinesisvideo:*:*:channel/demo/*"}]}`,
		`{"Statement":{"Effect":"Deny","Action":"*","Resource":"*"}}`,
		`{"Statement":[{"Effect":"Allow","NotAction":"x:y","Resource":"*"}]}`,
		`{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{}}]}`,
		`{"Statement":[]}`, `{"Statement":[{}]}`, `[]`, `{`, ``, `{"a":1,"a":2}`, `{"Statement":[{"Effect":"Allow","Action":"a:?*?*","Resource":"arn:a:b:c:d:*?é"}]}`,
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"arn:aws:kinesisvideo:*:*:channel/${credentials-iot:ThingName}/*"}]}`,
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"arn:a:b:c:d:${$}${aws:userid}${x"}]}`,
	} {
		f.Add(s)
	}
	probes := []struct{ action, resource string }{
		{"kinesisvideo:ConnectAsMaster", chanDemo}, {"kinesisvideo:ConnectAsViewer", chanOther},
		{"kinesisvideo:ListSignalingChannels", "*"}, {"x:y", "arn:a:b:c:d:e"}, {"", ""},
	}
	f.Fuzz(func(t *testing.T, doc string) {
		p, err := parsePolicy(doc, maxPolicySize)
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("parsePolicy(%q): empty error", doc)
			}
			return
		}
		if len(p.statements) == 0 {
			t.Fatalf("parsePolicy(%q) accepted a policy without statements", doc)
		}
		again, err := parsePolicy(doc, maxPolicySize)
		if err != nil {
			t.Fatalf("parsePolicy(%q) failed the second time: %v", doc, err)
		}
		for _, pr := range probes {
			d := p.decide(pr.action, pr.resource)
			if d2, d3 := p.decide(pr.action, pr.resource), again.decide(pr.action, pr.resource); d2 != d || d3 != d {
				t.Fatalf("policy %q decides %v, then %v, then (parsed again) %v for %+v", doc, d, d2, d3, pr)
			}
			// Substitution is as deterministic as the rest.
			vars := map[string]string{"credentials-iot:thingname": "demo", "aws:userid": "*"}
			if d, d2 := p.decideWith(pr.action, pr.resource, vars), again.decideWith(pr.action, pr.resource, vars); d != d2 {
				t.Fatalf("policy %q decides %v, then (parsed again) %v for %+v with variables", doc, d, d2, pr)
			}
		}
	})
}

func TestDecidePolicyVariables(t *testing.T) {
	p, err := parsePolicy(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kinesisvideo:ConnectAsMaster",
		"Resource":["arn:aws:kinesisvideo:*:*:channel/${credentials-iot:ThingName}/*","arn:aws:kinesisvideo:*:*:channel/u-${aws:userid}-${$}/*"]}]}`, maxPolicySize)
	if err != nil {
		t.Fatal(err)
	}
	cam1 := map[string]string{"credentials-iot:thingname": "cam-1", "aws:userid": "AROA1:c"}
	ch := func(name string) string { return "arn:aws:kinesisvideo:us-west-2:123456789012:channel/" + name + "/1" }
	cases := []struct {
		name     string
		vars     map[string]string
		resource string
		want     decision
	}{
		{"own channel", cam1, ch("cam-1"), allowed},
		{"another thing's channel", cam1, ch("cam-2"), implicitDeny},
		{"no thing name: matches nothing", map[string]string{"aws:userid": "AROA1:c"}, ch("cam-1"), implicitDeny},
		{"no variables at all", nil, ch("${credentials-iot:ThingName}"), implicitDeny},
		{"second variable and ${$}", cam1, ch("u-AROA1:c-$"), allowed},
		{"empty value matches nothing", map[string]string{"credentials-iot:thingname": ""}, ch(""), implicitDeny},
		{"a value with a wildcard matches nothing", map[string]string{"credentials-iot:thingname": "*"}, ch("cam-1"), implicitDeny},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := p.decideWith("kinesisvideo:ConnectAsMaster", tc.resource, tc.vars); got != tc.want {
				t.Errorf("decideWith(%s, %v) = %v; want %v", tc.resource, tc.vars, got, tc.want)
			}
		})
	}
	// Under Version 2008-10-17, ${ is literal text, as in IAM.
	old, err := parsePolicy(`{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"arn:aws:kinesisvideo:*:*:channel/${credentials-iot:ThingName}/*"}]}`, maxPolicySize)
	if err != nil {
		t.Fatal(err)
	}
	if got := old.decideWith("kinesisvideo:ConnectAsMaster", ch("cam-1"), cam1); got != implicitDeny {
		t.Errorf("2008-10-17 policy substituted a variable: %v", got)
	}
	if got := old.decideWith("kinesisvideo:ConnectAsMaster", ch("${credentials-iot:ThingName}"), cam1); got != allowed {
		t.Errorf("2008-10-17 policy did not match ${ literally: %v", got)
	}
}
