package emulator_test

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"

	"github.com/kvssign/kvssign/emulator"
	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/sigv4"
)

var fuzzPaths = []string{
	"/createSignalingChannel", "/describeSignalingChannel", "/getSignalingChannelEndpoint",
	"/listSignalingChannels", "/deleteSignalingChannel", "/ice/r-00000000/v1/get-ice-server-config", "/",
	"/updateSignalingChannel", "/TagResource", "/UntagResource", "/ListTagsForResource",
	"/ice/r-00000000/v1/send-alexa-offer-to-master",
	"/createStream", "/describeStream", "/deleteStream", "/listStreams",
	"/updateMediaStorageConfiguration", "/describeMediaStorageConfiguration",
}

// FuzzControlPlane sends correctly signed requests with arbitrary bodies to
// every control-plane operation, GetIceServerConfig and STS, in process.
// Whatever the body, the answer is a 2xx or 4xx with a well-formed body,
// never a 5xx or a panic.
func FuzzControlPlane(f *testing.F) {
	seeds := []struct {
		op   uint8
		body string
	}{
		{0, `{"ChannelName":"fuzz","ChannelType":"SINGLE_MASTER","SingleMasterConfiguration":{"MessageTtlSeconds":60},"Tags":[{"Key":"k","Value":"v"}]}`},
		{0, `{"ChannelName":"x","Tags":[{"Key":null}]}`},
		{1, `{"ChannelName":"fuzz"}`},
		{1, `{"ChannelARN":"arn:aws:kinesisvideo:us-west-2:123456789012:channel/fuzz/1"}`},
		{2, `{"ChannelARN":"arn:aws:kinesisvideo:us-west-2:123456789012:channel/fuzz/1","SingleMasterChannelEndpointConfiguration":{"Protocols":["WSS","HTTPS"],"Role":"VIEWER"}}`},
		{3, `{"MaxResults":1,"NextToken":"YWZ0ZXI6eA","ChannelNameCondition":{"ComparisonOperator":"BEGINS_WITH","ComparisonValue":"f"}}`},
		{4, `{"ChannelARN":"arn:aws:kinesisvideo:us-west-2:123456789012:channel/fuzz/1","CurrentVersion":"abc"}`},
		{5, `{"ChannelARN":"arn:aws:kinesisvideo:us-west-2:123456789012:channel/fuzz/1","ClientId":"c","Service":"TURN"}`},
		{6, `Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fr&RoleSessionName=s&DurationSeconds=900`},
		{6, `Action=GetSessionToken&DurationSeconds=abc`},
		{6, `Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fr&RoleSessionName=s&Policy=%7B%22Statement%22%3A%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22*%22%2C%22Resource%22%3A%22*%22%7D%7D`},
		{6, `Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fr&RoleSessionName=s&Policy=%7B%22Statement%22%3A%5B%5D%7D`},
		{7, `{"ChannelARN":"arn:aws:kinesisvideo:us-west-2:123456789012:channel/fuzz/1","CurrentVersion":"abc","SingleMasterConfiguration":{"MessageTtlSeconds":30}}`},
		{8, `{"ResourceARN":"arn:aws:kinesisvideo:us-west-2:123456789012:channel/fuzz/1","Tags":[{"Key":"k","Value":"v"}]}`},
		{9, `{"ResourceARN":"arn:aws:kinesisvideo:us-west-2:123456789012:channel/fuzz/1","TagKeyList":["k",null]}`},
		{10, `{"ResourceARN":"arn:aws:kinesisvideo:us-west-2:123456789012:channel/fuzz/1","NextToken":""}`},
		{11, `{"ChannelARN":"arn:aws:kinesisvideo:us-west-2:123456789012:channel/fuzz/1","SenderClientId":"a","MessagePayload":"eyJ9"}`},
		{12, `{"StreamName":"fuzz-s","DataRetentionInHours":24,"MediaType":"video/h264","KmsKeyId":"k","DeviceName":"d","Tags":{"k":"v"}}`},
		{13, `{"StreamName":"fuzz-s"}`},
		{13, `{"StreamARN":"arn:aws:kinesisvideo:us-west-2:123456789012:stream/fuzz-s/1"}`},
		{14, `{"StreamARN":"arn:aws:kinesisvideo:us-west-2:123456789012:stream/fuzz-s/1","CurrentVersion":"abc"}`},
		{15, `{"MaxResults":1,"NextToken":"YWZ0ZXI6eA","StreamNameCondition":{"ComparisonOperator":"BEGINS_WITH","ComparisonValue":"f"}}`},
		{16, `{"ChannelARN":"arn:aws:kinesisvideo:us-west-2:123456789012:channel/fuzz/1","MediaStorageConfiguration":{"Status":"ENABLED","StreamARN":"arn:aws:kinesisvideo:us-west-2:123456789012:stream/fuzz-s/1"}}`},
		{16, `{"ChannelARN":"arn:aws:kinesisvideo:us-west-2:123456789012:channel/fuzz/1","MediaStorageConfiguration":{"Status":"DISABLED"}}`},
		{17, `{"ChannelName":"fuzz"}`},
		{2, `{"ChannelARN":"arn:aws:kinesisvideo:us-west-2:123456789012:channel/fuzz/1","SingleMasterChannelEndpointConfiguration":{"Protocols":["WEBRTC"],"Role":"MASTER"}}`},
		{0, `{"ChannelName":1e999}`}, {3, `{"MaxResults":-1}`}, {0, ``}, {1, `null`}, {2, `{"a":[[[[[[]]]]]]}`}, {6, `%zz`},
	}
	for _, s := range seeds {
		f.Add(s.op, []byte(s.body))
	}
	// A policy that refuses deletion and the ICE configuration, so that
	// the refusal path is fuzzed too.
	e, err := emulator.New(emulator.Config{STSMinDuration: 1, Policy: `{"Statement":[
		{"Effect":"Allow","Action":"kinesisvideo:*","Resource":"*"},
		{"Effect":"Deny","Action":["kinesisvideo:DeleteSignalingChannel","kinesisvideo:GetIceServerConfig"],"Resource":"*"}]}`})
	if err != nil {
		f.Fatal(err)
	}
	if _, err := e.CreateChannel("fuzz", 0); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, op uint8, body []byte) {
		path := fuzzPaths[int(op)%len(fuzzPaths)]
		req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:1"+path, strings.NewReader(string(body)))
		service := kvs.Service
		if path == "/" {
			service = "sts"
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		} else {
			req.Header.Set("Content-Type", "application/json")
		}
		s := sigv4.Signer{Service: service, Region: "us-west-2"}
		if err := s.SignRequest(context.Background(), exampleCreds(), req, ""); err != nil {
			t.Fatal(err)
		}
		w := httptest.NewRecorder()
		e.ServeHTTP(w, req)
		if w.Code >= 500 || w.Code < 200 {
			t.Fatalf("POST %s %q: status %d %s", path, body, w.Code, w.Body)
		}
		if path == "/" {
			var v struct{ XMLName xml.Name }
			if err := xml.Unmarshal(w.Body.Bytes(), &v); err != nil {
				t.Fatalf("POST / %q: body %q is not XML: %v", body, w.Body, err)
			}
			return
		}
		if !json.Valid(w.Body.Bytes()) {
			t.Fatalf("POST %s %q: body %q is not JSON", path, body, w.Body)
		}
		if w.Code != 200 && w.Header().Get("x-amzn-ErrorType") == "" {
			t.Fatalf("POST %s %q: error %d without x-amzn-ErrorType", path, body, w.Code)
		}
	})
}

// FuzzSignalingMessage sends arbitrary frames from a viewer over a real
// socket. The emulator must keep the connection and keep relaying: after
// each frame, a marker from the same viewer reaches the master, and all the
// master received before it is a well-formed relayed message.
func FuzzSignalingMessage(f *testing.F) {
	for _, s := range []string{
		`{"action":"SDP_OFFER","messagePayload":"eyJ0eXBlIjoib2ZmZXIifQ==","correlationId":"1"}`,
		`{"Action":"ICE_CANDIDATE","MessagePayload":"e30=","RecipientClientId":"x","extra":[1,{"a":null}]}`,
		`{"action":"SDP_ANSWER","messagePayload":"` + strings.Repeat("A", 10241) + `","correlationId":"big"}`,
		`{"action":5,"correlationId":"c"}`, `{"action":"GO_AWAY","messagePayload":"e30="}`,
		`not json`, ``, `{`, `[]`, `{"action":"SDP_OFFER","messagePayload":"\ud800"}`,
		`{"action":"SDP_OFFER","messagePayload":"e30=","correlationId":"bad id!"}`,
	} {
		f.Add([]byte(s))
	}
	e, err := emulator.New(emulator.Config{ConnectRate: -1, SDPRate: -1, ICERate: -1})
	if err != nil {
		f.Fatal(err)
	}
	if err := e.Start(); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { e.Close() })
	arn := mustCreate(f, e, "fuzz")
	m := connectMaster(f, e, arn)
	v := connectViewer(f, e, arn, "fz")
	// The viewer's STATUS_RESPONSEs are read in the background; each must
	// decode.
	var mu sync.Mutex
	var badStatus []string
	go func() {
		for {
			_, b, err := v.ws.Read(context.Background())
			if err != nil {
				return
			}
			if sm, err := kvs.DecodeServerMessage(b); err != nil || sm.MessageType != kvs.TypeStatusResponse {
				mu.Lock()
				badStatus = append(badStatus, string(b))
				mu.Unlock()
			}
		}
	}()
	const marker = "bWFya2Vy"
	f.Fuzz(func(t *testing.T, frame []byte) {
		if len(frame) > 60<<10 {
			return // over the read limit, the connection is closed by design
		}
		if err := v.ws.Write(ctxT(t), websocket.MessageText, frame); err != nil {
			t.Fatalf("write: %v", err)
		}
		if err := v.ws.Write(ctxT(t), websocket.MessageText, []byte(`{"action":"ICE_CANDIDATE","messagePayload":"`+marker+`"}`)); err != nil {
			t.Fatalf("write marker: %v", err)
		}
		for {
			_, b, err := m.ws.Read(ctxT(t))
			if err != nil {
				t.Fatalf("master read after frame %q: %v", frame, err)
			}
			sm, err := kvs.DecodeServerMessage(b)
			if err != nil || sm.SenderClientID != "fz" || sm.MessagePayload == "" {
				t.Fatalf("master received %q after frame %q", b, frame)
			}
			if sm.MessagePayload == marker {
				break
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if len(badStatus) > 0 {
			t.Fatalf("viewer received %q", badStatus)
		}
	})
}
