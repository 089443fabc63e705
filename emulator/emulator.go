// Package emulator is a local Amazon Kinesis Video Streams for WebRTC
// signaling: the control plane (create, describe, list, delete channels,
// get their endpoints), STS (AssumeRole, GetSessionToken), GetIceServerConfig
// and the signaling WebSocket, all on one listener, with real SigV4
// verification of every request; and a TURN server on a UDP port of
// 127.0.0.1 that accepts the credentials GetIceServerConfig issues.
//
// It behaves like KVS where a client can tell (status codes, JSON shapes,
// error codes, message routing, limits) so that clients tested against it
// work against AWS; docs/emulator.md lists the differences. It also injects
// faults (GO_AWAY, dropped connections, throttled or failing calls) and
// counts every call, so that tests can prove retries and caching.
//
// URL layout, relative to [Emulator.URL]:
//
//	POST /createSignalingChannel …        kinesisvideo control plane (REST-JSON)
//	POST /                                 STS (Query protocol, Action=…)
//	GET  /signaling/master/m-XXXXXXXX?…    ConnectAsMaster (presigned WebSocket)
//	GET  /signaling/viewer/v-XXXXXXXX?…    ConnectAsViewer
//	POST /ice/r-XXXXXXXX/v1/get-ice-server-config
//	     /_emulator/…                      admin: stats, faults, GO_AWAY, drop (no auth, loopback only)
package emulator

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/sigv4"
)

// An Emulator serves the emulated KVS. Create one with [New], start it with
// [Emulator.Start] or [Emulator.Listen], stop it with [Emulator.Close]. Its
// methods are safe for concurrent use.
type Emulator struct {
	cfg      Config
	log      *slog.Logger
	creds    *credStore
	identity *policy         // Config.Policy; nil if none
	verifier *sigv4.Verifier // kinesisvideo, the configured region
	stsVer   *sigv4.Verifier // sts, any region
	keys     *sigv4.KeyCache

	mu       sync.Mutex // guards channels, byARN and the state file
	channels map[string]*channel
	byARN    map[string]*channel
	journal  journalState

	connMu sync.Mutex // guards conns
	conns  map[*conn]struct{}
	connID uint64

	faults faultState
	stats  counters
	quotas *quotaState

	inflight  atomic.Int64   // signaling handshakes under way
	budgetLog rate.Sometimes // paces the warning of a spent budget

	srv      *http.Server
	ln       net.Listener
	base     string // scheme://host:port once listening
	tlsCert  *tls.Certificate
	certPEM  []byte
	done     chan struct{}
	closeMu  sync.Mutex
	closed   bool
	janitor  sync.WaitGroup
	bufPool  sync.Pool
	listenMu sync.Mutex
	turn     *turnServer // nil until serving, or with DisableTURN
	turnKey  []byte      // HMAC key of TURN passwords
}

// New returns an emulator configured by cfg, with the channels of
// cfg.StateFile if set. It does not listen yet.
func New(cfg Config) (*Emulator, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	var identity *policy
	if cfg.Policy != "" {
		if identity, err = parsePolicy(cfg.Policy, maxPolicySize); err != nil {
			return nil, fmt.Errorf("emulator: policy: %w", err)
		}
	}
	e := &Emulator{
		cfg:      cfg,
		log:      cfg.Logger,
		identity: identity,
		creds:    newCredStore(cfg.Credentials, cfg.Account, identity),
		keys:     sigv4.NewKeyCache(256),
		channels: make(map[string]*channel),
		byARN:    make(map[string]*channel),
		conns:    make(map[*conn]struct{}),
		done:     make(chan struct{}),
		turnKey:  newTURNKey(),
	}
	e.stats.init()
	e.budgetLog = rate.Sometimes{First: 1, Interval: 10 * time.Second}
	e.quotas = newQuotaState(cfg.Quotas, func() { e.stats.throttled.Add(1) })
	e.verifier = &sigv4.Verifier{Service: kvs.Service, Region: cfg.Region, Lookup: e.creds.lookup, Clock: cfg.Clock, Keys: e.keys}
	e.stsVer = &sigv4.Verifier{Service: "sts", Lookup: e.creds.lookup, Clock: cfg.Clock, Keys: e.keys}
	e.bufPool.New = func() any { b := make([]byte, 0, 4096); return &b }
	if cfg.StateFile != "" {
		if err := e.loadState(); err != nil {
			return nil, err
		}
	}
	if cfg.TLS {
		if err := e.makeCertificate(); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// Start listens on a free port of 127.0.0.1 and serves in the background.
func (e *Emulator) Start() error { return e.Listen("127.0.0.1:0") }

// Listen listens on addr (host:port; port 0 picks a free one) and serves in
// the background until [Emulator.Close].
func (e *Emulator) Listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("emulator: listen: %w", err)
	}
	return e.Serve(ln)
}

// Serve serves on ln in the background until [Emulator.Close]. The
// emulator takes ownership of ln.
func (e *Emulator) Serve(ln net.Listener) error {
	e.listenMu.Lock()
	defer e.listenMu.Unlock()
	if e.ln != nil {
		ln.Close()
		return errors.New("emulator: already serving")
	}
	e.closeMu.Lock()
	closed := e.closed
	e.closeMu.Unlock()
	if closed {
		ln.Close()
		return errors.New("emulator: closed")
	}
	if !e.cfg.DisableTURN {
		ts, err := e.startTURN()
		if err != nil {
			ln.Close()
			return err
		}
		e.turn = ts
		e.log.Info("TURN server listening", "addr", ts.addr.String(), "realm", turnRealm)
	}
	ln = e.watchAccept(ln)
	scheme := "http"
	if e.tlsCert != nil {
		scheme = "https"
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{*e.tlsCert}, MinVersion: tls.VersionTLS12})
	}
	e.ln = ln
	addr := ln.Addr().String()
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && tcp.IP.IsUnspecified() {
		// Listening on every interface: point clients at loopback.
		addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(tcp.Port))
	}
	e.base = scheme + "://" + addr
	e.srv = &http.Server{
		Handler:           e,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(e.log.Handler(), slog.LevelDebug),
	}
	e.janitor.Add(1)
	go e.sweep()
	go e.srv.Serve(ln)
	e.log.Info("emulator listening", "url", e.base, "region", e.cfg.Region, "account", e.cfg.Account, "accessKeyId", e.cfg.Credentials.AccessKeyID)
	return nil
}

// URL returns the base URL (http://127.0.0.1:PORT, or https with TLS), for
// an SDK's BaseEndpoint or the aws CLI's --endpoint-url. It is empty until
// the emulator listens.
func (e *Emulator) URL() string {
	e.listenMu.Lock()
	defer e.listenMu.Unlock()
	return e.base
}

// TURNAddr returns the address (127.0.0.1:PORT, UDP) of the emulator's
// TURN server. It is empty until the emulator listens, and with
// [Config.DisableTURN].
func (e *Emulator) TURNAddr() string {
	e.listenMu.Lock()
	defer e.listenMu.Unlock()
	if e.turn == nil {
		return ""
	}
	return e.turn.addr.String()
}

// Region returns the emulator's region.
func (e *Emulator) Region() string { return e.cfg.Region }

// Account returns the emulator's account id.
func (e *Emulator) Account() string { return e.cfg.Account }

// Credentials returns the long-term credentials the emulator accepts.
func (e *Emulator) Credentials() sigv4.Credentials { return e.cfg.Credentials }

// Close stops serving: it closes every signaling connection with 1001
// (going away), the listener and the TURN server with its allocations, and
// waits briefly for requests in flight.
func (e *Emulator) Close() error {
	e.closeMu.Lock()
	if e.closed {
		e.closeMu.Unlock()
		return nil
	}
	e.closed = true
	close(e.done)
	e.closeMu.Unlock()

	e.listenMu.Lock()
	srv, ts := e.srv, e.turn
	e.listenMu.Unlock()
	var err error
	if srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		// Shutdown does not wait for hijacked (WebSocket) connections.
		err = srv.Shutdown(ctx)
		cancel()
		if err != nil {
			srv.Close()
		}
	}
	forEachConn(e.liveConns(), func(c *conn) bool { c.close(statusGoingAway, "emulator shutting down"); return true })
	if ts != nil {
		if terr := ts.close(); err == nil && terr != nil {
			err = fmt.Errorf("emulator: TURN: close: %w", terr)
		}
	}
	e.janitor.Wait()
	e.flushState()
	return err
}

func (e *Emulator) now() time.Time { return e.cfg.Clock() }

func (e *Emulator) isClosed() bool {
	select {
	case <-e.done:
		return true
	default:
		return false
	}
}

// baseFor returns the scheme and authority endpoints should point at: the
// listener's, or when the emulator is mounted in another server, the
// request's.
func (e *Emulator) baseFor(r *http.Request) (scheme, host string) {
	e.listenMu.Lock()
	base := e.base
	e.listenMu.Unlock()
	if base != "" {
		scheme, host, _ = strings.Cut(base, "://")
		return scheme, host
	}
	scheme = "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme, r.Host
}

// ServeHTTP routes a request; an Emulator can also be mounted in another
// server (endpoints then point at the request's Host).
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		// Invariant: bad input never takes the emulator down.
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			e.log.Error("panic serving request", "path", r.URL.Path, "panic", fmt.Sprint(v))
			e.writeJSONError(w, errors.New("panic"))
		}
	}()
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/_emulator/"):
		e.serveAdmin(w, r)
	case strings.HasPrefix(p, "/signaling/master/") || p == "/signaling/master":
		e.serveSignaling(w, r, kvs.Master)
	case strings.HasPrefix(p, "/signaling/viewer/") || p == "/signaling/viewer":
		e.serveSignaling(w, r, kvs.Viewer)
	case isAlexaPath(p):
		e.serveAlexa(w, r)
	case strings.HasPrefix(p, "/ice/"):
		e.serveICE(w, r)
	case p == "/" && r.Method == http.MethodPost:
		e.serveSTS(w, r)
	default:
		e.serveControl(w, r)
	}
}

// sweep drops expired held messages every few seconds.
func (e *Emulator) sweep() {
	defer e.janitor.Done()
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-e.done:
			return
		case <-t.C:
			now := e.now()
			e.mu.Lock()
			chs := make([]*channel, 0, len(e.channels))
			for _, ch := range e.channels {
				chs = append(chs, ch)
			}
			e.mu.Unlock()
			for _, ch := range chs {
				ch.mu.Lock()
				for k, msgs := range ch.held {
					if kept := dropExpired(msgs, now, ch.messageTTL); len(kept) == 0 {
						delete(ch.held, k)
					} else {
						ch.held[k] = kept
					}
				}
				ch.mu.Unlock()
			}
		}
	}
}
