// Package emulator is a local Amazon Kinesis Video Streams for WebRTC
// signaling: the control plane (create, describe, list, delete channels,
// get their endpoints), STS (AssumeRole, GetSessionToken), GetIceServerConfig
// and the signaling WebSocket, all on one listener, with real SigV4
// verification of every request; and two TURN servers on 127.0.0.1 (UDP,
// TCP and, with TLS, TLS) that accept the credentials GetIceServerConfig
// issues. Browsers may call the APIs (CORS is answered); with
// [Config.Hostname] on port 443 it stands in for KVS's own host name.
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
//	POST /webrtc/w-XXXXXXXX/joinStorageSession…  the storage peer of WebRTC ingestion (storage_peer.go)
//	     /_emulator/…                      admin: stats, faults, GO_AWAY, drop (no auth, loopback, same-origin only)
//
// With [Config.IoT], an emulated AWS IoT credentials provider listens on a
// port of its own ([Emulator.IoTURL]): GET /role-aliases/ALIAS/credentials
// over mutual TLS.
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

	mu       sync.Mutex // guards channels, byARN and the state file
	channels map[string]*channel
	byARN    map[string]*channel
	streams  streamSet // Kinesis video streams (streams.go)
	journal  journalState

	connMu sync.Mutex // guards conns
	conns  map[*conn]struct{}
	connID uint64

	faults faultState
	stats  counters
	quotas *quotaState

	inflight  atomic.Int64   // signaling handshakes under way
	sockets   atomic.Int64   // signaling sockets registered and not yet closed (countedConn)
	budgetLog rate.Sometimes // paces the warning of a spent budget

	srv     *http.Server
	ln      net.Listener
	base    string // scheme://host:port once listening
	tlsCert *tls.Certificate
	certPEM []byte
	done    chan struct{}
	closeMu sync.Mutex
	closed  bool
	// wg counts every goroutine the emulator starts (the HTTP server, the
	// sweeper, each signaling connection and its closing), so that Close
	// returns only when they have ended; after Close waits, none may be
	// added (see track).
	wg       sync.WaitGroup
	wgClosed bool         // guarded by closeMu
	conning  atomic.Int64 // goroutines counted by track and not yet untracked
	// stop aborts the signaling connections' reads once Close has given
	// them time to close cleanly.
	stopCtx context.Context
	stop    context.CancelFunc
	// watchOnce starts watchWrites with the first signaling connection,
	// whether the emulator serves or is mounted in another server.
	watchOnce sync.Once
	bufPool   sync.Pool
	listenMu  sync.Mutex
	turns     []*turnServer // GetIceServerConfig's two servers; none until serving, or with DisableTURN
	turnKey   []byte        // HMAC key of TURN passwords
	iot       *iotState     // the IoT credentials endpoint (iot.go); nil without Config.IoT
	storage   storageState  // the storage peer of WebRTC ingestion (storage_peer.go)
	// reqTimeout bounds reading a request (its body: the headers have the
	// server's own limit) and writing its answer, for all but the
	// signaling WebSocket, so that a slow client cannot hold a connection.
	reqTimeout time.Duration
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
		channels: make(map[string]*channel),
		byARN:    make(map[string]*channel),
		streams:  newStreamSet(),
		conns:    make(map[*conn]struct{}),
		done:     make(chan struct{}),
		turnKey:  newTURNKey(),

		reqTimeout: 10 * time.Second,
	}
	e.stopCtx, e.stop = context.WithCancel(context.Background())
	e.stats.init()
	e.budgetLog = rate.Sometimes{First: 1, Interval: 10 * time.Second}
	e.quotas = newQuotaState(cfg.Quotas, func() { e.stats.throttled.Add(1) })
	e.verifier = &sigv4.Verifier{Service: kvs.Service, Region: cfg.Region, Lookup: e.creds.lookup, Clock: cfg.Clock}
	e.stsVer = &sigv4.Verifier{Service: "sts", Lookup: e.creds.lookup, Clock: cfg.Clock}
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
	if cfg.IoT != nil {
		if err := e.setupIoT(); err != nil {
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
	// No TCP keepalive: its four setsockopt calls were a tenth of a
	// handshake's CPU, and the idle timeout ends connections whose peer
	// vanished, as it does on KVS.
	lc := net.ListenConfig{KeepAlive: -1}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
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
		// Two servers, as KVS returns, so that clients which try them in
		// turn or drop one meet a second.
		for range 2 {
			ts, err := e.startTURN(e.tlsCert)
			if err != nil {
				for _, t := range e.turns {
					t.close()
				}
				e.turns = nil
				ln.Close()
				return err
			}
			e.turns = append(e.turns, ts)
			e.log.Info("TURN server listening", "uris", ts.uris(e.turnHost()), "realm", turnRealm)
		}
	}
	if e.iot != nil {
		if err := e.listenIoT(); err != nil {
			for _, t := range e.turns {
				t.close()
			}
			e.turns = nil
			ln.Close()
			return err
		}
	}
	ln = e.watchAccept(ln)
	scheme := "http"
	if e.tlsCert != nil {
		scheme = "https"
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{*e.tlsCert}, MinVersion: tls.VersionTLS12})
	}
	e.ln = ln
	e.base = scheme + "://" + advertised(scheme, ln.Addr(), e.cfg.Hostname)
	e.srv = &http.Server{
		Handler:           e,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(e.log.Handler(), slog.LevelDebug),
	}
	e.wg.Add(2)
	go e.sweep()
	go func() {
		defer e.wg.Done()
		e.srv.Serve(ln)
	}()
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
	if len(e.turns) == 0 {
		return ""
	}
	return e.turns[0].udp.String()
}

// Region returns the emulator's region.
func (e *Emulator) Region() string { return e.cfg.Region }

// Account returns the emulator's account id.
func (e *Emulator) Account() string { return e.cfg.Account }

// Credentials returns the long-term credentials the emulator accepts.
func (e *Emulator) Credentials() sigv4.Credentials { return e.cfg.Credentials }

// Close stops serving: it closes every signaling connection with 1001
// (going away), the listener and the TURN servers with their allocations. It
// waits briefly for requests in flight and for peers to answer the close,
// then cuts the rest off, and returns when every goroutine the emulator
// started has ended.
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
	srv, turns := e.srv, e.turns
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
	// Polled rather than waited for: connections may still start
	// goroutines, which must not race a WaitGroup's Wait.
	for deadline := time.Now().Add(2 * time.Second); e.conning.Load() > 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	// Peers that have not answered the close frame lose their sockets.
	e.stop()
	e.closeMu.Lock()
	e.wgClosed = true
	e.closeMu.Unlock()
	e.wg.Wait()
	for _, ts := range turns {
		if terr := ts.close(); err == nil && terr != nil {
			err = fmt.Errorf("emulator: TURN: close: %w", terr)
		}
	}
	e.closeIoT()
	e.closeStorage()
	e.flushState()
	return err
}

// track counts a goroutine about to start in e.wg. It reports false once
// Close has stopped waiting for goroutines: the caller must then do the
// work synchronously or not at all.
func (e *Emulator) track() bool {
	e.closeMu.Lock()
	defer e.closeMu.Unlock()
	if e.wgClosed {
		return false
	}
	e.wg.Add(1)
	e.conning.Add(1)
	return true
}

// untrack ends a goroutine counted by track.
func (e *Emulator) untrack() {
	e.conning.Add(-1)
	e.wg.Done()
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

// advertised returns the authority (host[:port]) clients are given for a
// listener at addr: the configured host name, or the listener's address
// (loopback when it listens on every interface), without the port when it
// is the scheme's default, as the C SDK requires of KVS endpoints.
func advertised(scheme string, addr net.Addr, hostname string) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return addr.String()
	}
	host := hostname
	if host == "" {
		ip := tcp.IP
		if ip.IsUnspecified() {
			ip = net.IPv4(127, 0, 0, 1)
		}
		host = ip.String()
	}
	if (scheme == "https" && tcp.Port == 443) || (scheme == "http" && tcp.Port == 80) {
		if strings.Contains(host, ":") {
			return "[" + host + "]"
		}
		return host
	}
	return net.JoinHostPort(host, strconv.Itoa(tcp.Port))
}

// turnHost is the host the TURN servers' URIs name.
func (e *Emulator) turnHost() string {
	if e.cfg.Hostname != "" {
		return e.cfg.Hostname
	}
	return "127.0.0.1"
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
	if !strings.HasPrefix(p, "/signaling/") {
		// Not for the WebSocket, whose hijacked connection would keep
		// these deadlines. Mounted in a server that cannot set them, that
		// server's own limits apply.
		rc := http.NewResponseController(w)
		rc.SetReadDeadline(time.Now().Add(e.reqTimeout))
		rc.SetWriteDeadline(time.Now().Add(e.reqTimeout))
	}
	switch {
	case strings.HasPrefix(p, "/_emulator/"):
		e.serveAdmin(w, r)
	case strings.HasPrefix(p, "/signaling/master/") || p == "/signaling/master":
		e.serveSignaling(w, r, kvs.Master)
	case strings.HasPrefix(p, "/signaling/viewer/") || p == "/signaling/viewer":
		e.serveSignaling(w, r, kvs.Viewer)
	case e.serveCORS(w, r):
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
	defer e.wg.Done()
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
