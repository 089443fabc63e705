package emulator

import (
	"encoding/json"
	"testing"

	"github.com/kvssign/kvssign/kvs"
)

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

func FuzzAppendServerMessage(f *testing.F) {
	for _, m := range wireMessages {
		f.Add(m.MessageType, m.MessagePayload, m.SenderClientID)
	}
	f.Fuzz(func(t *testing.T, typ, payload, sender string) {
		checkSameEncode(t, kvs.ServerMessage{MessageType: typ, MessagePayload: payload, SenderClientID: sender})
	})
}

func BenchmarkAppendServerMessage(b *testing.B) {
	m := wireMessages[0]
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = appendServerMessage(buf[:0], m)
	}
}

func BenchmarkMarshalServerMessage(b *testing.B) {
	m := wireMessages[0]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(m); err != nil {
			b.Fatal(err)
		}
	}
}
