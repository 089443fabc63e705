package kvs

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func TestDecodeClientMessage(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want ClientMessage
	}{
		{"js sdk", `{"action":"SDP_OFFER","messagePayload":"eyJ0eXBlIjoib2ZmZXIifQ==","recipientClientId":"viewer-1","correlationId":"c1"}`,
			ClientMessage{Action: "SDP_OFFER", MessagePayload: "eyJ0eXBlIjoib2ZmZXIifQ==", RecipientClientID: "viewer-1", CorrelationID: "c1"}},
		{"c sdk capitalised keys and extra fields", `{"Action":"ICE_CANDIDATE","RecipientClientId":"v","MessagePayload":"e30=","CorrelationId":"x","ttl":3,"extra":{"a":[1,2,{"b":null}]},"flag":true}`,
			ClientMessage{Action: "ICE_CANDIDATE", RecipientClientID: "v", MessagePayload: "e30=", CorrelationID: "x"}},
		{"upper case keys", `{"ACTION":"SDP_ANSWER","MESSAGEPAYLOAD":"e30="}`, ClientMessage{Action: "SDP_ANSWER", MessagePayload: "e30="}},
		{"null values", `{"action":null,"recipientClientId":null}`, ClientMessage{}},
		{"whitespace", " \t\n{ \"action\" : \"SDP_OFFER\" }\r\n", ClientMessage{Action: "SDP_OFFER"}},
		{"escapes", `{"action":"A\"B\\C\/D\n\u00e9\ud83d\ude00"}`, ClientMessage{Action: "A\"B\\C/D\né😀"}},
		{"escaped key", `{"\u0061ction":"SDP_OFFER"}`, ClientMessage{Action: "SDP_OFFER"}},
		{"lone surrogate", `{"action":"\ud83d"}`, ClientMessage{Action: "\uFFFD"}},
		{"last duplicate wins", `{"action":"SDP_OFFER","Action":"SDP_ANSWER"}`, ClientMessage{Action: "SDP_ANSWER"}},
		{"empty object", `{}`, ClientMessage{}},
		{"null keeps an earlier value", `{"action":"SDP_OFFER","action":null}`, ClientMessage{Action: "SDP_OFFER"}},
		{"escaped long s folds to s", `{"me\u017f\u017fagePayload":"e30="}`, ClientMessage{MessagePayload: "e30="}},
		{"long s folds to s", `{"meſſagepayload":"e30=","ſ":"x"}`, ClientMessage{MessagePayload: "e30="}},
		{"other letters do not fold", `{"\u00e1ction":"SDP_OFFER","act\u0131on":"x"}`, ClientMessage{}},
	}
	// plain has ClientMessage's fields and tags without its UnmarshalJSON,
	// so encoding/json decodes it by itself.
	type plain ClientMessage
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := DecodeClientMessage([]byte(c.in))
			if err != nil {
				t.Fatalf("DecodeClientMessage(%q): %v", c.in, err)
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("DecodeClientMessage(%q) mismatch (-want +got):\n%s", c.in, diff)
			}
			var std plain
			if err := json.Unmarshal([]byte(c.in), &std); err != nil {
				t.Fatalf("encoding/json: %v", err)
			}
			if diff := cmp.Diff(ClientMessage(std), got); diff != "" {
				t.Errorf("DecodeClientMessage(%q) differs from encoding/json (-json +ours):\n%s", c.in, diff)
			}
		})
	}
}

func TestDecodeClientMessageErrors(t *testing.T) {
	cases := []struct{ in, wantErr string }{
		{``, "empty"},
		{`   `, "empty"},
		{`[]`, "not a JSON object"},
		{`"x"`, "not a JSON object"},
		{`{"action":1}`, "field action: must be a string"},
		{`{"messagePayload":{"type":"offer"}}`, "field messagePayload: must be a string"},
		{`{"action":"x"`, "unterminated object"},
		{`{"action":"x}`, "unterminated string"},
		{`{"action":"x"}{}`, "unexpected data after the object"},
		{`{"action" "x"}`, "want ':'"},
		{`{action:"x"}`, "want a string"},
		{`{"a":01}`, "want ',' or '}'"},
		{`{"a":-}`, "bad number"},
		{`{"a":1.}`, "bad number"},
		{`{"a":tru}`, "unexpected character"},
		{`{"action":"\x"}`, "bad escape"},
		{`{"action":"\u12"}`, "bad \\u escape"},
		{"{\"action\":\"a\x01\"}", "control character"},
		{`{"a":[1,2}`, "want ',' or ']'"},
		{`{"a":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, "nested more than"},
	}
	for _, c := range cases {
		_, err := DecodeClientMessage([]byte(c.in))
		if err == nil || !strings.Contains(err.Error(), c.wantErr) || !strings.HasPrefix(err.Error(), "kvs: message") {
			t.Errorf("DecodeClientMessage(%q) error = %v; want one containing %q", c.in, err, c.wantErr)
		}
	}
}

func TestClientMessageValidate(t *testing.T) {
	ok := ClientMessage{Action: ActionSDPOffer, MessagePayload: "e30=", RecipientClientID: "a.b-c_1", CorrelationID: "1"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("Validate(%+v) = %v", ok, err)
	}
	cases := []struct {
		name    string
		mod     func(*ClientMessage)
		wantErr string
	}{
		{"no action", func(m *ClientMessage) { m.Action = "" }, "action is empty: must be SDP_OFFER"},
		{"bad action", func(m *ClientMessage) { m.Action = "sdp_offer" }, `action "sdp_offer": must be one of`},
		{"no payload", func(m *ClientMessage) { m.MessagePayload = "" }, "messagePayload is empty: must be the base64 of a JSON object"},
		{"big payload", func(m *ClientMessage) { m.MessagePayload = strings.Repeat("A", MaxPayloadSize+1) }, "more than the limit of 10240"},
		{"bad recipient", func(m *ClientMessage) { m.RecipientClientID = "a b" }, "recipientClientId \"a b\": must contain only"},
		{"long correlation", func(m *ClientMessage) { m.CorrelationID = strings.Repeat("c", 257) }, "257 characters is more than the limit of 256"},
	}
	for _, c := range cases {
		m := ok
		c.mod(&m)
		err := m.Validate()
		if err == nil || !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("%s: Validate() = %v; want error containing %q", c.name, err, c.wantErr)
		}
	}
	m := ok
	m.MessagePayload = strings.Repeat("A", MaxPayloadSize)
	if err := m.Validate(); err != nil {
		t.Errorf("Validate with a payload of exactly %d bytes = %v", MaxPayloadSize, err)
	}
}

func TestServerMessageJSON(t *testing.T) {
	cases := []struct {
		m    ServerMessage
		want string
	}{
		{ServerMessage{MessageType: TypeGoAway}, `{"messageType":"GO_AWAY"}`},
		{ServerMessage{SenderClientID: "v1", MessageType: ActionSDPOffer, MessagePayload: "e30="},
			`{"messagePayload":"e30=","messageType":"SDP_OFFER","senderClientId":"v1"}`},
		{ServerMessage{MessageType: TypeStatusResponse, StatusResponse: &StatusResponse{CorrelationID: "c", ErrorType: "InvalidArgumentException", StatusCode: "400", Description: "bad <x>"}},
			`{"messageType":"STATUS_RESPONSE","statusResponse":{"correlationId":"c","description":"bad \u003cx\u003e","errorType":"InvalidArgumentException","statusCode":"400"}}`},
		{ServerMessage{}, `{}`},
	}
	for _, c := range cases {
		got, err := json.Marshal(c.m)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != c.want {
			t.Errorf("json.Marshal(%+v) = %s; want %s", c.m, got, c.want)
		}
		back, err := DecodeServerMessage(got)
		if err != nil {
			t.Fatalf("DecodeServerMessage(%s): %v", got, err)
		}
		if diff := cmp.Diff(c.m, back); diff != "" {
			t.Errorf("round trip of %s (-want +got):\n%s", got, diff)
		}
	}
	// A numeric statusCode and capitalised keys are accepted.
	got, err := DecodeServerMessage([]byte(`{"MessageType":"STATUS_RESPONSE","StatusResponse":{"statusCode":400,"errorType":"X","other":[1]},"x":1}`))
	if err != nil {
		t.Fatal(err)
	}
	want := ServerMessage{MessageType: TypeStatusResponse, StatusResponse: &StatusResponse{StatusCode: "400", ErrorType: "X"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("DecodeServerMessage mismatch (-want +got):\n%s", diff)
	}
}

func TestClientMessageJSON(t *testing.T) {
	m := ClientMessage{Action: ActionICECandidate, RecipientClientID: "v", MessagePayload: "e30=", CorrelationID: "c"}
	got, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"action":"ICE_CANDIDATE","correlationId":"c","messagePayload":"e30=","recipientClientId":"v"}`
	if string(got) != want {
		t.Errorf("json.Marshal = %s; want %s", got, want)
	}
	var back ClientMessage
	if err := json.Unmarshal(got, &back); err != nil || back != m {
		t.Errorf("json.Unmarshal(%s) = %+v, %v; want %+v", got, back, err, m)
	}
}

func TestDecodeServerMessageErrors(t *testing.T) {
	cases := []struct{ in, wantErr string }{
		{``, "kvs: message: empty"},
		{` `, "kvs: message: empty"},
		{`[]`, "kvs: message: not a JSON object"},
		{`{"messageType":1}`, "kvs: message field messageType: must be a string"},
		{`{"MessagePayload":{}}`, "kvs: message field messagePayload: must be a string"},
		{`{"statusResponse":"x"}`, "kvs: message field statusResponse: must be an object"},
		{`{"statusResponse":{"errorType":[]}}`, "kvs: message field statusResponse.errorType: must be a string"},
		{`{"statusResponse":{"statusCode":true}}`, "kvs: message field statusResponse.statusCode: must be a string or a number"},
		{`{"messageType":"x"`, "kvs: message: invalid JSON at offset"},
		{`{"messageType":"x"}{}`, "kvs: message: invalid JSON at offset"},
	}
	for _, c := range cases {
		m, err := DecodeServerMessage([]byte(c.in))
		if err == nil || !strings.HasPrefix(err.Error(), c.wantErr) {
			t.Errorf("DecodeServerMessage(%q) error = %v; want one starting %q", c.in, err, c.wantErr)
		}
		if diff := cmp.Diff(ServerMessage{}, m); diff != "" {
			t.Errorf("DecodeServerMessage(%q) returned a message with its error:\n%s", c.in, diff)
		}
	}
}

func TestPayload(t *testing.T) {
	mid, idx := "0", uint16(0)
	in := ICECandidate{Candidate: "candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host", SDPMid: &mid, SDPMLineIndex: &idx}
	p, err := EncodePayload(in)
	if err != nil {
		t.Fatal(err)
	}
	var out ICECandidate
	if err := DecodePayload(p, &out); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, out); diff != "" {
		t.Errorf("payload round trip (-want +got):\n%s", diff)
	}
	// Unpadded base64 is accepted.
	var sd SessionDescription
	if err := DecodePayload("eyJ0eXBlIjoib2ZmZXIiLCJzZHAiOiJ2PTAifQ", &sd); err != nil || sd != (SessionDescription{Type: "offer", SDP: "v=0"}) {
		t.Errorf("DecodePayload(unpadded) = %+v, %v", sd, err)
	}
	for _, bad := range []string{"!!!", "bm90IGpzb24="} {
		if err := DecodePayload(bad, &sd); err == nil || !strings.HasPrefix(err.Error(), "kvs: message payload: not ") {
			t.Errorf("DecodePayload(%q) = %v; want a kvs: message payload error", bad, err)
		}
	}
}

// FuzzDecodeClientMessage checks that the decoder never panics, and that it
// agrees with encoding/json on every document, keys in any script included,
// except where msgjson.go says it differs: a known key holding a non-string
// and nesting deeper than msgMaxDepth are refused.
func FuzzDecodeClientMessage(f *testing.F) {
	for _, s := range []string{
		`{"action":"SDP_OFFER","messagePayload":"e30=","recipientClientId":"v","correlationId":"c"}`,
		`{"Action":"ICE_CANDIDATE","MessagePayload":"e30=","extra":[1,{"a":null}],"n":-1.5e3}`,
		`{"action":"\u0041\ud83d\ude00\n"}`,
		`{"action":null}`,
		`{"action":"SDP_OFFER","action":null}`,
		`{"me\u017f\u017fagePayload":"e30=","\u212a":1}`,
		"{\"me\u017f\u017fagePayload\":\"e30=\",\"\xff\":1}",
		`[1]`, ``, `{`, `{"a":"\ud800"}`, "{\"action\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	type ref struct {
		Action            *json.RawMessage `json:"action"`
		RecipientClientID *json.RawMessage `json:"recipientClientId"`
		MessagePayload    *json.RawMessage `json:"messagePayload"`
		CorrelationID     *json.RawMessage `json:"correlationId"`
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeClientMessage(data)
		if err != nil {
			if m != (ClientMessage{}) {
				t.Fatalf("error %v with a non-zero message", err)
			}
			if json.Valid(data) && bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte("{")) {
				var r ref
				if json.Unmarshal(data, &r) == nil && !strings.Contains(err.Error(), "must be a string") && !strings.Contains(err.Error(), "nested") {
					t.Fatalf("rejected valid JSON %q: %v", data, err)
				}
			}
			return
		}
		if !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		var want struct{ Action, RecipientClientID, MessagePayload, CorrelationID string }
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatalf("encoding/json rejects %q (%v); DecodeClientMessage gave %+v", data, err, m)
		}
		// encoding/json matches "recipientclientid" to RecipientClientID too.
		if m != (ClientMessage{Action: want.Action, RecipientClientID: want.RecipientClientID, MessagePayload: want.MessagePayload, CorrelationID: want.CorrelationID}) {
			t.Fatalf("DecodeClientMessage(%q) = %+v; encoding/json gives %+v", data, m, want)
		}
		// Re-encoding and decoding gives the same message.
		enc, _ := json.Marshal(m)
		back, err := DecodeClientMessage(enc)
		if err != nil || back != m {
			t.Fatalf("round trip of %+v via %s = %+v, %v", m, enc, back, err)
		}
		if !utf8.ValidString(m.Action + m.RecipientClientID + m.MessagePayload + m.CorrelationID) {
			t.Fatalf("decoded invalid UTF-8 from %q", data)
		}
	})
}

func FuzzDecodeServerMessage(f *testing.F) {
	f.Add([]byte(`{"messagePayload":"e30=","messageType":"SDP_OFFER","senderClientId":"v1"}`))
	f.Add([]byte(`{"messageType":"STATUS_RESPONSE","statusResponse":{"correlationId":"c","statusCode":400}}`))
	f.Add([]byte(`{"statusResponse":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeServerMessage(data)
		if err != nil {
			return
		}
		if !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		enc, _ := json.Marshal(m)
		back, err := DecodeServerMessage(enc)
		if err != nil {
			t.Fatalf("re-decoding %s: %v", enc, err)
		}
		if diff := cmp.Diff(m, back); diff != "" {
			t.Fatalf("round trip via %s (-want +got):\n%s", enc, diff)
		}
	})
}

var benchClient = []byte(`{"action":"ICE_CANDIDATE","recipientClientId":"viewer-0123456789","messagePayload":"eyJjYW5kaWRhdGUiOiJjYW5kaWRhdGU6MSAxIHVkcCAyMTMwNzA2NDMxIDEyNy4wLjAuMSA1MDAwMCB0eXAgaG9zdCIsInNkcE1pZCI6IjAiLCJzZHBNTGluZUluZGV4IjowfQ==","correlationId":"1700000000000"}`)

func BenchmarkDecodeClientMessage(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchClient)))
	for b.Loop() {
		if _, err := DecodeClientMessage(benchClient); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeClientMessageStdlib is the encoding/json baseline.
func BenchmarkDecodeClientMessageStdlib(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchClient)))
	for b.Loop() {
		var m struct {
			Action            string `json:"action"`
			RecipientClientID string `json:"recipientClientId"`
			MessagePayload    string `json:"messagePayload"`
			CorrelationID     string `json:"correlationId"`
		}
		if err := json.Unmarshal(benchClient, &m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeServerMessage(b *testing.B) {
	m := ServerMessage{SenderClientID: "viewer-0123456789", MessageType: ActionICECandidate, MessagePayload: "eyJjYW5kaWRhdGUiOiJjYW5kaWRhdGU6MSAxIHVkcCAyMTMwNzA2NDMxIDEyNy4wLjAuMSA1MDAwMCB0eXAgaG9zdCIsInNkcE1pZCI6IjAiLCJzZHBNTGluZUluZGV4IjowfQ=="}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodePayload(b *testing.B) {
	mid, idx := "0", uint16(0)
	c := ICECandidate{Candidate: "candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host", SDPMid: &mid, SDPMLineIndex: &idx}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodePayload(c); err != nil {
			b.Fatal(err)
		}
	}
}
