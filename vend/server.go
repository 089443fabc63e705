package vend

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/sigv4"
)

// Options are what a [Server] needs besides its [Config].
type Options struct {
	// Backend resolves channels. Required. If it has a method Close()
	// error, [Server.Close] calls it: give each Server a Backend of its
	// own.
	Backend Backend
	// Credentials sign the URLs when Scoper is nil. Required unless
	// Scoper is set.
	Credentials sigv4.CredentialsProvider
	// Scoper, if set, supplies the credentials to sign each URL with,
	// scoped to its channel and role.
	Scoper Scoper
	// Clock returns the current time for signing, token checks and rate
	// limits. If nil, time.Now.
	Clock func() time.Time
	// Logger receives request, audit and error lines. If nil, nothing is
	// logged.
	Logger *slog.Logger
	// Registry receives the server's metrics and is served at /metrics.
	// If nil, a new registry with the Go and process collectors is used.
	Registry *prometheus.Registry
	// Static, if set, is served at / (GET and HEAD) for paths the API
	// does not use, such as a browser demo page.
	Static http.FileSystem
	// HTTPClient fetches the JWT key set. If nil, a client with a 5s
	// timeout.
	HTTPClient *http.Client
	// Getenv reads the HS256 secret's environment variable. If nil,
	// os.Getenv.
	Getenv func(string) string
	// Fleet, if set, counts the per-address and per-caller limits across
	// the copies of the server that share its Redis, and /readyz reports
	// on it. Its [Fleet.Backend] shares the cache.
	Fleet *Fleet
}

// A Server is the vending service's HTTP handler. Create it with [New]; it
// is safe for concurrent use.
type Server struct {
	cfg       Config
	backend   Backend
	scoper    Scoper
	presigner kvs.Presigner
	auth      *authenticator
	policy    *policy
	ipLimit   *limiter[netip.Addr]
	prLimit   *limiter[string]
	refreshes *limiter[string] // per channel: Backend.Forget calls
	cors      corsPolicy
	arns      *arnScope
	ice       iceJSON
	proxies   []netip.Prefix
	log       *slog.Logger
	clock     func() time.Time
	realClock bool // clock is time.Now: a request's start time is its now
	m         *metrics
	metricsH  http.Handler
	static    http.Handler
	fleet     *Fleet

	maxBody        int64
	requestTimeout time.Duration
	admit          *admission
	conns          *connCap // nil: no limits.maxConnections
	hsts           bool

	draining atomic.Bool
	reqSeq   atomic.Uint64
	reqBase  string
}

// refreshEvery is how often a channel's cached answer may be dropped at a
// client's request.
const refreshEvery = 5 * time.Second

// Routes, as metric labels.
const (
	routeConnections = "connections"
	routeHealth      = "healthz"
	routeReady       = "readyz"
	routeMetrics     = "metrics"
	routeStatic      = "static"
	routeOther       = "other"
)

// New returns a server for cfg, which must have passed [Config.Validate]
// (as [LoadConfig] and [ParseConfig] do).
func New(cfg Config, opts Options) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Backend == nil {
		return nil, errors.New("vend: Options.Backend is required")
	}
	if opts.Credentials == nil && opts.Scoper == nil {
		return nil, errors.New("vend: Options.Credentials or Options.Scoper is required")
	}
	s := &Server{
		cfg:            cfg,
		backend:        opts.Backend,
		scoper:         opts.Scoper,
		policy:         newPolicy(cfg.Rules),
		log:            opts.Logger,
		clock:          opts.Clock,
		maxBody:        cfg.Limits.MaxBodyBytes,
		requestTimeout: orDuration(cfg.Limits.RequestTimeout, 10*time.Second),
		hsts:           cfg.HSTS,
	}
	s.conns = newConnCap(cfg.Limits.MaxConnections)
	// A request waits for a slot at most half of its time, and half of
	// the time it has to send its body.
	s.admit = newAdmission(cfg.Limits.MaxInFlight, min(s.requestTimeout, orDuration(cfg.Limits.ReadTimeout, defaultReadTimeout))/2)
	if s.clock == nil {
		s.clock, s.realClock = time.Now, true
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.maxBody == 0 {
		s.maxBody = 4096
	}
	// Without a Scoper no request carries scoped credentials, and the
	// base provider signs without a look through the request's context.
	var creds sigv4.CredentialsProvider = scopedFirst{opts.Credentials}
	if opts.Scoper == nil {
		creds = opts.Credentials
	}
	s.presigner = kvs.Presigner{Credentials: creds, Expires: cfg.urlExpires(), Clock: s.clock}
	client := opts.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: jwksTimeout}
	}
	getenv := opts.Getenv
	if getenv == nil {
		getenv = osGetenv
	}
	var err error
	if s.auth, err = newAuthenticator(cfg.Auth, s.clock, client, getenv, s.log); err != nil {
		return nil, err
	}
	if s.auth.jwt != nil && s.auth.jwt.keys != nil {
		s.auth.jwt.keys.maybeRefresh(false) // warm the key set in the background
	}
	s.ipLimit = newLimiter[netip.Addr](cfg.Limits.PerIP, 10, 20)
	s.prLimit = newLimiter[string](cfg.Limits.PerPrincipal, 5, 10)
	s.refreshes = newLimiter[string](Rate{}, 1/refreshEvery.Seconds(), 1)
	if f := opts.Fleet; f != nil {
		s.fleet = f
		shareLimiter(f, s.ipLimit, "ip", netip.Addr.String, parseAddr, s.clock)
		shareLimiter(f, s.prLimit, "principal", sameString, sameKey, s.clock)
		shareLimiter(f, s.refreshes, "refresh", sameString, sameKey, s.clock)
	}
	s.cors = newCORS(cfg.CORS)
	s.arns = newARNScope(cfg)
	s.proxies, _ = parsePrefixes(cfg.TrustedProxies)
	reg := opts.Registry
	if reg == nil {
		reg = newRegistry()
	}
	if s.m, err = newMetrics(reg); err != nil {
		return nil, fmt.Errorf("vend: metrics: %w", err)
	}
	s.metricsH = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	if opts.Static != nil {
		s.static = http.FileServer(opts.Static)
	}
	var b [4]byte
	rand.Read(b[:])
	s.reqBase = hex.EncodeToString(b[:]) + "-"
	return s, nil
}

// defaultReadTimeout is limits.readTimeout's default.
const defaultReadTimeout = 10 * time.Second

// Close stops the server's background work (the JWT key set's fetches,
// and the Backend's and the Scoper's if they have a method Close() error)
// and waits for it to end. Call it once requests are done.
func (s *Server) Close() error {
	if s.auth.jwt != nil && s.auth.jwt.keys != nil {
		s.auth.jwt.keys.close()
	}
	var errs []error
	for _, part := range []any{s.backend, s.scoper} {
		if c, ok := part.(interface{ Close() error }); ok {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}

// SetDraining marks the server as shutting down (true) or not: while
// draining, /readyz answers 503 so that load balancers stop sending
// requests, and requests still get answered.
func (s *Server) SetDraining(d bool) { s.draining.Store(d) }

// HTTPServer returns an http.Server for s with the configured timeouts and
// header limit, listening on addr.
func (s *Server) HTTPServer(addr string) *http.Server {
	l := s.cfg.Limits
	var state func(net.Conn, http.ConnState)
	if s.conns != nil {
		state = s.conns.state
	}
	return &http.Server{
		Addr:              addr,
		ConnState:         state,
		Handler:           s,
		ReadHeaderTimeout: orDuration(l.ReadHeaderTimeout, 5*time.Second),
		ReadTimeout:       orDuration(l.ReadTimeout, defaultReadTimeout),
		WriteTimeout:      orDuration(l.WriteTimeout, 20*time.Second),
		IdleTimeout:       orDuration(l.IdleTimeout, 60*time.Second),
		// net/http reads MaxHeaderBytes plus 4096 bytes of request line
		// and headers before it answers 431.
		MaxHeaderBytes: max(s.headerLimit()-4096, 1),
		ErrorLog:       slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
}

// headerLimit is the most bytes of request line and headers a request may
// have.
func (s *Server) headerLimit() int {
	if h := s.cfg.Limits.MaxHeaderBytes; h != 0 {
		return h
	}
	return 16 << 10
}

// ServeHTTP answers a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	s.m.inFlight.Inc()
	route := routeOther
	status := 0
	defer func() {
		v := recover()
		if v != nil && v != http.ErrAbortHandler {
			// Invariant: no input takes the server down. The panic value
			// is our own code's and holds no secret.
			s.log.Error("panic serving request", "route", route, "panic", fmt.Sprint(v))
			status = writeError(w, http.StatusInternalServerError, "internal", "internal error", "")
		}
		s.m.inFlight.Dec()
		s.m.observe(route, status, time.Since(start).Seconds())
		if v == http.ErrAbortHandler {
			panic(v)
		}
	}()
	h := w.Header()
	if s.conns != nil && s.conns.full() {
		h["Connection"] = hdrClose // make room for a new connection
	}
	h["X-Content-Type-Options"] = hdrNosniff
	h["Referrer-Policy"] = hdrNoReferrer
	if s.hsts {
		h["Strict-Transport-Security"] = hdrHSTS
	}
	switch r.URL.Path {
	case "/v1/connections":
		route = routeConnections
		h["Cache-Control"] = hdrNoStore
		h["X-Frame-Options"] = hdrDeny
		h["Content-Security-Policy"] = hdrCSP
		status = s.serveConnections(w, r, start)
	case "/healthz":
		route = routeHealth
		status = s.serveProbe(w, r, true)
	case "/readyz":
		route = routeReady
		status = s.serveProbe(w, r, !s.draining.Load())
	case "/metrics":
		route = routeMetrics
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			status = methodNotAllowed(w, "GET, HEAD")
			return
		}
		sw := &statusWriter{ResponseWriter: w}
		s.metricsH.ServeHTTP(sw, r)
		status = sw.code()
	default:
		if s.static != nil && (r.Method == http.MethodGet || r.Method == http.MethodHead) && !strings.HasPrefix(r.URL.Path, "/v1/") {
			route = routeStatic
			sw := &statusWriter{ResponseWriter: w}
			s.static.ServeHTTP(sw, r)
			status = sw.code()
			return
		}
		h["Cache-Control"] = hdrNoStore
		status = writeError(w, http.StatusNotFound, "not_found", "no such endpoint; the API is POST /v1/connections", "")
	}
}

// Header values, shared so that setting them does not allocate.
var (
	hdrNosniff    = []string{"nosniff"}
	hdrClose      = []string{"close"}
	hdrNoReferrer = []string{"no-referrer"}
	hdrNoStore    = []string{"no-store"}
	hdrDeny       = []string{"DENY"}
	hdrCSP        = []string{"default-src 'none'; frame-ancestors 'none'"}
	hdrHSTS       = []string{"max-age=31536000; includeSubDomains"}
	hdrJSON       = []string{"application/json"}
)

func (s *Server) serveProbe(w http.ResponseWriter, r *http.Request, ok bool) int {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return methodNotAllowed(w, "GET, HEAD")
	}
	w.Header()["Cache-Control"] = hdrNoStore
	if !ok {
		return writeError(w, http.StatusServiceUnavailable, "draining", "the server is shutting down", "")
	}
	if s.fleet != nil {
		// A copy without Redis still serves; the note is for operators.
		return writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "redis": s.fleet.readiness()})
	}
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// serveConnections answers POST /v1/connections; start is when the
// request came.
func (s *Server) serveConnections(w http.ResponseWriter, r *http.Request, start time.Time) int {
	h := w.Header()
	origin := r.Header.Get("Origin")
	ip := s.clientIP(r)
	now := start
	if !s.realClock {
		now = s.clock()
	}
	if ok, wait := s.ipLimit.allow(ipKey(ip), now); !ok {
		s.m.limited.WithLabelValues("ip").Inc()
		s.refused(r, http.StatusTooManyRequests, "rate_limited", ip, nil, "per-address limit")
		h["Retry-After"] = []string{formatSeconds(wait)}
		return writeError(w, http.StatusTooManyRequests, "rate_limited", "too many requests from this address; retry after "+formatSeconds(wait)+"s", "")
	}
	if origin != "" {
		if !s.cors.allowed(origin, r.Host) {
			s.refused(r, http.StatusForbidden, "origin_not_allowed", ip, nil, "")
			return writeError(w, http.StatusForbidden, "origin_not_allowed", "this origin may not call the API; add it to cors.allowedOrigins", "")
		}
		h["Access-Control-Allow-Origin"] = []string{origin}
		h["Vary"] = []string{"Origin"}
		h["Access-Control-Expose-Headers"] = []string{"Retry-After, X-Request-Id"}
		if r.Method == http.MethodOptions {
			return s.preflight(w, r)
		}
	}
	if r.Method != http.MethodPost {
		if r.Method == http.MethodOptions {
			h["Allow"] = []string{"POST, OPTIONS"}
			w.WriteHeader(http.StatusNoContent)
			return http.StatusNoContent
		}
		return methodNotAllowed(w, "POST, OPTIONS")
	}
	if !s.admit.enter(r.Context()) {
		s.m.busy.Inc()
		s.refused(r, http.StatusServiceUnavailable, "unavailable", ip, nil, "in-flight bound")
		wait := formatSeconds(busyRetryAfter())
		h["Retry-After"] = []string{wait}
		return writeError(w, http.StatusServiceUnavailable, "unavailable", "the server is busy; retry after "+wait+"s", "")
	}
	defer s.admit.leave()
	reqID := s.requestID()
	h["X-Request-Id"] = []string{reqID}
	// Everything below, a JWT key fetch and AWS calls included, has
	// requestTimeout.
	ctx := newLazyTimeout(r.Context(), start.Add(s.requestTimeout))
	defer ctx.stop()

	tok, aerr := bearer(r.Header.Get("Authorization"))
	var p *principal
	if aerr == nil {
		p, aerr = s.auth.authenticate(ctx, tok)
	}
	if aerr == errIssuerDown {
		s.m.authFailure.WithLabelValues(aerr.reason).Inc()
		// The key set's fetch logs the failure once; this is per request.
		s.refused(r, http.StatusServiceUnavailable, "unavailable", ip, nil, aerr.reason)
		h["Retry-After"] = []string{"5"}
		return writeError(w, http.StatusServiceUnavailable, "unavailable", aerr.message, "")
	}
	if aerr != nil {
		s.m.authFailure.WithLabelValues(aerr.reason).Inc()
		s.refused(r, http.StatusUnauthorized, "unauthenticated", ip, nil, aerr.reason)
		h["Www-Authenticate"] = []string{`Bearer realm="kvssign"`}
		return writeError(w, http.StatusUnauthorized, "unauthenticated", aerr.message, "")
	}
	if ok, wait := s.prLimit.allow(p.id, now); !ok {
		s.m.limited.WithLabelValues("principal").Inc()
		s.refused(r, http.StatusTooManyRequests, "rate_limited", ip, p, "per-caller limit")
		h["Retry-After"] = []string{formatSeconds(wait)}
		return writeError(w, http.StatusTooManyRequests, "rate_limited", "too many requests from this caller; retry after "+formatSeconds(wait)+"s", "")
	}
	c := &call{r: r, ip: ip, p: p, reqID: reqID, now: now}
	if status := s.checkRequest(w, c); status != 0 {
		return status
	}
	return s.vend(ctx, w, c)
}

// call is what is known about a request once its caller is authenticated.
type call struct {
	r     *http.Request
	ip    netip.Addr
	p     *principal
	reqID string
	now   time.Time

	// Set by checkRequest.
	req      connectionRequest
	role     kvs.Role
	name     string // the channel's name, from its ARN if given one
	byARN    bool
	clientID string
}

// checkRequest reads the body and checks it against the rules; it answers
// and returns the status when the request goes no further, else 0.
func (s *Server) checkRequest(w http.ResponseWriter, c *call) int {
	r, ip, p := c.r, c.ip, c.p
	req, status, code, msg, field := s.decode(r)
	if status != 0 {
		s.refused(r, status, code, ip, p, field)
		return writeError(w, status, code, msg, field)
	}
	role, name, ferr := validateRequest(&req)
	if ferr != nil {
		s.refused(r, http.StatusBadRequest, "invalid_argument", ip, p, ferr.field)
		return writeError(w, http.StatusBadRequest, "invalid_argument", ferr.msg, ferr.field)
	}
	g := s.policy.decide(p, name, role)
	if !g.allowed {
		s.refused(r, http.StatusForbidden, "forbidden", ip, p, "channel or role not allowed")
		return writeError(w, http.StatusForbidden, "forbidden", fmt.Sprintf("you may not connect to channel %q as %s", name, role), "")
	}
	// After the rules, so that only a caller allowed the channel's name
	// learns the server's regions and accounts.
	byARN := strings.HasPrefix(req.Channel, "arn:")
	if byARN {
		a, _ := kvs.ParseChannelARN(req.Channel)
		if rule := s.arns.check(a); rule != "" {
			s.refused(r, http.StatusForbidden, "forbidden", ip, p, "channel ARN outside the server's scope")
			return writeError(w, http.StatusForbidden, "forbidden", "channel: "+rule, "channel")
		}
	}
	if req.Create && !g.create {
		s.refused(r, http.StatusForbidden, "forbidden", ip, p, "create not allowed")
		return writeError(w, http.StatusForbidden, "forbidden", fmt.Sprintf("you may not create channel %q", name), "create")
	}
	clientID := ""
	if role == kvs.Viewer {
		var err error
		if clientID, err = viewerClientID(p, req.ClientID, g.anyClientID); err != nil {
			var ce *clientIDError
			if errors.As(err, &ce) {
				s.refused(r, http.StatusForbidden, "forbidden", ip, p, "clientId not bound to the caller")
				return writeError(w, http.StatusForbidden, "forbidden", ce.msg, "clientId")
			}
			s.refused(r, http.StatusBadRequest, "invalid_argument", ip, p, "clientId")
			return writeError(w, http.StatusBadRequest, "invalid_argument", "clientId: "+reason(err), "clientId")
		}
	}
	c.req, c.role, c.name, c.byARN, c.clientID = req, role, name, byARN, clientID
	return 0
}

// vend resolves the channel, signs the URL and answers.
func (s *Server) vend(ctx context.Context, w http.ResponseWriter, c *call) int {
	h := w.Header()
	r, ip, p, req, role, name, byARN, clientID, reqID := c.r, c.ip, c.p, c.req, c.role, c.name, c.byARN, c.clientID, c.reqID
	if req.Refresh {
		// A URL vended earlier was refused. Forgetting is rationed per
		// channel, since every lookup after it costs AWS calls.
		if ok, _ := s.refreshes.allow(req.Channel, c.now); ok {
			s.backend.Forget(req.Channel)
		}
	}
	t, berr := s.backend.Connection(ctx, req.Channel, role, req.Create)
	if berr != nil {
		if byARN && errors.Is(berr, ErrForbidden) {
			// The caller's ARN, not the server's permissions.
			s.refused(r, http.StatusForbidden, "forbidden", ip, p, "AWS denied access to the channel ARN")
			return writeError(w, http.StatusForbidden, "forbidden", fmt.Sprintf("channel: this server may not use channel %q", req.Channel), "channel")
		}
		return s.backendError(w, r, berr, ip, p, name)
	}
	if !byARN {
		s.arns.learn(t.ChannelARN)
	}
	switch {
	case t.Stale:
		s.m.cache.WithLabelValues("stale").Inc()
	case t.FromCache:
		s.m.hit.Inc()
	default:
		s.m.miss.Inc()
	}
	sctx := ctx
	if s.scoper != nil {
		creds, err := s.scoper.ScopedCredentials(ctx, t.ChannelARN, role)
		if err != nil {
			return s.backendError(w, r, err, ip, p, name)
		}
		sctx = context.WithValue(ctx, scopedKey{}, creds)
	}
	signed, err := s.presigner.Presign(sctx, t.Endpoint, t.ChannelARN, role, clientID)
	if err != nil {
		// Presign's errors name the endpoint, ARN or credential expiry,
		// never a secret; they are still not shown to the caller.
		s.log.LogAttrs(r.Context(), slog.LevelError, "signing failed", slog.String("requestId", reqID), slog.String("principal", p.id), slog.String("channel", name), slog.String("err", err.Error()))
		h["Retry-After"] = []string{"1"}
		return writeError(w, http.StatusServiceUnavailable, "unavailable", "cannot sign right now; retry later", "")
	}
	region := t.Region
	if region == "" {
		if a, err := kvs.ParseChannelARN(t.ChannelARN); err == nil {
			region = a.Region
		}
	}
	ice := t.ICEServers
	if ice == nil {
		ice = []ICEServer{}
	}
	s.m.vendedFor(role).Inc()
	s.logVended(r.Context(),
		slog.String("requestId", reqID),
		slog.String("principal", p.id),
		slog.String("channel", name),
		slog.String("channelArn", t.ChannelARN),
		slog.String("role", string(role)),
		slog.String("clientId", clientID),
		slog.String("ip", ipString(r.RemoteAddr, ip)),
		slog.Bool("cached", t.FromCache),
		slog.Time("expiresAt", signed.ExpiresAt),
	)
	return s.writeConnection(w, &connectionResponse{
		URL:        signed.URL,
		ExpiresAt:  signed.ExpiresAt,
		Role:       role,
		ClientID:   clientID,
		ChannelARN: t.ChannelARN,
		Region:     region,
		Endpoint:   t.Endpoint,
		ICEServers: ice,
	})
}

// vendedPC is the program counter of logVended's call, for the record's
// source.
var vendedPC atomic.Uintptr

// logVended logs a vended URL's audit line with attrs, as
// s.log.LogAttrs(ctx, slog.LevelInfo, "vended", attrs...) does, but finds
// its caller's program counter once instead of walking the stack on every
// request (0.3 µs of a request's 40 µs of CPU).
func (s *Server) logVended(ctx context.Context, attrs ...slog.Attr) {
	h := s.log.Handler()
	if !h.Enabled(ctx, slog.LevelInfo) {
		return
	}
	pc := vendedPC.Load()
	if pc == 0 {
		var pcs [1]uintptr
		runtime.Callers(2, pcs[:]) // the caller of logVended
		pc = pcs[0]
		vendedPC.Store(pc)
	}
	rec := slog.NewRecord(time.Now(), slog.LevelInfo, "vended", pc)
	rec.AddAttrs(attrs...)
	_ = h.Handle(ctx, rec)
}

// preflight answers a CORS preflight from an allowed origin.
func (s *Server) preflight(w http.ResponseWriter, r *http.Request) int {
	h := w.Header()
	if m := r.Header.Get("Access-Control-Request-Method"); m != "" && m != http.MethodPost {
		return writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "only POST is allowed", "")
	}
	h["Access-Control-Allow-Methods"] = []string{"POST"}
	h["Access-Control-Allow-Headers"] = []string{"Authorization, Content-Type"}
	h["Access-Control-Max-Age"] = []string{s.cors.maxAge}
	h["Vary"] = []string{"Origin, Access-Control-Request-Method, Access-Control-Request-Headers"}
	w.WriteHeader(http.StatusNoContent)
	return http.StatusNoContent
}

type fieldError struct{ field, msg string }

// reason words a kvs validation error for an answer that names the field:
// without the package prefix.
func reason(err error) string {
	if fe, ok := errors.AsType[*kvs.FieldError](err); ok {
		return fe.Reason()
	}
	return err.Error()
}

// validateRequest checks the fields and returns the role and the channel's
// name (from the ARN when an ARN is given).
func validateRequest(req *connectionRequest) (kvs.Role, string, *fieldError) {
	if req.Role == "" {
		return "", "", &fieldError{"role", "role: is required: MASTER or VIEWER"}
	}
	role, err := kvs.ParseRole(req.Role)
	if err != nil {
		return "", "", &fieldError{"role", fmt.Sprintf("role %q: must be MASTER or VIEWER", clip(req.Role))}
	}
	if req.Channel == "" {
		return "", "", &fieldError{"channel", "channel: is required: a channel name or ARN"}
	}
	name := req.Channel
	if strings.HasPrefix(req.Channel, "arn:") {
		a, err := kvs.ParseChannelARN(req.Channel)
		if err != nil {
			return "", "", &fieldError{"channel", "channel: " + reason(err)}
		}
		if req.Create {
			return "", "", &fieldError{"create", "create: give a channel name, not an ARN, to create a channel"}
		}
		name = a.Name
	} else if err := kvs.ValidateChannelName(req.Channel); err != nil {
		return "", "", &fieldError{"channel", "channel: " + reason(err)}
	}
	if role == kvs.Master && req.ClientID != "" {
		return "", "", &fieldError{"clientId", "clientId: a MASTER connects without a client id"}
	}
	return role, name, nil
}

// backendError answers a failure to resolve the channel or get credentials.
func (s *Server) backendError(w http.ResponseWriter, r *http.Request, err error, ip netip.Addr, p *principal, name string) int {
	h := w.Header()
	attrs := []slog.Attr{slog.String("requestId", h.Get("X-Request-Id")), slog.String("principal", p.id), slog.String("channel", name), slog.String("ip", ip.String())}
	switch {
	case errors.Is(err, ErrChannelNotFound):
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "request refused", append(attrs, slog.Int("status", 404), slog.String("code", "channel_not_found"))...)
		return writeError(w, http.StatusNotFound, "channel_not_found", fmt.Sprintf("channel %q does not exist", name), "channel")
	case errors.Is(err, ErrInvalid):
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "request refused", append(attrs, slog.Int("status", 400), slog.String("code", "invalid_argument"), slog.String("err", err.Error()))...)
		return writeError(w, http.StatusBadRequest, "invalid_argument", "AWS refused the channel or role", "channel")
	case errors.Is(err, ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		wait := 2 * time.Second
		var ra retryAfterError
		if errors.As(err, &ra) && ra.RetryAfter() > 0 {
			wait = ra.RetryAfter()
		}
		s.log.LogAttrs(r.Context(), slog.LevelWarn, "upstream unavailable", append(attrs, slog.String("err", err.Error()))...)
		h["Retry-After"] = []string{formatSeconds(wait)}
		return writeError(w, http.StatusServiceUnavailable, "unavailable", "AWS is unavailable and nothing usable is cached; retry after "+formatSeconds(wait)+"s", "")
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads this answer.
		return writeError(w, 499, "canceled", "request canceled", "")
	}
	s.log.LogAttrs(r.Context(), slog.LevelError, "upstream error", append(attrs, slog.String("err", err.Error()))...)
	return writeError(w, http.StatusBadGateway, "upstream_error", "AWS refused the request; the operator has been told", "")
}

// refused logs a refused request, without anything secret.
func (s *Server) refused(r *http.Request, status int, code string, ip netip.Addr, p *principal, detail string) {
	if !s.log.Enabled(r.Context(), slog.LevelInfo) {
		return
	}
	pid := ""
	if p != nil {
		pid = p.id
	}
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "request refused",
		slog.Int("status", status), slog.String("code", code), slog.String("ip", ip.String()),
		slog.String("principal", pid), slog.String("detail", detail))
}

// clientIP is the peer's address, or with trusted proxies in front, the
// last address in X-Forwarded-For that is not one of them.
func (s *Server) clientIP(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	var ip netip.Addr
	if err == nil {
		ip = ap.Addr().Unmap()
	} else if a, err := netip.ParseAddr(r.RemoteAddr); err == nil {
		ip = a.Unmap()
	}
	if len(s.proxies) == 0 || !s.trusted(ip) {
		return ip
	}
	xff := r.Header.Values("X-Forwarded-For")
	for i := len(xff) - 1; i >= 0; i-- {
		parts := strings.Split(xff[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				return ip // a forged or broken header: trust only the proxy
			}
			a = a.Unmap()
			if !s.trusted(a) {
				return a
			}
			ip = a
		}
	}
	return ip
}

// ipString returns ip as text: for an IPv4 peer, the host part of
// remoteAddr, which is the same text, without formatting and allocating
// it again.
func ipString(remoteAddr string, ip netip.Addr) string {
	if i := strings.LastIndexByte(remoteAddr, ':'); i > 0 && ip.Is4() {
		if a, err := netip.ParseAddr(remoteAddr[:i]); err == nil && a == ip {
			return remoteAddr[:i]
		}
	}
	return ip.String()
}

func (s *Server) trusted(ip netip.Addr) bool {
	for _, p := range s.proxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func (s *Server) requestID() string {
	var buf [32]byte
	b := strconv.AppendUint(append(buf[:0], s.reqBase...), s.reqSeq.Add(1), 10)
	return string(b)
}

// jsonBuffer is a pooled buffer and an encoder writing to it, which
// leaves & < > as they are (a URL's query keeps its & readable).
type jsonBuffer struct {
	buf bytes.Buffer
	enc *json.Encoder
	out []byte // for writeConnection
}

var jsonBuffers = sync.Pool{New: func() any {
	b := &jsonBuffer{}
	b.enc = json.NewEncoder(&b.buf)
	b.enc.SetEscapeHTML(false)
	return b
}}

// writeJSON writes v with status and returns status.
func writeJSON(w http.ResponseWriter, status int, v any) int {
	jb := jsonBuffers.Get().(*jsonBuffer)
	defer jsonBuffers.Put(jb)
	jb.buf.Reset()
	body := []byte(`{"error":{"code":"internal","message":"internal error"}}` + "\n")
	if err := jb.enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
	} else {
		body = jb.buf.Bytes()
	}
	h := w.Header()
	h["Content-Type"] = hdrJSON
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(status)
	w.Write(body)
	return status
}

// apiError is the JSON error body.
type apiError struct {
	Error errorBody `json:"error"`
}

type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func writeError(w http.ResponseWriter, status int, code, msg, field string) int {
	return writeJSON(w, status, apiError{errorBody{code, msg, field}})
}

func methodNotAllowed(w http.ResponseWriter, allow string) int {
	w.Header()["Allow"] = []string{allow}
	return writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed; use "+allow, "")
}

// statusWriter remembers the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

var _ http.Handler = (*Server)(nil)

// scopedKey carries a request's scoped credentials to the presigner, so
// that one kvs.Presigner, with its caches, signs for every request.
type scopedKey struct{}

// scopedFirst is the presigner's credentials provider: a request's scoped
// credentials when it has them, otherwise base.
type scopedFirst struct{ base sigv4.CredentialsProvider }

func (p scopedFirst) Retrieve(ctx context.Context) (sigv4.Credentials, error) {
	if c, ok := ctx.Value(scopedKey{}).(sigv4.Credentials); ok {
		return c, nil
	}
	if p.base == nil {
		return sigv4.Credentials{}, errors.New("vend: no credentials provider")
	}
	return p.base.Retrieve(ctx)
}

// lazyTimeout is a request's deadline, as context.WithDeadline gives,
// whose timer is armed only when something waits on it or asks whether it
// has passed. A request answered from the cache, with a static token,
// never does, and saves the timer and its allocations.
type lazyTimeout struct {
	parent   context.Context
	deadline time.Time
	once     sync.Once
	ctx      context.Context // set by once
	cancel   context.CancelFunc
	armed    atomic.Bool // ctx is the deadline's context (not stoppedContext)
}

func newLazyTimeout(parent context.Context, deadline time.Time) *lazyTimeout {
	return &lazyTimeout{parent: parent, deadline: deadline}
}

func (c *lazyTimeout) arm() context.Context {
	c.once.Do(func() {
		c.ctx, c.cancel = context.WithDeadline(c.parent, c.deadline)
		c.armed.Store(true)
	})
	return c.ctx
}

func (c *lazyTimeout) Deadline() (time.Time, bool) {
	if d, ok := c.parent.Deadline(); ok && d.Before(c.deadline) {
		return d, true
	}
	return c.deadline, true
}

func (c *lazyTimeout) Done() <-chan struct{} { return c.arm().Done() }
func (c *lazyTimeout) Err() error            { return c.arm().Err() }

// Value answers from the armed context once there is one, so that a
// context derived from c finds c's own cancellation instead of needing a
// goroutine to watch c; before, from the parent, without arming.
func (c *lazyTimeout) Value(key any) any {
	if c.armed.Load() {
		return c.ctx.Value(key)
	}
	return c.parent.Value(key)
}

// stop ends the context, as the cancel function of context.WithDeadline
// does: later callers see it done, with context.Canceled.
func (c *lazyTimeout) stop() {
	c.once.Do(func() { c.ctx = stoppedContext })
	if c.cancel != nil {
		c.cancel()
	}
}

// stoppedContext is the state of a lazyTimeout stopped before it was
// armed.
var stoppedContext = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()
