package vend

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestExampleConfigLoads(t *testing.T) {
	c, err := LoadConfig("testdata/example-config.json")
	if err != nil {
		t.Fatal(err)
	}
	if c.Auth.JWT == nil || len(c.Auth.Tokens) != 1 || len(c.Rules) != 2 || c.ScopedCredentials == nil {
		t.Errorf("example config read as %+v", c)
	}
	if c.Limits.RequestTimeout.D() != 5*time.Second || c.CORS.MaxAge.D() != 10*time.Minute {
		t.Errorf("durations read as %v and %v", c.Limits.RequestTimeout, c.CORS.MaxAge)
	}
	// docs/vend.md shows the same file.
	doc, err := os.ReadFile("../docs/vend.md")
	if err != nil {
		t.Fatal(err)
	}
	file, _ := os.ReadFile("testdata/example-config.json")
	if !strings.Contains(string(doc), strings.TrimSpace(string(file))) {
		t.Error("docs/vend.md does not show vend/testdata/example-config.json verbatim")
	}
}

func TestConfigRoundTrip(t *testing.T) {
	c := baseConfig()
	c.URLExpires = Duration(120 * time.Second)
	c.CORS.MaxAge = Duration(90 * time.Second)
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseConfig(b)
	if err != nil {
		t.Fatalf("ParseConfig(%s): %v", b, err)
	}
	if diff := cmp.Diff(c, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestConfigErrors(t *testing.T) {
	tok := `{"name":"cam","sha256":"` + HashToken("x") + `"}`
	rule := `{"principals":["token:cam"],"channels":["c"],"roles":["VIEWER"]}`
	wrap := func(auth, rules, extra string) string {
		s := `{"auth":` + auth + `,"rules":[` + rules + `]`
		if extra != "" {
			s += "," + extra
		}
		return s + "}"
	}
	auth := `{"tokens":[` + tok + `]}`
	cases := []struct {
		name, json, want string
	}{
		{"not JSON", `{`, "vend: config"},
		{"syntax line", "{\n\"auth\": x}", "line 2"},
		{"unknown field", wrap(auth, rule, `"adress":"x"`), `unknown field "adress"`},
		{"wrong type", wrap(auth, rule, `"hsts":"yes"`), `"hsts"`},
		{"bad duration", wrap(auth, rule, `"urlExpires":"5 minutes"`), "duration"},
		{"duration number", wrap(auth, rule, `"urlExpires":300`), "duration string"},
		{"no auth", wrap(`{}`, rule, ""), "auth: needs tokens or jwt"},
		{"bad token name", wrap(`{"tokens":[{"name":"a b","sha256":"`+HashToken("x")+`"}]}`, rule, ""), "auth.tokens[0].name"},
		{"bad hash", wrap(`{"tokens":[{"name":"a","sha256":"abc"}]}`, rule, ""), "auth.tokens[0].sha256: must be 64 hex digits"},
		{"duplicate name", wrap(`{"tokens":[`+tok+`,`+tok+`]}`, rule, ""), "auth.tokens[1].name"},
		{"jwt without issuer", wrap(`{"jwt":{"audience":["a"],"jwksUrl":"https://x/"}}`, rule, ""), "auth.jwt.issuer: is required"},
		{"jwt without audience", wrap(`{"jwt":{"issuer":"i","jwksUrl":"https://x/"}}`, rule, ""), "auth.jwt.audience"},
		{"jwt alg", wrap(`{"jwt":{"issuer":"i","audience":["a"],"algorithms":["none"],"jwksUrl":"https://x/"}}`, rule, ""), "auth.jwt.algorithms"},
		{"jwt HS256 without secret", wrap(`{"jwt":{"issuer":"i","audience":["a"],"algorithms":["HS256"]}}`, rule, ""), "auth.jwt.hmacSecretEnv"},
		{"jwt RS256 without keys", wrap(`{"jwt":{"issuer":"i","audience":["a"],"algorithms":["RS256"]}}`, rule, ""), "jwksUrl or jwks"},
		{"jwks over http", wrap(`{"jwt":{"issuer":"i","audience":["a"],"jwksUrl":"http://idp.example.com/jwks"}}`, rule, ""), "auth.jwt.jwksUrl"},
		{"bad inline jwks", wrap(`{"jwt":{"issuer":"i","audience":["a"],"jwks":{"keys":[]}}}`, rule, ""), "auth.jwt.jwks"},
		{"rule for nobody", wrap(auth, `{"channels":["c"],"roles":["VIEWER"]}`, ""), "rules[0]: needs principals or groups"},
		{"rule principal kind", wrap(auth, `{"principals":["cam"],"channels":["c"],"roles":["VIEWER"]}`, ""), "rules[0].principals[0]"},
		{"rule no channels", wrap(auth, `{"principals":["token:cam"],"roles":["VIEWER"]}`, ""), "rules[0].channels"},
		{"rule bad channel", wrap(auth, `{"principals":["token:cam"],"channels":["a/b"],"roles":["VIEWER"]}`, ""), "rules[0].channels[0]"},
		{"rule bad role", wrap(auth, `{"principals":["token:cam"],"channels":["c"],"roles":["ADMIN"]}`, ""), "rules[0].roles[0]"},
		{"url expires", wrap(auth, rule, `"urlExpires":"10m"`), "urlExpires"},
		{"log level", wrap(auth, rule, `"logLevel":"loud"`), "logLevel"},
		{"addr", wrap(auth, rule, `"addr":"8080"`), "addr"},
		{"endpoint", wrap(auth, rule, `"endpointUrl":"ftp://x"`), "endpointUrl"},
		{"origin with path", wrap(auth, rule, `"cors":{"allowedOrigins":["https://a.example.com/app"]}`), "cors.allowedOrigins[0]"},
		{"origin star", wrap(auth, rule, `"cors":{"allowedOrigins":["*"]}`), "cors.allowedOrigins[0]"},
		{"proxies", wrap(auth, rule, `"trustedProxies":["10.0.0.0/33"]`), "trustedProxies"},
		{"negative burst", wrap(auth, rule, `"limits":{"perIp":{"perSecond":1,"burst":-1}}`), "limits.perIp.burst"},
		{"huge body", wrap(auth, rule, `"limits":{"maxBodyBytes":10000000}`), "limits.maxBodyBytes"},
		{"negative connection cap", wrap(auth, rule, `"limits":{"maxConnections":-1}`), "limits.maxConnections"},
		{"role arn", wrap(auth, rule, `"scopedCredentials":{"roleArn":"kvs-role"}`), "scopedCredentials.roleArn"},
		{"role duration", wrap(auth, rule, `"scopedCredentials":{"roleArn":"arn:aws:iam::123456789012:role/r","duration":"5m"}`), "scopedCredentials.duration"},
		{"tls half", wrap(auth, rule, `"tls":{"certFile":"c.pem"}`), "tls"},
		{"two values", wrap(auth, rule, "") + "{}", "more than one"},
		{"redis scheme", wrap(auth, rule, `"redis":{"url":"http://127.0.0.1:6379"}`), "redis.url: must be a redis:// or rediss:// URL"},
		{"redis no host", wrap(auth, rule, `"redis":{"url":"redis://"}`), "redis.url"},
		{"redis url hidden", wrap(auth, rule, `"redis":{"url":"ftp://user:hunter2-secret@x"}`), "redis.url"},
		{"redis password env", wrap(auth, rule, `"redis":{"url":"redis://x:6379","passwordEnv":"A B"}`), "redis.passwordEnv"},
		{"redis timeout", wrap(auth, rule, `"redis":{"url":"redis://x:6379","timeout":"-1s"}`), "redis.timeout: -1s must not be negative"},
		{"redis lease wait", wrap(auth, rule, `"redis":{"url":"redis://x:6379","leaseWait":"-2s"}`), "redis.leaseWait: -2s must not be negative"},
		{"cache stale", wrap(auth, rule, `"cache":{"staleFor":"-1m"}`), "cache.staleFor: -1m0s must not be negative"},
		{"shutdown delay", wrap(auth, rule, `"shutdown":{"delay":"-1s"}`), "shutdown.delay: -1s must not be negative"},
		{"request timeout", wrap(auth, rule, `"limits":{"requestTimeout":"-1s"}`), "limits.requestTimeout: -1s must not be negative"},
		{"redis copies", wrap(auth, rule, `"redis":{"url":"redis://x:6379","copies":-2}`), "redis.copies"},
		{"budget op", wrap(auth, rule, `"budget":{"perSecond":{"Describe":10}}`), `budget.perSecond: "Describe" must be one of CreateSignalingChannel, DescribeSignalingChannel`},
		{"budget zero", wrap(auth, rule, `"budget":{"perSecond":{"GetIceServerConfig":0}}`), "budget.perSecond.GetIceServerConfig"},
		{"budget margin", wrap(auth, rule, `"budget":{"margin":1.5}`), "budget.margin"},
	}
	for _, c := range cases {
		_, err := ParseConfig([]byte(c.json))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: ParseConfig = %v; want an error saying %q", c.name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: the error shows the Redis password: %v", c.name, err)
		}
	}
	if _, err := ParseConfig([]byte(wrap(auth, rule, ""))); err != nil {
		t.Errorf("a minimal config: %v", err)
	}
}

func TestNewErrors(t *testing.T) {
	cfg := baseConfig()
	if _, err := New(cfg, Options{Credentials: testCreds}); err == nil {
		t.Error("New without a backend succeeded")
	}
	if _, err := New(cfg, Options{Backend: newFakeBackend()}); err == nil {
		t.Error("New without credentials succeeded")
	}
	cfg.Auth.JWT = &JWT{Issuer: "i", Audience: []string{"a"}, Algorithms: []string{"HS256"}, HMACSecretEnv: "NOPE"}
	_, err := New(cfg, Options{Backend: newFakeBackend(), Credentials: testCreds, Getenv: func(string) string { return "short" }})
	if err == nil || !strings.Contains(err.Error(), "at least 32 bytes") {
		t.Errorf("New with a short HS256 secret = %v", err)
	}
}

// TestBudgetRates: the budget's defaults are KVS's quotas less the margin,
// overrides win, and a negative rate is unlimited.
func TestBudgetRates(t *testing.T) {
	type rate struct {
		perSecond float64
		limited   bool
	}
	cases := []struct {
		name     string
		b        awsBudget
		op       string
		want     rate
		wantChan rate
	}{
		{"defaults", awsBudget{}, "DescribeSignalingChannel", rate{240, true}, rate{4, true}},
		{"create", awsBudget{}, "CreateSignalingChannel", rate{40, true}, rate{4, true}},
		{"margin", awsBudget{Margin: 0.5}, "GetSignalingChannelEndpoint", rate{150, true}, rate{2.5, true}},
		{"override", awsBudget{PerSecond: map[string]float64{"GetIceServerConfig": 7}, DescribePerChannel: 1}, "GetIceServerConfig", rate{7, true}, rate{1, true}},
		{"unlimited", awsBudget{PerSecond: map[string]float64{"DescribeSignalingChannel": -1}, DescribePerChannel: -1}, "DescribeSignalingChannel", rate{-1, false}, rate{-1, false}},
		{"no account quota", awsBudget{}, "GetIceServerConfig", rate{0, false}, rate{4, true}},
		{"not a KVS call", awsBudget{}, "STS", rate{0, false}, rate{4, true}},
	}
	for _, c := range cases {
		r, ok := c.b.rate(c.op)
		pc, pcOK := c.b.perChannel()
		if diff := cmp.Diff([]rate{c.want, c.wantChan}, []rate{{r, ok}, {pc, pcOK}}, cmp.AllowUnexported(rate{})); diff != "" {
			t.Errorf("%s: (-want +got)\n%s", c.name, diff)
		}
	}
}
