package emulator_test

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/coder/websocket"

	"github.com/kvssign/kvssign/emulator"
	"github.com/kvssign/kvssign/kvs"
)

func TestStateSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	e1, err := emulator.New(emulator.Config{StateFile: path})
	if err != nil {
		t.Fatal(err)
	}
	if err := e1.Start(); err != nil {
		t.Fatal(err)
	}
	arn := mustCreate(t, e1, "kept")
	gone := mustCreate(t, e1, "gone")
	before, err := sdkClient(e1, exampleCreds()).DescribeSignalingChannel(ctxT(t), &kinesisvideo.DescribeSignalingChannelInput{ChannelARN: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sdkClient(e1, exampleCreds()).DeleteSignalingChannel(ctxT(t), &kinesisvideo.DeleteSignalingChannelInput{ChannelARN: aws.String(gone)}); err != nil {
		t.Fatal(err)
	}
	e1.Close()

	e2 := start(t, emulator.Config{StateFile: path})
	after, err := sdkClient(e2, exampleCreds()).DescribeSignalingChannel(ctxT(t), &kinesisvideo.DescribeSignalingChannelInput{ChannelName: aws.String("kept")})
	if err != nil {
		t.Fatalf("describe after restart: %v", err)
	}
	b, a := before.ChannelInfo, after.ChannelInfo
	if *a.ChannelARN != *b.ChannelARN || *a.Version != *b.Version || !a.CreationTime.Equal(*b.CreationTime) ||
		*a.SingleMasterConfiguration.MessageTtlSeconds != *b.SingleMasterConfiguration.MessageTtlSeconds {
		t.Errorf("after restart %+v; before %+v", a, b)
	}
	if _, err := sdkClient(e2, exampleCreds()).DescribeSignalingChannel(ctxT(t), &kinesisvideo.DescribeSignalingChannelInput{ChannelARN: aws.String(gone)}); err == nil {
		t.Error("deleted channel came back after restart")
	}
	// The endpoints are stable across restarts too (same id, new port).
	ep := endpoint(t, e2, arn, kvs.Master, "WSS")
	if !strings.Contains(ep, "/signaling/master/m-") {
		t.Errorf("endpoint %q", ep)
	}
	connectMaster(t, e2, arn)
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("state dir holds %d files; want only the state file (no temp files left)", len(entries))
	}
}

func TestStateFileErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct{ name, content, want string }{
		{"truncated", `{"format":1,"region":"us-west-2"`, "corrupt"},
		{"not json", "garbage", "corrupt"},
		{"unknown field", `{"format":1,"region":"us-west-2","account":"123456789012","channels":[],"extra":1}`, "corrupt"},
		{"other region", `{"format":1,"region":"eu-west-1","account":"123456789012","channels":[]}`, "region eu-west-1"},
		{"future format", `{"format":2,"region":"us-west-2","account":"123456789012","channels":[]}`, "format 2"},
		{"bad channel", `{"format":1,"region":"us-west-2","account":"123456789012","channels":[{"name":"x y","arn":"a","creationTimeMs":1,"messageTtlSeconds":60,"version":"v","endpointId":"01234567"}]}`, "channel 0"},
		{"arn mismatch", `{"format":1,"region":"us-west-2","account":"123456789012","channels":[{"name":"x","arn":"arn:aws:kinesisvideo:us-west-2:123456789012:channel/y/1","creationTimeMs":1,"messageTtlSeconds":60,"version":"v","endpointId":"01234567"}]}`, "arn does not match"},
		{"bad stream retention", `{"format":1,"region":"us-west-2","account":"123456789012","channels":[],"streams":[{"name":"s","arn":"arn:aws:kinesisvideo:us-west-2:123456789012:stream/s/1","creationTimeMs":1,"dataRetentionInHours":-1,"version":"v"}]}`, "stream 0 (\"s\"): dataRetentionInHours"},
		{"bad media storage", `{"format":1,"region":"us-west-2","account":"123456789012","channels":[{"name":"x","arn":"arn:aws:kinesisvideo:us-west-2:123456789012:channel/x/1","creationTimeMs":1,"messageTtlSeconds":60,"version":"v","endpointId":"01234567","mediaStorage":{"status":"ON"}}]}`, "mediaStorage.status"},
	}
	for _, tc := range cases {
		_, err := emulator.New(emulator.Config{StateFile: write(tc.name+".json", tc.content)})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: New = %v; want an error containing %q", tc.name, err, tc.want)
		}
	}
	// Missing and empty files mean no channels.
	for _, p := range []string{filepath.Join(dir, "missing.json"), write("empty.json", "")} {
		if _, err := emulator.New(emulator.Config{StateFile: p}); err != nil {
			t.Errorf("New with %s: %v", p, err)
		}
	}
}

func TestTLS(t *testing.T) {
	certFile := filepath.Join(t.TempDir(), "emulator.pem")
	e := start(t, emulator.Config{TLS: true, CertFile: certFile, ConnectRate: -1})
	if !strings.HasPrefix(e.URL(), "https://127.0.0.1:") {
		t.Fatalf("URL = %q", e.URL())
	}
	pem, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("cert file holds no certificate")
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	kv := kinesisvideo.New(kinesisvideo.Options{
		Region: e.Region(), BaseEndpoint: aws.String(e.URL()), Retryer: aws.NopRetryer{},
		Credentials: sdkClient(e, exampleCreds()).Options().Credentials,
		HTTPClient:  awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) { tr.TLSClientConfig = &tls.Config{RootCAs: pool} }),
	})
	out, err := kv.CreateSignalingChannel(ctxT(t), &kinesisvideo.CreateSignalingChannelInput{ChannelName: aws.String("secure")})
	if err != nil {
		t.Fatalf("CreateSignalingChannel over TLS: %v", err)
	}
	ep, err := kv.GetSignalingChannelEndpoint(ctxT(t), &kinesisvideo.GetSignalingChannelEndpointInput{ChannelARN: out.ChannelARN})
	if err != nil {
		t.Fatal(err)
	}
	var wss string
	for _, r := range ep.ResourceEndpointList {
		switch r.Protocol {
		case "WSS":
			wss = *r.ResourceEndpoint
		case "HTTPS":
			if !strings.HasPrefix(*r.ResourceEndpoint, "https://127.0.0.1:") {
				t.Errorf("HTTPS endpoint %q", *r.ResourceEndpoint)
			}
		}
	}
	if !strings.HasPrefix(wss, "wss://127.0.0.1:") {
		t.Fatalf("WSS endpoint %q", wss)
	}
	p := kvs.Presigner{Credentials: exampleCreds()}
	u, err := p.Presign(ctxT(t), wss, *out.ChannelARN, kvs.Master, "")
	if err != nil {
		t.Fatal(err)
	}
	ws, _, err := websocket.Dial(ctxT(t), u.URL, &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		t.Fatalf("dial wss: %v", err)
	}
	ws.Close(websocket.StatusNormalClosure, "")
	if got := e.CertificatePEM(); string(got) != string(pem) {
		t.Error("CertificatePEM differs from the cert file")
	}
}

// BenchmarkCreateChannelsWithState creates n channels with a state file,
// for n growing tenfold: the cost per channel stays flat when the state
// file's I/O is O(N) in all, and grows with n when each change rewrites
// the whole file.
func BenchmarkCreateChannelsWithState(b *testing.B) {
	for _, n := range []int{100, 1000, 5000} {
		b.Run(fmt.Sprintf("channels=%d", n), func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				e, err := emulator.New(emulator.Config{StateFile: filepath.Join(b.TempDir(), "state.json"), DisableTURN: true})
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				for i := range n {
					if _, err := e.CreateChannel(fmt.Sprintf("ch-%05d", i), 0); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				e.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/channel")
		})
	}
}
