package vend

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/kvssign/kvssign/kvs"
)

// BenchmarkDecode is the request body's decoding alone.
func BenchmarkDecode(b *testing.B) {
	s := &Server{maxBody: 4096}
	body := []byte(`{"channel":"cam-1","role":"VIEWER","clientId":"token-alice.bench"}`)
	r, _ := http.NewRequest("POST", "http://127.0.0.1/v1/connections", nil)
	r.Header.Set("Content-Type", "application/json")
	br := bytes.NewReader(body)
	b.ReportAllocs()
	for b.Loop() {
		br.Reset(body)
		r.Body = io.NopCloser(br)
		r.ContentLength = int64(len(body))
		if _, status, _, _, _ := s.decode(r); status != 0 {
			b.Fatal(status)
		}
	}
}

// BenchmarkWriteConnection is the 200 answer's encoding alone.
func BenchmarkWriteConnection(b *testing.B) {
	s := &Server{}
	c := &connectionResponse{
		URL:       "wss://v-1a2b3c4d.kinesisvideo.us-west-2.amazonaws.com/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-ChannelARN=arn%3Aaws%3Akinesisvideo%3Aus-west-2%3A123456789012%3Achannel%2Fcam-1%2F1700000000000&X-Amz-ClientId=token-alice.bench&X-Amz-Credential=AKIDEXAMPLE%2F20261123%2Fus-west-2%2Fkinesisvideo%2Faws4_request&X-Amz-Date=20261123T100000Z&X-Amz-Expires=299&X-Amz-SignedHeaders=host&X-Amz-Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		ExpiresAt: time.Date(2026, 11, 23, 10, 4, 59, 0, time.UTC), Role: kvs.Viewer, ClientID: "token-alice.bench",
		ChannelARN: testARN("cam-1"), Region: "us-west-2", Endpoint: "wss://v-1a2b3c4d.kinesisvideo.us-west-2.amazonaws.com",
		ICEServers: testICE,
	}
	w := &benchWriter{h: make(http.Header, 4)}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		s.writeConnection(w, c)
	}
}
