// The emulated AWS IoT credentials provider: a mutual-TLS endpoint on its
// own port that trades a device certificate the emulator issued for
// temporary credentials of the role behind a role alias.

package emulator

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// IoTConfig configures the emulated AWS IoT credentials provider
// ([Config.IoT]).
type IoTConfig struct {
	// Addr is the endpoint's listen address, host:port. If empty, a free
	// port of 127.0.0.1.
	Addr string
	// Dir, if set, is where [New] writes the CA certificate (ca.pem: the
	// endpoint's certificate chains to it, so clients trust it as
	// AWS_KVS_CACERT_PATH) and, for each of Things, THING.cert.pem and
	// THING.private.key. The CA lives in memory: files of an earlier run
	// are overwritten and its certificates are not accepted.
	Dir string
	// RoleAliases are the role aliases devices may ask credentials for.
	// Every certificate the emulator issues may use each of them.
	RoleAliases []IoTRoleAlias
	// Things are the names of things that get a certificate each, attached
	// to them, at [New]. See [Emulator.IssueIoTCertificate] for more.
	Things []string
}

// IoTRoleAlias is a role alias: a name standing for a role and how long
// the credentials it hands out last.
type IoTRoleAlias struct {
	// Name is the alias, as in /role-aliases/NAME/credentials.
	Name string
	// RoleARN is the role, arn:aws:iam::ACCOUNT:role/NAME.
	RoleARN string
	// Duration is the credentials' lifetime. If zero, one hour. AWS takes
	// 900 to 43,200 seconds; the emulator takes from 1 second, so that
	// tests can see renewals.
	Duration time.Duration
}

var (
	iotAliasRE = regexp.MustCompile(`^[\w=,@-]{1,128}$`)
	iotThingRE = regexp.MustCompile(`^[a-zA-Z0-9:_-]{1,128}$`)
)

const maxIoTDuration = 43200 * time.Second

// validate checks c, naming the field and the rule broken.
func (c *IoTConfig) validate() error {
	if c.Addr != "" {
		if _, _, err := net.SplitHostPort(c.Addr); err != nil {
			return fmt.Errorf("emulator: iot addr %q: must be host:port", c.Addr)
		}
	}
	seen := map[string]bool{}
	for i, a := range c.RoleAliases {
		switch {
		case !iotAliasRE.MatchString(a.Name):
			return fmt.Errorf("emulator: iot role alias %d name %q: must be 1 to 128 letters, digits, '_', '=', ',', '@' or '-'", i, clipValue(a.Name))
		case seen[a.Name]:
			return fmt.Errorf("emulator: iot role alias %q: given twice", a.Name)
		case !validRoleARN(a.RoleARN):
			return fmt.Errorf("emulator: iot role alias %q role ARN %q: must be arn:aws:iam::ACCOUNT:role/NAME", a.Name, clipValue(a.RoleARN))
		case a.Duration != 0 && a.Duration < time.Second || a.Duration < 0 || a.Duration > maxIoTDuration:
			return fmt.Errorf("emulator: iot role alias %q duration %v: must be from 1s to 12h (AWS: 900 to 43,200 seconds)", a.Name, a.Duration)
		}
		seen[a.Name] = true
	}
	for _, t := range c.Things {
		if !iotThingRE.MatchString(t) {
			return fmt.Errorf("emulator: iot thing %q: must be 1 to 128 letters, digits, ':', '_' or '-'", clipValue(t))
		}
	}
	return nil
}

func validRoleARN(s string) bool {
	parts := strings.SplitN(s, ":", 6)
	return len(parts) == 6 && parts[0] == "arn" && parts[2] == "iam" && accountRE.MatchString(parts[4]) &&
		strings.HasPrefix(parts[5], "role/") && len(parts[5]) > len("role/")
}

// IoTCertificate is a device certificate the emulator issued.
type IoTCertificate struct {
	// ID is the certificate id, as AWS IoT computes it: the hex SHA-256
	// of the DER certificate.
	ID string
	// CertPEM and KeyPEM are the certificate and its EC private key.
	CertPEM, KeyPEM []byte
}

type iotCert struct {
	things  map[string]bool
	revoked bool
}

// iotState is the IoT endpoint: its CA, the certificates it issued and
// the server.
type iotState struct {
	cfg     IoTConfig
	aliases map[string]IoTRoleAlias
	caKey   *ecdsa.PrivateKey
	ca      *x509.Certificate
	caPEM   []byte
	server  tls.Certificate

	mu    sync.Mutex
	certs map[string]*iotCert // by id

	srv  *http.Server
	url  string
	done chan struct{}
}

// setupIoT makes the CA and the things' certificates, writing them to
// the directory if one is configured.
func (e *Emulator) setupIoT() error {
	c := e.cfg.IoT
	s := &iotState{cfg: *c, aliases: map[string]IoTRoleAlias{}, certs: map[string]*iotCert{}}
	for _, a := range c.RoleAliases {
		if a.Duration == 0 {
			a.Duration = time.Hour
		}
		s.aliases[a.Name] = a
	}
	var err error
	if s.caKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return fmt.Errorf("emulator: iot: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serialNumber(), Subject: pkix.Name{CommonName: "kvssign emulator IoT CA", Organization: []string{"kvssign"}},
		NotBefore: now.Add(-24 * time.Hour), NotAfter: now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &s.caKey.PublicKey, s.caKey)
	if err != nil {
		return fmt.Errorf("emulator: iot: %w", err)
	}
	s.ca, _ = x509.ParseCertificate(der)
	s.caPEM = pemBlock("CERTIFICATE", der)
	if s.server, err = s.serverCertificate(e.cfg.Hostname); err != nil {
		return err
	}
	e.iot = s
	if c.Dir != "" {
		if err := os.MkdirAll(c.Dir, 0o700); err != nil {
			return fmt.Errorf("emulator: iot dir: %w", err)
		}
		if err := writeFileAtomic(filepath.Join(c.Dir, "ca.pem"), s.caPEM); err != nil {
			return fmt.Errorf("emulator: iot dir: %w", err)
		}
	}
	for _, thing := range c.Things {
		ic, err := e.IssueIoTCertificate(thing, time.Time{})
		if err != nil {
			return err
		}
		if c.Dir == "" {
			continue
		}
		if err := writeFileAtomic(filepath.Join(c.Dir, thing+".cert.pem"), ic.CertPEM); err != nil {
			return fmt.Errorf("emulator: iot dir: %w", err)
		}
		if err := writeFileAtomic(filepath.Join(c.Dir, thing+".private.key"), ic.KeyPEM); err != nil {
			return fmt.Errorf("emulator: iot dir: %w", err)
		}
	}
	return nil
}

func serialNumber() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	return n
}

// serverCertificate makes the endpoint's certificate, signed by the CA,
// valid by real time: clients check it against their own clocks.
func (s *iotState) serverCertificate(hostname string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("emulator: iot: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serialNumber(), Subject: pkix.Name{CommonName: "kvssign emulator IoT credentials endpoint"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if hostname != "" {
		tmpl.DNSNames = append(tmpl.DNSNames, hostname)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, s.ca, &key.PublicKey, s.caKey)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("emulator: iot: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// IssueIoTCertificate issues a device certificate with a new EC key,
// attached to thing (none if empty), valid from an hour ago by the
// emulator's clock until notAfter (if zero, a year from now). An expired
// certificate is refused as AWS IoT refuses it.
func (e *Emulator) IssueIoTCertificate(thing string, notAfter time.Time) (IoTCertificate, error) {
	s := e.iot
	if s == nil {
		return IoTCertificate{}, errors.New("emulator: iot: not configured (Config.IoT is nil)")
	}
	if thing != "" && !iotThingRE.MatchString(thing) {
		return IoTCertificate{}, fmt.Errorf("emulator: iot thing %q: must be 1 to 128 letters, digits, ':', '_' or '-'", clipValue(thing))
	}
	now := e.now()
	if notAfter.IsZero() {
		notAfter = now.Add(365 * 24 * time.Hour)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return IoTCertificate{}, fmt.Errorf("emulator: iot: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serialNumber(), Subject: pkix.Name{CommonName: "AWS IoT Certificate"},
		NotBefore: now.Add(-time.Hour), NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, s.ca, &key.PublicKey, s.caKey)
	if err != nil {
		return IoTCertificate{}, fmt.Errorf("emulator: iot: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return IoTCertificate{}, fmt.Errorf("emulator: iot: %w", err)
	}
	id := certID(der)
	c := &iotCert{things: map[string]bool{}}
	if thing != "" {
		c.things[thing] = true
	}
	s.mu.Lock()
	s.certs[id] = c
	s.mu.Unlock()
	e.log.Info("iot certificate issued", "certificateId", id, "thing", thing, "notAfter", notAfter.UTC())
	return IoTCertificate{ID: id, CertPEM: pemBlock("CERTIFICATE", der), KeyPEM: pemBlock("PRIVATE KEY", keyDER)}, nil
}

func certID(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// RevokeIoTCertificates revokes the certificate with id, or if thing is
// given instead, every certificate attached to it; it returns the ids
// revoked. Their holders get 403 from then on.
func (e *Emulator) RevokeIoTCertificates(id, thing string) ([]string, error) {
	s := e.iot
	if s == nil {
		return nil, errors.New("emulator: iot: not configured (Config.IoT is nil)")
	}
	if (id == "") == (thing == "") {
		return nil, errors.New("emulator: iot revoke: give a certificate id or a thing, not both")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for cid, c := range s.certs {
		if cid == id || thing != "" && c.things[thing] {
			c.revoked = true
			out = append(out, cid)
		}
	}
	if len(out) == 0 {
		if id != "" {
			return nil, fmt.Errorf("emulator: iot revoke: no certificate %q", clipValue(id))
		}
		return nil, fmt.Errorf("emulator: iot revoke: no certificate is attached to thing %q", clipValue(thing))
	}
	sort.Strings(out)
	e.log.Info("iot certificates revoked", "certificateIds", out)
	return out, nil
}

// IoTURL returns the IoT credentials endpoint's base URL
// (https://127.0.0.1:PORT), empty until the emulator listens or without
// [Config.IoT].
func (e *Emulator) IoTURL() string {
	if e.iot == nil {
		return ""
	}
	e.listenMu.Lock()
	defer e.listenMu.Unlock()
	return e.iot.url
}

// IoTCAPEM returns the CA certificate (PEM) the IoT endpoint's
// certificate and the device certificates chain to, or nil without
// [Config.IoT].
func (e *Emulator) IoTCAPEM() []byte {
	if e.iot == nil {
		return nil
	}
	return e.iot.caPEM
}

// listenIoT starts the IoT endpoint; called by Serve with listenMu held.
func (e *Emulator) listenIoT() error {
	s := e.iot
	addr := s.cfg.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("emulator: iot listen: %w", err)
	}
	// Any client certificate is taken in the handshake and judged by the
	// handler, so that a refusal is a 403 with a message, not a broken
	// handshake.
	tl := tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{s.server}, ClientAuth: tls.RequestClientCert, MinVersion: tls.VersionTLS12})
	s.url = "https://" + advertised("https", ln.Addr(), e.cfg.Hostname)
	s.srv = &http.Server{Handler: http.HandlerFunc(e.serveIoT), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		MaxHeaderBytes: 16 << 10, ErrorLog: slog.NewLogLogger(e.log.Handler(), slog.LevelDebug)}
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		s.srv.Serve(tl)
	}()
	e.log.Info("IoT credentials endpoint listening", "url", s.url, "roleAliases", len(s.aliases))
	return nil
}

// closeIoT stops the IoT endpoint, if it runs.
func (e *Emulator) closeIoT() {
	if e.iot == nil || e.iot.srv == nil {
		return
	}
	e.iot.srv.Close()
	<-e.iot.done
}

type iotCredentials struct {
	AccessKeyID     string `json:"accessKeyId"`
	SecretAccessKey string `json:"secretAccessKey"`
	SessionToken    string `json:"sessionToken"`
	Expiration      string `json:"expiration"`
}

// iotError is an answer of the IoT endpoint: {"message":…} with the code
// in x-amzn-ErrorType.
func iotError(w http.ResponseWriter, status int, code, msg string) {
	b, _ := json.Marshal(map[string]string{"message": msg})
	w.Header().Set("x-amzn-ErrorType", code)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

// serveIoT answers GET /role-aliases/ALIAS/credentials.
func (e *Emulator) serveIoT(w http.ResponseWriter, r *http.Request) {
	e.setCommonHeaders(w)
	alias, ok := strings.CutPrefix(r.URL.Path, "/role-aliases/")
	alias, ok2 := strings.CutSuffix(alias, "/credentials")
	if !ok || !ok2 || alias == "" || strings.Contains(alias, "/") {
		iotError(w, http.StatusNotFound, "ResourceNotFoundException", "no such resource: want GET /role-aliases/ALIAS/credentials")
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		iotError(w, http.StatusMethodNotAllowed, "MethodNotAllowedException", r.Method+" is not allowed: use GET")
		return
	}
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		iotError(w, http.StatusForbidden, "AccessDeniedException", "Missing client certificate")
		return
	}
	leaf := r.TLS.PeerCertificates[0]
	id, status, code, msg := e.judgeIoTCert(leaf, r.Header.Get("x-amzn-iot-thingname"))
	if status == 0 {
		a, found := e.iot.aliases[alias]
		if !found {
			status, code, msg = http.StatusNotFound, "ResourceNotFoundException", "Role alias does not exist"
		} else {
			e.issueIoTCredentials(w, a, id, r.Header.Get("x-amzn-iot-thingname"))
			return
		}
	}
	e.log.Info("iot credentials refused", "status", status, "code", code, "reason", msg, "roleAlias", clipValue(alias), "certificateId", id)
	iotError(w, status, code, msg)
}

// judgeIoTCert checks a client certificate and the thing it claims; a
// zero status accepts them.
func (e *Emulator) judgeIoTCert(leaf *x509.Certificate, thing string) (id string, status int, code, msg string) {
	s := e.iot
	id = certID(leaf.Raw)
	s.mu.Lock()
	c, known := s.certs[id]
	revoked := known && c.revoked
	attached := known && c.things[thing]
	s.mu.Unlock()
	now := e.now()
	switch {
	case !known || leaf.CheckSignatureFrom(s.ca) != nil:
		return id, http.StatusForbidden, "AccessDeniedException", "Certificate is invalid on this endpoint"
	case revoked:
		return id, http.StatusForbidden, "AccessDeniedException", "Certificate is revoked"
	case now.After(leaf.NotAfter) || now.Before(leaf.NotBefore):
		return id, http.StatusForbidden, "AccessDeniedException", "Certificate is expired or not yet valid"
	case thing != "" && !iotThingRE.MatchString(thing):
		return id, http.StatusBadRequest, "InvalidRequestException", "Invalid thing name"
	case thing != "" && !attached:
		return id, http.StatusForbidden, "AccessDeniedException", "Thing " + thing + " is not attached to the certificate"
	}
	return id, 0, "", ""
}

// issueIoTCredentials answers with new temporary credentials of the
// alias's role, limited by [Config.Policy] as an assumed role's are, and
// carrying the policy variables of the certificate and thing.
func (e *Emulator) issueIoTCredentials(w http.ResponseWriter, a IoTRoleAlias, certID, thing string) {
	parts := strings.SplitN(a.RoleARN, ":", 6)
	roleName := strings.TrimPrefix(parts[5], "role/")
	if i := strings.LastIndexByte(roleName, '/'); i >= 0 {
		roleName = roleName[i+1:]
	}
	sum := sha256.Sum256([]byte(a.RoleARN))
	userID := "AROA" + strings.ToUpper(hex.EncodeToString(sum[:8])) + ":" + certID
	vars := map[string]string{"credentials-iot:awscertificateid": certID, "aws:userid": userID}
	if thing != "" {
		vars["credentials-iot:thingname"] = thing
	}
	c := e.issue(a.Duration, issued{kind: credRole, arn: "arn:aws:sts::" + parts[4] + ":assumed-role/" + roleName + "/" + certID,
		grant: grant(nil).with(e.identity), vars: vars})
	b, _ := json.Marshal(map[string]iotCredentials{"credentials": {AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey,
		SessionToken: c.SessionToken, Expiration: c.Expires.UTC().Format("2006-01-02T15:04:05Z")}})
	e.log.Info("iot issued credentials", "roleAlias", a.Name, "thing", thing, "certificateId", certID, "accessKeyId", c.AccessKeyID, "expires", c.Expires)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Write(b)
}

// adminIoTRevoke serves POST /_emulator/iot/revoke?certificate=ID or
// ?thing=NAME.
func (e *Emulator) adminIoTRevoke(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ids, err := e.RevokeIoTCertificates(q.Get("certificate"), q.Get("thing"))
	if err != nil {
		status := http.StatusBadRequest
		if strings.Contains(err.Error(), "no certificate") {
			status = http.StatusNotFound
		}
		adminError(w, status, "%s", strings.TrimPrefix(err.Error(), "emulator: "))
		return
	}
	adminJSON(w, http.StatusOK, map[string][]string{"revoked": ids})
}
