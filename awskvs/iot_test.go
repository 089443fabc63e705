package awskvs_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/coder/websocket"

	"github.com/kvssign/kvssign/awskvs"
	"github.com/kvssign/kvssign/emulator"
	"github.com/kvssign/kvssign/emulator/emulatortest"
	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/signaling"
)

// thingPolicy confines a camera to its own channel: it may look channels
// up, but connect as master only to the one named after its thing.
const thingPolicy = `{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["kinesisvideo:DescribeSignalingChannel","kinesisvideo:GetSignalingChannelEndpoint","kinesisvideo:GetIceServerConfig"],
  "Resource":"arn:aws:kinesisvideo:*:*:channel/*"},
 {"Effect":"Allow","Action":"kinesisvideo:ConnectAsMaster",
  "Resource":"arn:aws:kinesisvideo:*:*:channel/${credentials-iot:ThingName}/*"}]}`

const camRole = "arn:aws:iam::123456789012:role/kvs-camera"

// fakeClock is real time shifted by an offset the test advances, shared
// by the emulator and the clients so that expiry is judged alike.
type fakeClock struct {
	mu   sync.Mutex
	base time.Time // zero: real time
	off  time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.base.IsZero() {
		return time.Now().Add(c.off)
	}
	return c.base.Add(c.off)
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// issuedLog records when the emulator issued IoT credentials, by its clock.
type issuedLog struct {
	mu    sync.Mutex
	times []time.Time
	d     time.Duration // the role alias's duration
}

func (l *issuedLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *issuedLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *issuedLog) WithGroup(string) slog.Handler            { return l }
func (l *issuedLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "iot issued credentials" {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "expires" {
			l.mu.Lock()
			l.times = append(l.times, a.Value.Time().Add(-l.d))
			l.mu.Unlock()
		}
		return true
	})
	return nil
}

func (l *issuedLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.times)
}

// iotEmulator starts an emulator with things cam-1 and cam-2, the role
// alias kvs-camera lasting d, thingPolicy, and channels cam-1 and cam-2.
// It returns the folder holding the CA and the certificates.
func iotEmulator(t testing.TB, clock func() time.Time, d time.Duration, log *issuedLog) (*emulator.Emulator, string) {
	t.Helper()
	dir := t.TempDir()
	cfg := emulator.Config{Policy: thingPolicy, Clock: clock, ConnectRate: -1, IoT: &emulator.IoTConfig{
		Dir: dir, Things: []string{"cam-1", "cam-2"},
		RoleAliases: []emulator.IoTRoleAlias{{Name: "kvs-camera", RoleARN: camRole, Duration: d}},
	}}
	if log != nil {
		log.d = d
		cfg.Logger = slog.New(log)
	}
	e := emulatortest.New(t, cfg)
	for _, ch := range []string{"cam-1", "cam-2"} {
		if _, err := e.CreateChannel(ch, 0); err != nil {
			t.Fatal(err)
		}
	}
	return e, dir
}

func thingConfig(e *emulator.Emulator, dir, thing string) awskvs.IoTConfig {
	return awskvs.IoTConfig{Endpoint: e.IoTURL(), CertFile: filepath.Join(dir, thing+".cert.pem"), KeyFile: filepath.Join(dir, thing+".private.key"),
		CAFile: filepath.Join(dir, "ca.pem"), RoleAlias: "kvs-camera", ThingName: thing}
}

func newIoT(t testing.TB, c awskvs.IoTConfig) *awskvs.IoTProvider {
	t.Helper()
	p, err := awskvs.NewIoTProvider(c)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// iotResolver is a Resolver for the emulator signing with p.
func iotResolver(t testing.TB, e *emulator.Emulator, p *awskvs.IoTProvider) *awskvs.Resolver {
	t.Helper()
	cfg, err := awskvs.LoadConfig(context.Background(), awskvs.ConfigOptions{Region: e.Region(), EndpointURL: e.URL()})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Credentials = p
	r := awskvs.NewResolver(cfg)
	r.Credentials = p.SigV4()
	return r
}

// handshake returns the HTTP status of a signaling handshake with url.
func handshake(t testing.TB, url string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, nil)
	if err == nil {
		c.Close(websocket.StatusNormalClosure, "")
		return 101
	}
	if resp == nil {
		t.Fatalf("handshake: %v", redactErr(err))
	}
	return resp.StatusCode
}

func TestIoTThingConfinedToItsChannel(t *testing.T) {
	e, dir := iotEmulator(t, nil, time.Hour, nil)
	p := newIoT(t, thingConfig(e, dir, "cam-1"))
	creds, err := p.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(creds.AccessKeyID, "ASIA") || creds.SessionToken == "" || !creds.CanExpire {
		t.Errorf("credentials %s (token %t, expire %t); want temporary ASIA… ones", creds.AccessKeyID, creds.SessionToken != "", creds.CanExpire)
	}
	if life := time.Until(creds.Expires); life < 59*time.Minute || life > time.Hour {
		t.Errorf("credentials last %v; want the role alias's hour", life)
	}
	r := iotResolver(t, e, p)
	for _, tc := range []struct {
		channel string
		want    int
	}{{"cam-1", 101}, {"cam-2", 403}} {
		s, err := r.Presign(context.Background(), tc.channel, kvs.Master, "")
		if err != nil {
			t.Fatalf("Presign %s: %v", tc.channel, err)
		}
		if got := handshake(t, s.URL); got != tc.want {
			t.Errorf("cam-1 connecting as master to %s: HTTP %d; want %d", tc.channel, got, tc.want)
		}
	}

	// Without the thing name header, ${credentials-iot:ThingName} has no
	// value and matches nothing, as in IAM.
	c := thingConfig(e, dir, "cam-1")
	c.ThingName = ""
	r = iotResolver(t, e, newIoT(t, c))
	s, err := r.Presign(context.Background(), "cam-1", kvs.Master, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := handshake(t, s.URL); got != 403 {
		t.Errorf("credentials without a thing name connecting to cam-1: HTTP %d; want 403", got)
	}
}

// foreignCert writes a certificate and key from a CA the emulator does
// not know.
func foreignCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "stranger"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "stranger.pem"), filepath.Join(dir, "stranger.key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o600)
	return certFile, keyFile
}

func writeCert(t *testing.T, dir, name string, c emulator.IoTCertificate) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, c.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, c.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestIoTRefusals(t *testing.T) {
	e, dir := iotEmulator(t, nil, time.Hour, nil)
	stranger, strangerKey := foreignCert(t, dir)
	revoked, err := e.IssueIoTCertificate("cam-3", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.RevokeIoTCertificates(revoked.ID, ""); err != nil {
		t.Fatal(err)
	}
	revokedCert, revokedKey := writeCert(t, dir, "revoked", revoked)
	expired, err := e.IssueIoTCertificate("cam-4", time.Now().Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	expiredCert, expiredKey := writeCert(t, dir, "expired", expired)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()

	tests := []struct {
		name   string
		change func(*awskvs.IoTConfig)
		kind   error
		field  string
		text   string
	}{
		{"not issued by the emulator", func(c *awskvs.IoTConfig) { c.CertFile, c.KeyFile = stranger, strangerKey },
			awskvs.ErrAccessDenied, "CertFile", "Certificate is invalid on this endpoint"},
		{"revoked", func(c *awskvs.IoTConfig) { c.CertFile, c.KeyFile, c.ThingName = revokedCert, revokedKey, "cam-3" },
			awskvs.ErrAccessDenied, "CertFile", "revoked"},
		{"expired, seen by the device", func(c *awskvs.IoTConfig) { c.CertFile, c.KeyFile, c.ThingName = expiredCert, expiredKey, "cam-4" },
			awskvs.ErrCertificateExpired, "CertFile", "expired at"},
		{"expired, seen by the endpoint", func(c *awskvs.IoTConfig) {
			c.CertFile, c.KeyFile, c.ThingName = expiredCert, expiredKey, "cam-4"
			c.Clock = func() time.Time { return time.Now().Add(-time.Hour) } // a device clock an hour slow
		}, awskvs.ErrCertificateExpired, "CertFile", "expired"},
		{"unknown role alias", func(c *awskvs.IoTConfig) { c.RoleAlias = "nope" }, awskvs.ErrNotFound, "RoleAlias", "Role alias does not exist"},
		{"thing not attached", func(c *awskvs.IoTConfig) { c.ThingName = "cam-2" }, awskvs.ErrAccessDenied, "ThingName", "not attached"},
		{"endpoint unreachable", func(c *awskvs.IoTConfig) { c.Endpoint = "https://" + closed }, awskvs.ErrUnreachable, "Endpoint", "refused"},
		{"endpoint not trusted", func(c *awskvs.IoTConfig) { c.CAFile = "" }, awskvs.ErrInvalidArgument, "CAFile", "not signed by a trusted CA"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := thingConfig(e, dir, "cam-1")
			tc.change(&c)
			_, err := newIoT(t, c).Retrieve(context.Background())
			var ie *awskvs.IoTError
			if !errors.As(err, &ie) || !errors.Is(err, tc.kind) || ie.Field != tc.field || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("Retrieve: %v; want an IoTError of kind %v, field %s, saying %q", err, tc.kind, tc.field, tc.text)
			}
			for _, secret := range []string{"PRIVATE KEY", "BEGIN"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q shows %s", err, secret)
				}
			}
		})
	}
}

func TestNewIoTProviderBadInput(t *testing.T) {
	e, dir := iotEmulator(t, nil, time.Hour, nil)
	other, err := e.IssueIoTCertificate("cam-9", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	_, otherKey := writeCert(t, dir, "other", other)
	keyPEM, _ := os.ReadFile(filepath.Join(dir, "cam-1.private.key"))
	encrypted := filepath.Join(dir, "enc.key")
	os.WriteFile(encrypted, pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1, 2, 3}}), 0o600)
	garbage := filepath.Join(dir, "garbage.pem")
	os.WriteFile(garbage, []byte("not pem at all"), 0o600)

	tests := []struct {
		name   string
		change func(*awskvs.IoTConfig)
		field  string
		text   string
	}{
		{"no endpoint", func(c *awskvs.IoTConfig) { c.Endpoint = "" }, "Endpoint", "is required"},
		{"endpoint with a path", func(c *awskvs.IoTConfig) { c.Endpoint = "https://h/x" }, "Endpoint", "without a path"},
		{"plain http", func(c *awskvs.IoTConfig) { c.Endpoint = "http://127.0.0.1:1" }, "Endpoint", "https"},
		{"no role alias", func(c *awskvs.IoTConfig) { c.RoleAlias = "" }, "RoleAlias", "is required"},
		{"bad role alias", func(c *awskvs.IoTConfig) { c.RoleAlias = "a/b" }, "RoleAlias", "must be 1 to 128"},
		{"bad thing name", func(c *awskvs.IoTConfig) { c.ThingName = "cam 1" }, "ThingName", "must be 1 to 128"},
		{"no certificate", func(c *awskvs.IoTConfig) { c.CertFile = "" }, "CertFile", "is required"},
		{"missing certificate", func(c *awskvs.IoTConfig) { c.CertFile = filepath.Join(dir, "none.pem") }, "CertFile", "no such file"},
		{"key as certificate", func(c *awskvs.IoTConfig) { c.CertFile = c.KeyFile }, "CertFile", "holds a private key"},
		{"certificate as key", func(c *awskvs.IoTConfig) { c.KeyFile = c.CertFile }, "KeyFile", "holds a certificate"},
		{"no key", func(c *awskvs.IoTConfig) { c.KeyFile = "" }, "KeyFile", "is required"},
		{"not PEM", func(c *awskvs.IoTConfig) { c.KeyFile = garbage }, "KeyFile", "no PEM block"},
		{"encrypted key", func(c *awskvs.IoTConfig) { c.KeyFile = encrypted }, "KeyFile", "encrypted"},
		{"another certificate's key", func(c *awskvs.IoTConfig) { c.KeyFile = otherKey }, "KeyFile", "is not the key of the certificate"},
		{"CA bundle not PEM", func(c *awskvs.IoTConfig) { c.CAFile = garbage }, "CAFile", "no PEM block"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := thingConfig(e, dir, "cam-1")
			tc.change(&c)
			_, err := awskvs.NewIoTProvider(c)
			var ie *awskvs.IoTError
			if !errors.As(err, &ie) || ie.Field != tc.field || !errors.Is(err, awskvs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("NewIoTProvider: %v; want an invalid-argument IoTError on %s saying %q", err, tc.field, tc.text)
			}
			body := strings.Split(string(keyPEM), "\n")[1]
			if strings.Contains(err.Error(), body[:20]) {
				t.Errorf("error %q shows the private key", err)
			}
		})
	}
}

// TestIoTRenewsAheadOnce: credentials of two minutes are renewed in the
// second half of their life, by one request however many callers ask.
func TestIoTRenewsAheadOnce(t *testing.T) {
	clock := &fakeClock{}
	log := &issuedLog{}
	e, dir := iotEmulator(t, clock.Now, 2*time.Minute, log)
	c := thingConfig(e, dir, "cam-1")
	c.Clock = clock.Now
	p := newIoT(t, c)
	ctx := context.Background()
	first, err := p.Retrieve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	at := p.RefreshAt().Sub(clock.Now())
	if at < 29*time.Second || at > 91*time.Second {
		t.Errorf("renewal %v after the fetch; want from 30 s to 90 s (three quarters of two minutes, at most)", at)
	}
	clock.Advance(at - time.Second)
	if again, _ := p.Retrieve(ctx); again.AccessKeyID != first.AccessKeyID {
		t.Error("renewed before the refresh time")
	}
	clock.Advance(2 * time.Second)
	var wg sync.WaitGroup
	keys := make([]string, 100)
	for i := range keys {
		wg.Go(func() {
			c, err := p.Retrieve(ctx)
			if err != nil {
				t.Error(err)
			}
			keys[i] = c.AccessKeyID
		})
	}
	wg.Wait()
	if n := log.count(); n != 2 {
		t.Errorf("%d requests for the first credentials and 100 concurrent callers after the refresh time; want 2", n)
	}
	if slices.Contains(keys, "") {
		t.Error("a caller got no credentials")
	}
	if now, _ := p.Retrieve(ctx); now.AccessKeyID == first.AccessKeyID {
		t.Error("not renewed after the refresh time")
	}
}

// TestIoTBacksOffAfterFailure: after a refusal, callers get the error
// without a request until the backoff has passed.
func TestIoTBacksOffAfterFailure(t *testing.T) {
	clock := &fakeClock{}
	log := &issuedLog{}
	e, dir := iotEmulator(t, clock.Now, time.Hour, log)
	c := thingConfig(e, dir, "cam-1")
	c.Clock = clock.Now
	c.RoleAlias = "missing"
	p := newIoT(t, c)
	ctx := context.Background()
	_, err1 := p.Retrieve(ctx)
	_, err2 := p.Retrieve(ctx)
	if !errors.Is(err1, awskvs.ErrNotFound) || err2 != err1 {
		t.Fatalf("Retrieve twice: %v, then %v; want the same ErrNotFound, without a second request", err1, err2)
	}
	clock.Advance(time.Second + time.Millisecond)
	if _, err3 := p.Retrieve(ctx); err3 == err1 {
		t.Error("no new request after the backoff of at most a second")
	}
}

// TestIoTSignalingStaysConnectedAcrossRenewals keeps a master connected
// with credentials of two minutes while the clock moves ten minutes on
// and the emulator drops the connection every hundred seconds: each
// reconnection is signed with renewed credentials.
func TestIoTSignalingStaysConnectedAcrossRenewals(t *testing.T) {
	clock := &fakeClock{}
	log := &issuedLog{}
	e, dir := iotEmulator(t, clock.Now, 2*time.Minute, log)
	c := thingConfig(e, dir, "cam-1")
	c.Clock = clock.Now
	p := newIoT(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := iotResolver(t, e, p).Resolve(ctx, "cam-1", kvs.Master)
	if err != nil {
		t.Fatal(err)
	}
	// URLs must not outlive the credentials: 30 s is under the renewal
	// margin (at least 49 s for two-minute credentials).
	pre := &kvs.Presigner{Credentials: p.SigV4(), Region: e.Region(), Expires: 30 * time.Second, Clock: clock.Now}
	client, err := signaling.Dial(ctx, signaling.Presigned(pre, conn.WSSEndpoint, conn.ChannelARN, kvs.Master, ""),
		&signaling.Options{MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	keys := map[string]bool{}
	for round := range 6 {
		cr, _ := p.Retrieve(ctx)
		keys[cr.AccessKeyID] = true
		clock.Advance(100 * time.Second)
		if n := e.Drop(emulator.Target{Channel: "cam-1"}); n != 1 {
			t.Fatalf("round %d: dropped %d connections; want 1", round, n)
		}
		waitReconnected(t, ctx, client, round)
	}
	t.Logf("6 drops over 10 minutes of two-minute credentials: %d requests to the IoT endpoint, %d access keys", log.count(), len(keys))
	if log.count() < 5 {
		t.Errorf("%d IoT requests over 10 minutes of two-minute credentials; want at least 5", log.count())
	}
}

func waitReconnected(t *testing.T, ctx context.Context, c *signaling.Client, round int) {
	t.Helper()
	for {
		select {
		case ev, ok := <-c.Events():
			if !ok {
				t.Fatalf("round %d: client ended: %v", round, c.Err())
			}
			if ev.Type == signaling.EventReconnected {
				return
			}
		case <-ctx.Done():
			t.Fatalf("round %d: no reconnection: %v", round, ctx.Err())
		}
	}
}

// TestIoTFleetSpreadsRenewals starts 1,000 devices at the same instant
// and records when the emulator sees their renewals: spread over the
// jitter window, not at one instant.
func TestIoTFleetSpreadsRenewals(t *testing.T) {
	n := 1000
	if testing.Short() {
		n = 200
	}
	start := time.Now().Truncate(time.Second)
	clock := &fakeClock{base: start}
	log := &issuedLog{}
	e, dir := iotEmulator(t, clock.Now, time.Hour, log)
	var mu sync.Mutex
	rnd := mrand.New(mrand.NewPCG(1, 2))
	c := thingConfig(e, dir, "cam-1")
	c.Clock = clock.Now
	c.Rand = func() float64 { mu.Lock(); defer mu.Unlock(); return rnd.Float64() }
	ps := make([]*awskvs.IoTProvider, n)
	for i := range ps {
		ps[i] = newIoT(t, c)
	}
	retrieveAll := func() {
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				for i := w; i < n; i += 8 {
					if _, err := ps[i].Retrieve(context.Background()); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
	}
	retrieveAll()
	if got := log.count(); got != n {
		t.Fatalf("%d first requests from %d devices", got, n)
	}
	// Step through the hour in 5-second steps from 45 minutes on.
	clock.Advance(45 * time.Minute)
	for clock.Now().Before(start.Add(time.Hour)) {
		retrieveAll()
		clock.Advance(5 * time.Second)
	}
	log.mu.Lock()
	renewals := slices.Clone(log.times[n:])
	log.mu.Unlock()
	if len(renewals) != n {
		t.Fatalf("%d renewals from %d devices; want one each", len(renewals), n)
	}
	buckets := map[int]int{}
	lo, hi := renewals[0], renewals[0]
	for _, r := range renewals {
		buckets[int(r.Sub(start)/(30*time.Second))]++
		if r.Before(lo) {
			lo = r
		}
		if r.After(hi) {
			hi = r
		}
	}
	peak := 0
	for _, v := range buckets {
		peak = max(peak, v)
	}
	t.Logf("%d devices: renewals from %v to %v after start (window %v to %v); %d of 30-second buckets used, busiest %d (%.1f%%)",
		n, lo.Sub(start), hi.Sub(start), time.Hour-awskvs.DefaultCredentialsWindow-awskvs.DefaultIoTRefreshJitter,
		time.Hour-awskvs.DefaultCredentialsWindow, len(buckets), peak, 100*float64(peak)/float64(n))
	if lo.Before(start.Add(time.Hour-awskvs.DefaultCredentialsWindow-awskvs.DefaultIoTRefreshJitter)) || hi.After(start.Add(time.Hour-awskvs.DefaultCredentialsWindow+5*time.Second)) {
		t.Errorf("renewals outside the jitter window")
	}
	if span := hi.Sub(lo); span < awskvs.DefaultIoTRefreshJitter*9/10 {
		t.Errorf("renewals span %v; want most of the %v jitter window", span, awskvs.DefaultIoTRefreshJitter)
	}
	if peak > n/5 {
		t.Errorf("%d of %d renewals in one 30-second bucket; want them spread over ten", peak, n)
	}
}

// Ensure an IoTProvider serves as an aws.CredentialsProvider.
var _ aws.CredentialsProvider = (*awskvs.IoTProvider)(nil)

// ExampleNewIoTProvider signs a signaling URL with the credentials a
// device gets for its certificate, here from the emulator's IoT endpoint.
func ExampleNewIoTProvider() {
	dir, _ := os.MkdirTemp("", "iot-example")
	defer os.RemoveAll(dir)
	e, err := emulator.New(emulator.Config{IoT: &emulator.IoTConfig{Dir: dir, Things: []string{"cam-1"},
		RoleAliases: []emulator.IoTRoleAlias{{Name: "kvs-camera", RoleARN: "arn:aws:iam::123456789012:role/kvs-camera"}}}})
	if err != nil {
		panic(err)
	}
	if err := e.Start(); err != nil {
		panic(err)
	}
	defer e.Close()
	p, err := awskvs.NewIoTProvider(awskvs.IoTConfig{
		Endpoint:  e.IoTURL(), // on AWS: PREFIX.credentials.iot.REGION.amazonaws.com
		CertFile:  filepath.Join(dir, "cam-1.cert.pem"),
		KeyFile:   filepath.Join(dir, "cam-1.private.key"),
		CAFile:    filepath.Join(dir, "ca.pem"),
		RoleAlias: "kvs-camera",
		ThingName: "cam-1",
	})
	if err != nil {
		panic(err)
	}
	pre := &kvs.Presigner{Credentials: p.SigV4(), Region: e.Region()}
	s, err := pre.Presign(context.Background(), "wss://m-1234abcd.kinesisvideo.us-west-2.amazonaws.com",
		"arn:aws:kinesisvideo:us-west-2:123456789012:channel/cam-1/1", kvs.Master, "")
	if err != nil {
		panic(err)
	}
	fmt.Println(strings.Contains(s.URL, "X-Amz-Security-Token="))
	// Output: true
}

// TestIoTDeviceClockAhead: credentials that have expired by the device's
// clock when they arrive are refused with an error about the clock, and
// not fetched again and again.
func TestIoTDeviceClockAhead(t *testing.T) {
	log := &issuedLog{}
	e, dir := iotEmulator(t, nil, time.Hour, log)
	c := thingConfig(e, dir, "cam-1")
	c.Clock = func() time.Time { return time.Now().Add(2 * time.Hour) }
	p := newIoT(t, c)
	var err error
	for range 3 {
		_, err = p.Retrieve(context.Background())
	}
	if err == nil || !strings.Contains(err.Error(), "clock") {
		t.Errorf("Retrieve with a clock two hours ahead: %v; want an error about the clock", err)
	}
	if n := log.count(); n != 1 {
		t.Errorf("%d requests for 3 calls; want 1, then a backoff", n)
	}
}

func TestNewIoTProviderKeyForms(t *testing.T) {
	dir := t.TempDir()
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	sec1, _ := x509.MarshalECPrivateKey(ec)
	ecP8, _ := x509.MarshalPKCS8PrivateKey(ec)
	rsaP8, _ := x509.MarshalPKCS8PrivateKey(rk)
	edP8, _ := x509.MarshalPKCS8PrivateKey(ed)
	tests := []struct {
		name    string
		key     crypto.Signer
		block   *pem.Block
		wantErr string
	}{
		{"EC, SEC 1", ec, &pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}, ""},
		{"EC, PKCS#8", ec, &pem.Block{Type: "PRIVATE KEY", Bytes: ecP8}, ""},
		{"RSA, PKCS#1", rk, &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rk)}, ""},
		{"RSA, PKCS#8", rk, &pem.Block{Type: "PRIVATE KEY", Bytes: rsaP8}, ""},
		{"Ed25519", ed, &pem.Block{Type: "PRIVATE KEY", Bytes: edP8}, "AWS IoT takes EC or RSA keys"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(i + 1)), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
			der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, tc.key.Public(), tc.key)
			if err != nil {
				t.Fatal(err)
			}
			certFile, keyFile := filepath.Join(dir, tc.name+".pem"), filepath.Join(dir, tc.name+".key")
			os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
			os.WriteFile(keyFile, pem.EncodeToMemory(tc.block), 0o600)
			_, err = awskvs.NewIoTProvider(awskvs.IoTConfig{Endpoint: "abc123-ats.credentials.iot.us-west-2.amazonaws.com",
				CertFile: certFile, KeyFile: keyFile, RoleAlias: "kvs-camera"})
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("NewIoTProvider: %v; want %q", err, tc.wantErr)
			}
		})
	}
}
