package emulator

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kvssign/kvssign/kvs"
)

// wireFrames are client frames the fast scanner takes and frames it must
// leave to kvs.DecodeClientMessage.
var wireFrames = []struct {
	frame string
	fast  bool // taken by scanClientFrame
}{
	{`{"action":"ICE_CANDIDATE","messagePayload":"eyJjYW5kaWRhdGUiOiJ4In0="}`, true},
	{` { "action" : "SDP_OFFER" , "recipientClientId":"v-1", "messagePayload":"abc=", "correlationId":"c.1" } `, true},
	{"{\n\t\"action\":\"SDP_ANSWER\",\r\n\"messagePayload\":\"x\"}\n", true},
	{`{}`, true},
	{`{"action":"BOGUS","messagePayload":""}`, true},
	{`{"Action":"ICE_CANDIDATE","MessagePayload":"abc"}`, false},
	{`{"action":"ICE_CANDIDATE","action":"SDP_OFFER"}`, false},
	{`{"action":"ICE\u005fCANDIDATE","messagePayload":"abc"}`, false},
	{`{"action":"ICE_CANDIDATE","messagePayload":"é"}`, false},
	{`{"action":"ICE_CANDIDATE","messagePayload":null}`, false},
	{`{"action":"ICE_CANDIDATE","messagePayload":1}`, false},
	{`{"action":"ICE_CANDIDATE","extra":{"a":[1,2]},"messagePayload":"abc"}`, false},
	{`{"action":"ICE_CANDIDATE",}`, false},
	{`{"action":"ICE_CANDIDATE"} x`, false},
	{`{"action":"ICE_CANDIDATE"`, false},
	{`{"action" "ICE_CANDIDATE"}`, false},
	{`["action"]`, false},
	{``, false},
	{`{"action":"ICE_CANDIDATE","messagePayload":"a"}{}`, false},
}

func TestDecodeClientFrameMatchesKVS(t *testing.T) {
	for _, tc := range wireFrames {
		t.Run(tc.frame, func(t *testing.T) {
			_, fast := scanClientFrame([]byte(tc.frame))
			if fast != tc.fast {
				t.Errorf("scanClientFrame took it: %v, want %v", fast, tc.fast)
			}
			checkSameDecode(t, []byte(tc.frame))
		})
	}
}

// checkSameDecode checks that decodeClientFrame and kvs.DecodeClientMessage
// agree on data.
func checkSameDecode(t *testing.T, data []byte) {
	t.Helper()
	got, gotErr := decodeClientFrame(data)
	want, wantErr := kvs.DecodeClientMessage(data)
	if (gotErr != nil) != (wantErr != nil) {
		t.Fatalf("decodeClientFrame(%q) error %v; kvs.DecodeClientMessage error %v", data, gotErr, wantErr)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("decodeClientFrame(%q) differs from kvs.DecodeClientMessage (-kvs +fast):\n%s", data, diff)
	}
}

var wireMessages = []kvs.ServerMessage{
	{MessageType: kvs.ActionICECandidate, MessagePayload: "eyJjYW5kaWRhdGUiOiJ4In0=", SenderClientID: "viewer-1"},
	{MessageType: kvs.ActionSDPOffer, MessagePayload: "abc"},
	{MessageType: kvs.TypeGoAway},
	{},
	{MessageType: kvs.ActionSDPAnswer, MessagePayload: "<script>&"},
	{MessageType: kvs.ActionSDPAnswer, MessagePayload: "quote\" back\\slash"},
	{MessageType: kvs.ActionSDPAnswer, MessagePayload: "é\u2028\x01\xff"},
	{MessageType: kvs.TypeStatusResponse, StatusResponse: &kvs.StatusResponse{CorrelationID: "c1", ErrorType: "InvalidArgumentException", StatusCode: "400", Description: "bad"}},
}

func TestAppendServerMessageMatchesMarshal(t *testing.T) {
	for _, m := range wireMessages {
		checkSameEncode(t, m)
	}
}

// checkSameEncode checks that appendServerMessage writes what json.Marshal
// does, after a prefix it must keep.
func checkSameEncode(t *testing.T, m kvs.ServerMessage) {
	t.Helper()
	want, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := appendServerMessage([]byte("prefix"), m)
	if err != nil {
		t.Fatalf("appendServerMessage(%+v): %v", m, err)
	}
	if string(got) != "prefix"+string(want) {
		t.Fatalf("appendServerMessage(%+v) = %s; json.Marshal: %s", m, got, want)
	}
}

func FuzzDecodeClientFrame(f *testing.F) {
	for _, tc := range wireFrames {
		f.Add([]byte(tc.frame))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkSameDecode(t, data)
	})
}

func FuzzAppendServerMessage(f *testing.F) {
	for _, m := range wireMessages {
		f.Add(m.MessageType, m.MessagePayload, m.SenderClientID)
	}
	f.Fuzz(func(t *testing.T, typ, payload, sender string) {
		checkSameEncode(t, kvs.ServerMessage{MessageType: typ, MessagePayload: payload, SenderClientID: sender})
	})
}

func BenchmarkDecodeClientFrame(b *testing.B) {
	frame := []byte(`{"action":"ICE_CANDIDATE","recipientClientId":"viewer-1","messagePayload":"eyJjYW5kaWRhdGUiOiJjYW5kaWRhdGU6ODQyMTYzMDQ5IDEgdWRwIDE2Nzc3Mjk1MzUgMTI3LjAuMC4xIDU0MzIxIHR5cCBzcmZseCIsInNkcE1pZCI6IjAiLCJzZHBNTGluZUluZGV4IjowfQ=="}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeClientFrame(frame); err != nil {
			b.Fatal(err)
		}
	}
}
