// kvssign serve: the vending service (package vend) on a listener or as an
// AWS Lambda function, and kvssign serve hash-token for its static tokens.

package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/kvssign/kvssign/awskvs"
	"github.com/kvssign/kvssign/internal/batchlog"
	"github.com/kvssign/kvssign/vend"
)

// serveWeb is the browser page that --web serves at /. It is nil until a
// build embeds one (web/dist), which sets it from an init function.
var serveWeb fs.FS

type serveFlags struct {
	config, addr, region, profile, endpointURL, logLevel, redisURL string
	lambda, web                                                    bool
}

func newServeCmd() *cobra.Command {
	var f serveFlags
	c := &cobra.Command{
		Use:   "serve --config FILE [--addr HOST:PORT] [--region R] [--endpoint-url URL]",
		Short: "Vend signed URLs and ICE servers to clients over HTTP",
		Long: `Run the vending service: POST /v1/connections with a bearer token and
{"channel":"NAME","role":"VIEWER"} returns a signed URL for the channel and its
ICE servers, so that browsers and devices never hold AWS credentials. Callers
are authenticated (static tokens, JWTs), authorised per channel and role, and
rate-limited; channel lookups are cached. See docs/vend.md.

Flags override the configuration file, and KVSSIGN_CONFIG, KVSSIGN_ADDR,
KVSSIGN_REGION, KVSSIGN_PROFILE, KVSSIGN_ENDPOINT_URL, KVSSIGN_LOG_LEVEL and
KVSSIGN_REDIS_URL override it too (flags win). With --redis-url, copies of the
server share one cache, one set of rate limits and one AWS call budget (see
docs/deploy.md). AWS credentials come from the standard chain.
Logs are JSON lines on stderr; the listening address is printed on stdout
when the server is ready. SIGINT or SIGTERM drains requests in flight.

With --lambda (or when run by the Lambda runtime), the service answers
API Gateway proxy events (REST or HTTP APIs) instead of listening.`,
		Example: `  kvssign serve hash-token --generate
  kvssign serve --config vend.json
  kvssign serve --config vend.json --endpoint-url http://127.0.0.1:4567 --region us-west-2`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runServe(cmd, &f) },
	}
	fl := c.Flags()
	fl.StringVar(&f.config, "config", "", "configuration file (JSON; see docs/vend.md) [KVSSIGN_CONFIG]")
	fl.StringVar(&f.addr, "addr", "", "listen address host:port (default 127.0.0.1:8080) [KVSSIGN_ADDR]")
	fl.StringVar(&f.region, "region", "", "AWS region of the channels [KVSSIGN_REGION]")
	fl.StringVar(&f.profile, "profile", "", "shared config profile for AWS credentials [KVSSIGN_PROFILE]")
	fl.StringVar(&f.endpointURL, "endpoint-url", "", "send AWS calls here, e.g. http://127.0.0.1:4567 for the emulator [KVSSIGN_ENDPOINT_URL]")
	fl.StringVar(&f.logLevel, "log-level", "", "debug, info, warn or error (default info) [KVSSIGN_LOG_LEVEL]")
	fl.StringVar(&f.redisURL, "redis-url", "", "share the cache, rate limits and AWS call budget with other copies through this Redis (redis:// or rediss://; see docs/deploy.md) [KVSSIGN_REDIS_URL]")
	fl.BoolVar(&f.lambda, "lambda", false, "answer API Gateway events as an AWS Lambda function instead of listening")
	fl.BoolVar(&f.web, "web", false, "also serve the browser demo page at /")
	c.AddCommand(newHashTokenCmd())
	return c
}

// loadServeConfig reads the configuration and applies the environment and
// then the flags over it.
func loadServeConfig(cmd *cobra.Command, f *serveFlags) (vend.Config, error) {
	path := pick(cmd, "config", f.config, "KVSSIGN_CONFIG", "")
	if path == "" {
		return vend.Config{}, usagef("--config FILE is required (or KVSSIGN_CONFIG); see docs/vend.md for the format")
	}
	cfg, err := vend.LoadConfig(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return vend.Config{}, usagef("--config: %v", err)
		}
		return vend.Config{}, usageError{err}
	}
	cfg.Addr = pick(cmd, "addr", f.addr, "KVSSIGN_ADDR", cfg.Addr)
	cfg.Region = pick(cmd, "region", f.region, "KVSSIGN_REGION", cfg.Region)
	cfg.Profile = pick(cmd, "profile", f.profile, "KVSSIGN_PROFILE", cfg.Profile)
	cfg.EndpointURL = pick(cmd, "endpoint-url", f.endpointURL, "KVSSIGN_ENDPOINT_URL", cfg.EndpointURL)
	cfg.LogLevel = pick(cmd, "log-level", f.logLevel, "KVSSIGN_LOG_LEVEL", cfg.LogLevel)
	cfg.Redis.URL = pick(cmd, "redis-url", f.redisURL, "KVSSIGN_REDIS_URL", cfg.Redis.URL)
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:8080"
	}
	if err := cfg.Validate(); err != nil {
		return vend.Config{}, usageError{fmt.Errorf("%w (after flags and environment)", err)}
	}
	return cfg, nil
}

// pick returns the flag's value if it was given, else the environment
// variable's if set, else def.
func pick(cmd *cobra.Command, flag, val, env, def string) string {
	if cmd.Flags().Changed(flag) {
		return val
	}
	if v, ok := os.LookupEnv(env); ok && v != "" {
		return v
	}
	return def
}

func runServe(cmd *cobra.Command, f *serveFlags) error {
	ctx := cmd.Context()
	cfg, err := loadServeConfig(cmd, f)
	if err != nil {
		return err
	}
	var level slog.Level
	if cfg.LogLevel == "" {
		cfg.LogLevel = "info"
	}
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return usagef("--log-level %q: must be debug, info, warn or error", cfg.LogLevel)
	}
	logOut := cmd.ErrOrStderr()
	if !f.lambda && os.Getenv("AWS_LAMBDA_RUNTIME_API") == "" {
		// A listener writes its lines in batches, off the request path; a
		// Lambda function is frozen between events, so it writes each at
		// once.
		lw := batchlog.NewWriter(logOut)
		defer lw.Close()
		logOut = lw
	}
	log := slog.New(slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: level}))
	var static http.FileSystem
	if f.web {
		if serveWeb == nil {
			return usagef("--web: this build has no embedded web page")
		}
		static = http.FS(serveWeb)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	awsCfg, err := awskvs.LoadConfig(ctx, awskvs.ConfigOptions{Profile: cfg.Profile, Region: cfg.Region, EndpointURL: cfg.EndpointURL})
	if err != nil {
		var pe config.SharedConfigProfileNotExistError
		if errors.As(err, &pe) || errors.Is(err, awskvs.ErrInvalidArgument) {
			return usageError{err}
		}
		return err
	}
	if awsCfg.HTTPClient, err = vend.CountUpstream(reg, awsCfg.HTTPClient); err != nil {
		return err
	}
	fleet, err := shareFleet(cfg, log, reg, &awsCfg)
	if err != nil {
		return err
	}
	if fleet != nil {
		defer fleet.Close()
	}
	if awsCfg.Region == "" {
		return usagef("no region: set region in the config, --region, KVSSIGN_REGION or AWS_REGION")
	}
	if cfg.Region == "" {
		// The region the SDK chose bounds the ARNs callers may give.
		cfg.Region = awsCfg.Region
	}
	backend, resolver := newBackend(cfg, awsCfg, log, fleet)
	// Fail now, not on the first request, when there are no credentials.
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	_, err = resolver.Credentials.Retrieve(cctx)
	cancel()
	if err != nil {
		return fmt.Errorf("no AWS credentials to sign with: %w", err)
	}
	opts := vend.Options{
		Backend:     backend,
		Fleet:       fleet,
		Credentials: resolver.Credentials,
		Logger:      log,
		Registry:    reg,
		Static:      static,
	}
	if sc := cfg.ScopedCredentials; sc != nil {
		opts.Scoper = vend.NewSTSScoper(sts.NewFromConfig(awsCfg), *sc, cfg.URLExpires.D(), nil)
	}
	srv, err := vend.New(cfg, opts)
	if err != nil {
		return usageError{err}
	}

	if f.lambda || os.Getenv("AWS_LAMBDA_RUNTIME_API") != "" {
		log.Info("kvssign serve: answering API Gateway events as a Lambda function")
		lambda.StartWithOptions(srv.HandleLambda, lambda.WithContext(ctx))
		return nil
	}
	if _, set := os.LookupEnv("GOGC"); !set {
		// The live heap is a few MiB, so at the default of 100 the
		// collector runs every few thousand requests and takes a tenth
		// of the CPU at full load; 400 trades a few more MiB of heap for
		// most of that. GOGC in the environment overrides.
		debug.SetGCPercent(400)
	}
	return listenAndServe(ctx, cmd.OutOrStdout(), cfg, srv, log)
}

// newBackend returns the server's backend, over a resolver (and one that
// creates channels when a rule allows it), shared through fleet if set,
// and the resolver.
func newBackend(cfg vend.Config, awsCfg aws.Config, log *slog.Logger, fleet *vend.Fleet) (vend.Backend, *awskvs.Resolver) {
	newResolver := func(create bool) *awskvs.Resolver {
		r := awskvs.NewResolver(awsCfg)
		r.IncludeICEServers = true
		r.CreateIfMissing = create
		r.CacheTTL = cfg.Cache.TTL.D()
		r.MaxStale = cfg.Cache.StaleFor.D()
		r.NotFoundTTL = cfg.Cache.NotFoundFor.D()
		r.Logger = log
		return r
	}
	resolver := newResolver(false)
	var creating *awskvs.Resolver
	for _, r := range cfg.Rules {
		if r.CreateChannel {
			creating = newResolver(true)
			break
		}
	}
	backend := vend.NewResolverBackend(resolver, creating)
	if fleet != nil {
		backend = fleet.Backend(backend, cfg.Cache)
	}
	return backend, resolver
}

// shareFleet connects to the configured Redis, if any, and makes every
// KVS call through awsCfg draw from the AWS call budget (the fleet's, or
// this copy's without Redis).
func shareFleet(cfg vend.Config, log *slog.Logger, reg *prometheus.Registry, awsCfg *aws.Config) (*vend.Fleet, error) {
	var fleet *vend.Fleet
	if cfg.Redis.URL != "" {
		var err error
		if fleet, err = vend.NewFleet(cfg, log, reg); err != nil {
			return nil, usageError{err}
		}
	}
	client, err := vend.BudgetUpstream(reg, cfg, fleet, awsCfg.HTTPClient)
	if err != nil {
		if fleet != nil {
			fleet.Close()
		}
		return nil, err
	}
	awsCfg.HTTPClient = client
	return fleet, nil
}

// listenAndServe serves until ctx is done, then drains: /readyz turns 503
// for the shutdown delay, the listener closes, and requests in flight get
// up to the shutdown timeout to finish.
func listenAndServe(ctx context.Context, stdout io.Writer, cfg vend.Config, srv *vend.Server, log *slog.Logger) error {
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.Addr, err)
	}
	return serveListener(ctx, ln, stdout, cfg, srv, log)
}

// serveListener is listenAndServe on a listener the caller opened.
func serveListener(ctx context.Context, ln net.Listener, stdout io.Writer, cfg vend.Config, srv *vend.Server, log *slog.Logger) error {
	hs := srv.HTTPServer(cfg.Addr)
	scheme := "http"
	if cfg.TLS != nil {
		scheme = "https"
	}
	done := make(chan error, 1)
	if cfg.TLS != nil {
		cert, err := tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile)
		if err != nil {
			ln.Close()
			return fmt.Errorf("tls: %w", err)
		}
		// TLS under srv.Listener, so that net/http's own error answers are
		// seen in the clear and made JSON; HTTP/1.1 only, as net/http
		// serves HTTP/2 only on a *tls.Conn of its own.
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}})
	}
	go func() { done <- hs.Serve(srv.Listener(ln)) }()
	addr := ln.Addr().String()
	log.Info("kvssign serve: listening", "addr", addr)
	fmt.Fprintf(stdout, "kvssign serve: listening on %s://%s\n", scheme, addr)

	select {
	case err := <-done:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	srv.SetDraining(true)
	if d := cfg.Shutdown.Delay.D(); d > 0 {
		log.Info("kvssign serve: draining", "delay", d.String())
		time.Sleep(d)
	}
	timeout := cfg.Shutdown.Timeout.D()
	if timeout == 0 {
		timeout = 20 * time.Second
	}
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := hs.Shutdown(sctx)
	<-done
	srv.Close()
	if err != nil {
		hs.Close()
		return fmt.Errorf("shutting down: requests still running after %v: %w", timeout, err)
	}
	log.Info("kvssign serve: stopped")
	return nil
}

func newHashTokenCmd() *cobra.Command {
	var generate bool
	c := &cobra.Command{
		Use:   "hash-token [--generate]",
		Short: "Print the SHA-256 of a bearer token for the config's auth.tokens",
		Long: `Read a bearer token from standard input (one line) and print its SHA-256, as
kept in the configuration's auth.tokens[].sha256. With --generate, make a new
random token and print it and its hash: give the token to the caller and keep
only the hash. The token is read from stdin, not an argument, so that it stays
out of shell history and process lists.`,
		Example: `  kvssign serve hash-token --generate
  printf %s "$TOKEN" | kvssign serve hash-token`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			if generate {
				var b [32]byte
				rand.Read(b[:])
				tok := "kvst_" + base64.RawURLEncoding.EncodeToString(b[:])
				fmt.Fprintf(out, "token:  %s\nsha256: %s\n", tok, vend.HashToken(tok))
				return nil
			}
			line, err := bufio.NewReader(io.LimitReader(cmd.InOrStdin(), 16<<10)).ReadString('\n')
			if err != nil && err != io.EOF {
				return err
			}
			tok := strings.TrimRight(line, "\r\n")
			if tok == "" {
				return usagef("no token on standard input: pipe one in, or use --generate")
			}
			if strings.ContainsAny(tok, " \t") {
				return usagef("the token has spaces: a bearer token is one word")
			}
			fmt.Fprintln(out, vend.HashToken(tok))
			return nil
		},
	}
	c.Flags().BoolVar(&generate, "generate", false, "generate a new random token and print it with its hash")
	return c
}
