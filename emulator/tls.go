package emulator

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"time"
)

// makeCertificate creates a self-signed certificate for the loopback names
// and Config.Hostname, and writes it to cfg.CertFile if set. Its validity uses real time: TLS
// clients check it against their own clocks.
func (e *Emulator) makeCertificate() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("emulator: tls: %w", err)
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "kvssign emulator", Organization: []string{"kvssign"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if e.cfg.Hostname != "" {
		tmpl.DNSNames = append(tmpl.DNSNames, e.cfg.Hostname)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("emulator: tls: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("emulator: tls: %w", err)
	}
	e.tlsCert = &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	e.certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if e.cfg.CertFile != "" {
		if err := writeFileAtomic(e.cfg.CertFile, e.certPEM); err != nil {
			return fmt.Errorf("emulator: tls: writing the certificate: %w", err)
		}
	}
	return nil
}

// CertificatePEM returns the self-signed certificate (PEM) clients must
// trust when the emulator serves TLS, or nil.
func (e *Emulator) CertificatePEM() []byte { return e.certPEM }

// CertPool returns a pool holding the emulator's certificate, for a Go
// client's tls.Config.RootCAs, or nil without TLS.
func (e *Emulator) CertPool() *x509.CertPool {
	if e.tlsCert == nil {
		return nil
	}
	p := x509.NewCertPool()
	p.AddCert(e.tlsCert.Leaf)
	return p
}
