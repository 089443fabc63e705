// The AWS IoT credentials provider: a device trades its X.509 certificate
// for temporary credentials of the role behind a role alias, over mutual
// TLS, without any long-term AWS secret on the device.

package awskvs

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/kvssign/kvssign/sigv4"
)

// Kinds of IoT credentials failure besides the ones [Error] uses, matched
// with errors.Is.
var (
	// ErrCertificateExpired: the device certificate is past its NotAfter.
	ErrCertificateExpired = errors.New("awskvs: certificate expired")
	// ErrUnreachable: the credentials endpoint gave no answer.
	ErrUnreachable = errors.New("awskvs: endpoint unreachable")
)

// DefaultIoTRefreshJitter is the width of the random window
// [IoTProvider] spreads renewals over when given none.
const DefaultIoTRefreshJitter = 5 * time.Minute

// IoTConfig configures an [IoTProvider]. The fields mirror the Kinesis
// Video Streams C SDK's environment variables, named on each.
type IoTConfig struct {
	// Endpoint is the account's credentials endpoint (AWS_IOT_CORE_CREDENTIAL_ENDPOINT):
	// PREFIX.credentials.iot.REGION.amazonaws.com, as `aws iot
	// describe-endpoint --endpoint-type iot:CredentialProvider` prints
	// it, or an https:// URL such as an emulator's. Required.
	Endpoint string
	// CertFile is the device certificate, PEM (AWS_IOT_CORE_CERT). Required.
	CertFile string
	// KeyFile is the certificate's private key, PEM: EC or RSA, in PKCS#8,
	// PKCS#1 or SEC 1 form, unencrypted (AWS_IOT_CORE_PRIVATE_KEY). Required.
	KeyFile string
	// CAFile, if set, holds the CA certificates (PEM) the endpoint's
	// certificate must chain to instead of the system's (AWS_KVS_CACERT_PATH).
	CAFile string
	// RoleAlias names the role alias whose role's credentials are asked
	// for (AWS_IOT_CORE_ROLE_ALIAS). Required.
	RoleAlias string
	// ThingName, if set, is sent as x-amzn-iot-thingname
	// (AWS_IOT_CORE_THING_NAME): the thing must be attached to the
	// certificate, and policies may then name it as
	// ${credentials-iot:ThingName}.
	ThingName string
	// Timeout bounds each request. If zero, [DefaultCallTimeout].
	Timeout time.Duration
	// RefreshMargin and RefreshJitter set when credentials are renewed:
	// RefreshMargin before they expire, plus a random share of
	// RefreshJitter, so that a fleet started together does not renew
	// together. RefreshMargin must be at least the life of what is signed
	// with them (a signaling URL's: kvs.UseWithin at most). If zero,
	// [DefaultCredentialsWindow] and [DefaultIoTRefreshJitter]. When the
	// two exceed three quarters of the credentials' life, the jitter
	// shrinks first, then both in proportion (so credentials of a few
	// minutes need URLs of shorter life).
	RefreshMargin, RefreshJitter time.Duration
	// Clock returns the current time. If nil, time.Now.
	Clock func() time.Time
	// Rand returns a random number in [0, 1), for jitter. If nil,
	// math/rand/v2's Float64.
	Rand func() float64
}

// An IoTError is a failure to get credentials from the AWS IoT credentials
// provider. It never holds the private key, a secret or a session token.
type IoTError struct {
	// Field is the [IoTConfig] field at fault (CertFile, KeyFile, CAFile,
	// Endpoint, RoleAlias, ThingName), or empty.
	Field string
	// Kind is [ErrInvalidArgument], [ErrNotFound], [ErrAccessDenied],
	// [ErrThrottled], [ErrCertificateExpired], [ErrUnreachable], or nil.
	Kind error
	// StatusCode is the HTTP status; 0 when there was no answer.
	StatusCode int
	// Code is the x-amzn-ErrorType of the answer, e.g. AccessDeniedException.
	Code string
	// Message says what went wrong.
	Message string
	// Err is the underlying error, if any.
	Err error
}

func (e *IoTError) Error() string {
	if e.Field != "" {
		return "awskvs: iot credentials: " + e.Field + ": " + e.Detail()
	}
	return "awskvs: iot credentials: " + e.Detail()
}

// Detail is the error without its prefix and field: the service's error
// code, the message and the HTTP status, for a message that names the
// setting at fault itself.
func (e *IoTError) Detail() string {
	s := e.Message
	if e.Code != "" {
		s = e.Code + ": " + s
	}
	if e.StatusCode != 0 {
		s += " (HTTP " + strconv.Itoa(e.StatusCode) + ")"
	}
	return s
}

// Unwrap returns the kind (if any) and the underlying error.
func (e *IoTError) Unwrap() []error {
	var errs []error
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

func iotErr(field string, kind error, format string, args ...any) *IoTError {
	return &IoTError{Field: field, Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// IoTProvider gets temporary credentials from the AWS IoT credentials
// provider with a device certificate. It is an aws.CredentialsProvider;
// [IoTProvider.SigV4] adapts it to the sigv4 package. Credentials are
// cached and renewed ahead of their expiry; concurrent callers share one
// request, and while it is under way, or after a failure, callers get the
// cached credentials as long as they are valid. After a failure, no
// request is made before a backoff with jitter has passed.
type IoTProvider struct {
	url, thing     string
	client         *http.Client
	leaf           *x509.Certificate
	timeout        time.Duration
	margin, spread time.Duration
	now            func() time.Time
	rand           func() float64

	mu        sync.Mutex
	creds     aws.Credentials // AccessKeyID empty: none yet
	refreshAt time.Time
	nextTry   time.Time // after a failure, no request before
	failures  int
	lastErr   error
	flight    chan struct{} // closed when the request under way ends
}

var (
	iotAliasRE = regexp.MustCompile(`^[\w=,@-]{1,128}$`)
	iotThingRE = regexp.MustCompile(`^[a-zA-Z0-9:_-]{1,128}$`)
)

// NewIoTProvider checks cfg and loads its certificate, key and CA bundle.
// Errors are [*IoTError] values naming the field.
func NewIoTProvider(cfg IoTConfig) (*IoTProvider, error) {
	u, err := iotURL(cfg.Endpoint, cfg.RoleAlias)
	if err != nil {
		return nil, err
	}
	if cfg.ThingName != "" && !iotThingRE.MatchString(cfg.ThingName) {
		return nil, iotErr("ThingName", ErrInvalidArgument, "%q: must be 1 to 128 letters, digits, ':', '_' or '-'", iotClip(cfg.ThingName))
	}
	cert, err := iotLoadKeyPair(cfg.CertFile, cfg.KeyFile)
	if err != nil {
		return nil, err
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		if tc.RootCAs, err = iotLoadCAs(cfg.CAFile); err != nil {
			return nil, err
		}
	}
	p := &IoTProvider{
		url: u, thing: cfg.ThingName, leaf: cert.Leaf,
		client: &http.Client{Transport: &http.Transport{
			Proxy: http.ProxyFromEnvironment, TLSClientConfig: tc, TLSHandshakeTimeout: 10 * time.Second,
			DisableKeepAlives: true, // renewals are minutes to hours apart
		}},
		timeout: cfg.Timeout, margin: cfg.RefreshMargin, spread: cfg.RefreshJitter, now: cfg.Clock, rand: cfg.Rand,
	}
	if p.timeout <= 0 {
		p.timeout = DefaultCallTimeout
	}
	if p.margin <= 0 {
		p.margin = DefaultCredentialsWindow
	}
	if p.spread <= 0 {
		p.spread = DefaultIoTRefreshJitter
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.rand == nil {
		p.rand = rand.Float64
	}
	return p, nil
}

// iotURL checks the endpoint and role alias and returns the request URL.
func iotURL(endpoint, alias string) (string, error) {
	if endpoint == "" {
		return "", iotErr("Endpoint", ErrInvalidArgument, "is required: the account's credentials endpoint, PREFIX.credentials.iot.REGION.amazonaws.com")
	}
	if alias == "" {
		return "", iotErr("RoleAlias", ErrInvalidArgument, "is required: the role alias whose role the device assumes")
	}
	if !iotAliasRE.MatchString(alias) {
		return "", iotErr("RoleAlias", ErrInvalidArgument, "%q: must be 1 to 128 letters, digits, '_', '=', ',', '@' or '-'", iotClip(alias))
	}
	raw := endpoint
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return "", iotErr("Endpoint", ErrInvalidArgument, "%q: must be a host name or an https://HOST[:PORT] URL without a path", iotClip(endpoint))
	}
	return "https://" + u.Host + "/role-aliases/" + alias + "/credentials", nil
}

func iotClip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// iotReadPEM reads a PEM file for field, with errors that name it but never
// quote its contents.
func iotReadPEM(field, path string) ([]*pem.Block, error) {
	if path == "" {
		return nil, iotErr(field, ErrInvalidArgument, "is required")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, iotErr(field, ErrInvalidArgument, "%s: %v", path, err)
	}
	var blocks []*pem.Block
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		blocks = append(blocks, b)
	}
	if len(blocks) == 0 {
		return nil, iotErr(field, ErrInvalidArgument, "%s: holds no PEM block (want -----BEGIN …-----)", path)
	}
	return blocks, nil
}

// iotLoadKeyPair loads the device certificate and its key, and checks that
// they belong together.
func iotLoadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	var out tls.Certificate
	blocks, err := iotReadPEM("CertFile", certFile)
	if err != nil {
		return out, err
	}
	for _, b := range blocks {
		switch {
		case b.Type == "CERTIFICATE":
			out.Certificate = append(out.Certificate, b.Bytes)
		case strings.HasSuffix(b.Type, "PRIVATE KEY"):
			return out, iotErr("CertFile", ErrInvalidArgument, "%s: holds a private key; give the certificate here and the key in KeyFile", certFile)
		}
	}
	if len(out.Certificate) == 0 {
		return out, iotErr("CertFile", ErrInvalidArgument, "%s: holds no CERTIFICATE block", certFile)
	}
	if out.Leaf, err = x509.ParseCertificate(out.Certificate[0]); err != nil {
		return out, iotErr("CertFile", ErrInvalidArgument, "%s: not a valid X.509 certificate: %v", certFile, err)
	}
	if out.PrivateKey, err = iotLoadKey(keyFile); err != nil {
		return out, err
	}
	pub, ok := out.PrivateKey.(crypto.Signer).Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(out.Leaf.PublicKey) {
		return out, iotErr("KeyFile", ErrInvalidArgument, "%s: is not the key of the certificate in %s", keyFile, certFile)
	}
	return out, nil
}

// iotLoadKey parses an unencrypted EC or RSA private key. Its errors say
// which form was expected, never what the file holds.
func iotLoadKey(keyFile string) (crypto.PrivateKey, error) {
	blocks, err := iotReadPEM("KeyFile", keyFile)
	if err != nil {
		return nil, err
	}
	for _, b := range blocks {
		var key any
		switch b.Type {
		case "EC PARAMETERS":
			continue
		case "CERTIFICATE":
			return nil, iotErr("KeyFile", ErrInvalidArgument, "%s: holds a certificate; give the private key here and the certificate in CertFile", keyFile)
		case "ENCRYPTED PRIVATE KEY":
			return nil, iotErr("KeyFile", ErrInvalidArgument, "%s: the key is encrypted; give it unencrypted (openssl pkey -in KEY -out PLAIN)", keyFile)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(b.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		default:
			return nil, iotErr("KeyFile", ErrInvalidArgument, "%s: a %q block; want EC PRIVATE KEY, RSA PRIVATE KEY or PRIVATE KEY", keyFile, iotClip(b.Type))
		}
		if err != nil {
			return nil, iotErr("KeyFile", ErrInvalidArgument, "%s: the %s block does not parse", keyFile, b.Type)
		}
		switch key.(type) {
		case *ecdsa.PrivateKey, *rsa.PrivateKey:
			return key, nil
		}
		return nil, iotErr("KeyFile", ErrInvalidArgument, "%s: the key is %T; AWS IoT takes EC or RSA keys", keyFile, key)
	}
	return nil, iotErr("KeyFile", ErrInvalidArgument, "%s: holds no private key", keyFile)
}

func iotLoadCAs(caFile string) (*x509.CertPool, error) {
	blocks, err := iotReadPEM("CAFile", caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, b := range blocks {
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, iotErr("CAFile", ErrInvalidArgument, "%s: a certificate does not parse: %v", caFile, err)
		}
		pool.AddCert(c)
	}
	return pool, nil
}

// Retrieve returns the cached credentials, renewing them when their
// refresh time has come.
func (p *IoTProvider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	for {
		p.mu.Lock()
		now := p.now()
		valid := p.creds.AccessKeyID != "" && now.Before(p.creds.Expires)
		switch {
		case valid && now.Before(p.refreshAt):
			c := p.creds
			p.mu.Unlock()
			return c, nil
		case p.flight != nil:
			c, ch := p.creds, p.flight
			p.mu.Unlock()
			if valid {
				return c, nil
			}
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return aws.Credentials{}, &IoTError{Field: "Endpoint", Message: "cancelled while waiting for credentials", Err: ctx.Err()}
			}
		case now.Before(p.nextTry):
			c, err := p.creds, p.lastErr
			p.mu.Unlock()
			if valid {
				return c, nil
			}
			return aws.Credentials{}, err
		}
		ch := make(chan struct{})
		p.flight = ch
		p.mu.Unlock()
		c, err := p.fetch(ctx)
		return p.settle(ch, c, err)
	}
}

// settle records the outcome of a request and ends its flight.
func (p *IoTProvider) settle(ch chan struct{}, c aws.Credentials, err error) (aws.Credentials, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	defer close(ch)
	p.flight = nil
	now := p.now()
	if err == nil {
		p.creds, p.failures, p.nextTry, p.lastErr = c, 0, time.Time{}, nil
		p.refreshAt = p.refreshTime(now, c.Expires)
		return c, nil
	}
	if !errors.Is(err, context.Canceled) {
		p.failures++
		p.lastErr = err
		p.nextTry = now.Add(p.backoff(p.failures))
	}
	if p.creds.AccessKeyID != "" && now.Before(p.creds.Expires) {
		return p.creds, nil
	}
	return aws.Credentials{}, err
}

// refreshTime picks when credentials fetched at now and expiring at exp
// are renewed: margin before exp, plus a random share of the jitter
// window. The two together take at most three quarters of the
// credentials' life: the jitter window shrinks first, as long as the
// margin fits in half the life; beyond that both shrink in proportion.
func (p *IoTProvider) refreshTime(now, exp time.Time) time.Time {
	margin, spread := p.margin, p.spread
	life := max(exp.Sub(now), 0)
	if budget := life / 4 * 3; margin+spread > budget {
		if margin <= life/2 {
			spread = budget - margin
		} else {
			f := float64(budget) / float64(margin+spread)
			margin, spread = time.Duration(float64(margin)*f), time.Duration(float64(spread)*f)
		}
	}
	return exp.Add(-margin - time.Duration(p.rand()*float64(spread)))
}

// backoff is how long to wait after the n-th failure in a row: from one
// second doubling to five minutes, of which a random half is waited, so
// that devices refused together do not return together.
func (p *IoTProvider) backoff(n int) time.Duration {
	d := 5 * time.Minute
	if n < 10 {
		d = min(d, time.Second<<(n-1))
	}
	return d/2 + time.Duration(p.rand()*float64(d/2))
}

// RefreshAt returns when the cached credentials will be renewed; zero
// before the first success.
func (p *IoTProvider) RefreshAt() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refreshAt
}

// SigV4 returns p as a sigv4.CredentialsProvider, for kvs.Presigner and
// the signaling client.
func (p *IoTProvider) SigV4() sigv4.CredentialsProvider {
	return sigv4.CredentialsFunc(func(ctx context.Context) (sigv4.Credentials, error) {
		ac, err := p.Retrieve(ctx)
		if err != nil {
			return sigv4.Credentials{}, err
		}
		return convert(ac), nil
	})
}

// maxIoTAnswer bounds the answer read; a real one is under 2 KiB.
const maxIoTAnswer = 64 << 10

// fetch makes one request.
func (p *IoTProvider) fetch(ctx context.Context) (aws.Credentials, error) {
	if now := p.now(); now.After(p.leaf.NotAfter) {
		return aws.Credentials{}, iotErr("CertFile", ErrCertificateExpired, "the certificate expired at %s", p.leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	if err != nil {
		return aws.Credentials{}, iotErr("Endpoint", ErrInvalidArgument, "%v", err)
	}
	if p.thing != "" {
		req.Header.Set("x-amzn-iot-thingname", p.thing)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return aws.Credentials{}, iotTransportError(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxIoTAnswer))
	if err != nil {
		return aws.Credentials{}, &IoTError{Field: "Endpoint", Kind: ErrUnreachable, StatusCode: resp.StatusCode, Message: "the answer broke off", Err: err}
	}
	if resp.StatusCode != http.StatusOK {
		return aws.Credentials{}, p.answerError(resp, body)
	}
	c, err := parseIoTCredentials(body)
	if err != nil {
		return aws.Credentials{}, &IoTError{Field: "Endpoint", StatusCode: resp.StatusCode, Message: err.Error()}
	}
	// Taken as they are, they would be fetched anew on every call.
	if now := p.now(); !c.Expires.After(now) {
		return aws.Credentials{}, &IoTError{StatusCode: resp.StatusCode, Message: fmt.Sprintf(
			"the credentials expire at %s, before the device's clock (%s): set the clock right",
			c.Expires.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))}
	}
	return c, nil
}

// parseIoTCredentials reads a 200 answer. Its errors name the missing or
// bad field, never a value.
func parseIoTCredentials(body []byte) (aws.Credentials, error) {
	var a struct {
		Credentials *struct {
			AccessKeyID     string `json:"accessKeyId"`
			SecretAccessKey string `json:"secretAccessKey"`
			SessionToken    string `json:"sessionToken"`
			Expiration      string `json:"expiration"`
		} `json:"credentials"`
	}
	if err := json.Unmarshal(body, &a); err != nil {
		return aws.Credentials{}, errors.New("the answer is not the expected JSON object")
	}
	c := a.Credentials
	if c == nil {
		return aws.Credentials{}, errors.New("the answer has no credentials object")
	}
	for name, v := range map[string]string{"accessKeyId": c.AccessKeyID, "secretAccessKey": c.SecretAccessKey, "sessionToken": c.SessionToken, "expiration": c.Expiration} {
		if v == "" {
			return aws.Credentials{}, fmt.Errorf("the answer's credentials.%s is missing", name)
		}
	}
	exp, err := time.Parse(time.RFC3339, c.Expiration)
	if err != nil {
		return aws.Credentials{}, errors.New("the answer's credentials.expiration is not an RFC 3339 time")
	}
	return aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken,
		CanExpire: true, Expires: exp, Source: "IoTCredentialsProvider"}, nil
}

// answerError turns a refusal into an IoTError naming the likely field.
func (p *IoTProvider) answerError(resp *http.Response, body []byte) error {
	var m struct {
		Message  string `json:"message"`
		MessageU string `json:"Message"`
	}
	json.Unmarshal(body, &m)
	msg := strings.TrimSpace(m.Message + m.MessageU)
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	code, _, _ := strings.Cut(resp.Header.Get("x-amzn-ErrorType"), ":")
	e := &IoTError{StatusCode: resp.StatusCode, Code: code, Message: iotClip(msg)}
	lower := strings.ToLower(msg)
	switch s := resp.StatusCode; {
	case s == http.StatusNotFound:
		e.Field, e.Kind = "RoleAlias", ErrNotFound
	case s == http.StatusForbidden || s == http.StatusUnauthorized:
		e.Field, e.Kind = "CertFile", ErrAccessDenied
		if p.thing != "" && strings.Contains(lower, "thing") {
			e.Field = "ThingName"
		} else if strings.Contains(lower, "expired") {
			e.Kind = ErrCertificateExpired
		}
	case s == http.StatusTooManyRequests:
		e.Field, e.Kind = "Endpoint", ErrThrottled
	case s == http.StatusBadRequest:
		e.Kind = ErrInvalidArgument
		if p.thing != "" && strings.Contains(lower, "thing") {
			e.Field = "ThingName"
		}
	case s >= 500:
		e.Field = "Endpoint"
	}
	return e
}

// iotTransportError words a request that got no answer: an endpoint whose
// certificate is not trusted, a handshake the endpoint refused (it did
// not take the device certificate), or no answer at all.
func iotTransportError(err error) error {
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	switch {
	case errors.As(err, &hn):
		return &IoTError{Field: "Endpoint", Kind: ErrInvalidArgument, Message: "the endpoint's certificate is not for this host name: " + hn.Error(), Err: err}
	case errors.As(err, &cv) || errors.As(err, &ua):
		return &IoTError{Field: "CAFile", Kind: ErrInvalidArgument, Message: "the endpoint's certificate is not signed by a trusted CA: give the bundle of the CA that signs it", Err: err}
	case strings.Contains(err.Error(), "remote error: tls:"):
		kind := ErrAccessDenied
		if strings.Contains(err.Error(), "expired") {
			kind = ErrCertificateExpired
		}
		return &IoTError{Field: "CertFile", Kind: kind, Message: "the endpoint refused the certificate in the TLS handshake", Err: err}
	case errors.Is(err, context.Canceled):
		return &IoTError{Field: "Endpoint", Message: "cancelled", Err: err}
	case errors.Is(err, context.DeadlineExceeded):
		return &IoTError{Field: "Endpoint", Kind: ErrUnreachable, Message: "no answer before the deadline", Err: err}
	}
	msg := "cannot reach the endpoint"
	if m := noAnswerMessage(err); m != "" {
		msg = m
	}
	return &IoTError{Field: "Endpoint", Kind: ErrUnreachable, Message: msg, Err: err}
}
