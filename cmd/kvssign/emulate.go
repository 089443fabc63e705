package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kvssign/kvssign/emulator"
	"github.com/kvssign/kvssign/sigv4"
)

type emulateFlags struct {
	addr, region, account          string
	accessKeyID, secretAccessKey   string
	tls, noTURN                    bool
	certFile, stateFile, logLevel  string
	policyFile, hostname           string
	channels, corsOrigins          []string
	idle, maxDuration, goAwayGrace time.Duration
	stsMin                         time.Duration
	maxViewers                     int
	connectRate, sdpRate, iceRate  float64
	limits                         *limitFlags   // quotas and the connection budget: emulate_limits.go
	storage                        *storageFlags // the storage peer: emulate_storage.go
	iotAddr, iotDir                string
	iotThings, iotAliases          []string
}

func newEmulateCmd() *cobra.Command {
	var f emulateFlags
	c := &cobra.Command{
		Use:   "emulate [--addr 127.0.0.1:PORT] [--region R] [--account ID] [--tls] [--state FILE] [--policy FILE]",
		Short: "Run a local Kinesis Video Streams signaling emulator",
		Long: `Run a local Kinesis Video Streams emulator on one listener: the control plane
(CreateSignalingChannel, DescribeSignalingChannel, GetSignalingChannelEndpoint,
ListSignalingChannels, DeleteSignalingChannel), STS (AssumeRole, GetSessionToken),
GetIceServerConfig and the signaling WebSocket, all verifying SigV4 signatures.

Point an AWS SDK or the aws CLI at it with --endpoint-url (or BaseEndpoint),
using the credentials it prints, or, for clients bound to KVS's own host name
(the C SDK), run it with --tls --addr 127.0.0.1:443 --hostname
kinesisvideo.REGION.amazonaws.com and map that name to 127.0.0.1 in
/etc/hosts. Browsers may call it: CORS is answered for any origin unless
--cors-origins lists them. Admin endpoints (stats, faults, GO_AWAY,
dropped connections) are under /_emulator/ for loopback clients; see
docs/emulator.md. It runs until interrupted (SIGINT or SIGTERM).

Without --policy, valid credentials may do everything. With --policy FILE (an
IAM policy document: Effect, Action, Resource, with * and ? wildcards), every
control-plane call, GetIceServerConfig and signaling handshake must be allowed
by it, or gets 403 AccessDeniedException; it applies to the long-term key and
to every role assumed through the emulator's STS, whose session policies
(AssumeRole's Policy) narrow it further.

With --iot-thing NAME and --iot-role-alias ALIAS=ROLE_ARN[:SECONDS], it also
runs an AWS IoT credentials provider on its own port (mutual TLS), issues each
thing a certificate and key under --iot-dir, and hands devices temporary
credentials of the alias's role for them; --policy may confine each device with
${credentials-iot:ThingName}. POST /_emulator/iot/revoke?thing=NAME revokes.`,
		Example: `  kvssign emulate --addr 127.0.0.1:4567 --create-channel demo
  AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY \
    aws --endpoint-url http://127.0.0.1:4567 --region us-west-2 kinesisvideo list-signaling-channels`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runEmulate(cmd, &f) },
	}
	fl := c.Flags()
	fl.StringVar(&f.addr, "addr", "127.0.0.1:0", "listen address host:port (port 0 picks a free one)")
	fl.StringVar(&f.region, "region", "us-west-2", "the emulated region")
	fl.StringVar(&f.account, "account", "123456789012", "the emulated 12-digit account id")
	fl.StringVar(&f.accessKeyID, "access-key-id", "", "access key id to accept (default: AWS's documented example key)")
	fl.StringVar(&f.secretAccessKey, "secret-access-key", "", "secret access key to accept, with --access-key-id: - reads it from stdin (default: $"+envEmulatorSecret+"; a value here shows in ps)")
	fl.BoolVar(&f.tls, "tls", false, "serve https and wss with a self-signed certificate")
	fl.BoolVar(&f.noTURN, "no-turn", false, "run no TURN server (GetIceServerConfig then hands out URIs nothing answers)")
	fl.StringVar(&f.certFile, "tls-cert", "", "with --tls, where to write the certificate for clients to trust (default: kvssign-emulator.pem in the temp dir)")
	fl.StringVar(&f.stateFile, "state", "", "keep channels in this file across restarts")
	fl.StringArrayVar(&f.channels, "create-channel", nil, "create this channel at start unless it exists (repeatable)")
	fl.DurationVar(&f.idle, "idle-timeout", 10*time.Minute, "close signaling connections idle this long")
	fl.DurationVar(&f.maxDuration, "max-connection-duration", time.Hour, "close signaling connections this old (GO_AWAY is sent --go-away-grace before)")
	fl.DurationVar(&f.goAwayGrace, "go-away-grace", time.Minute, "how long a connection stays open after GO_AWAY")
	fl.IntVar(&f.maxViewers, "max-viewers", 10, "viewers per channel (-1: unlimited)")
	fl.Float64Var(&f.connectRate, "connect-rate", 3, "connections per second per channel and role (-1: unlimited)")
	fl.Float64Var(&f.sdpRate, "sdp-rate", 5, "SDP offers (and answers) per second per connection (-1: unlimited)")
	fl.Float64Var(&f.iceRate, "ice-rate", 20, "ICE candidates per second per connection (-1: unlimited)")
	fl.DurationVar(&f.stsMin, "sts-min-duration", 15*time.Minute, "shortest DurationSeconds STS accepts")
	fl.StringVar(&f.logLevel, "log-level", "info", "log level on stderr: debug, info, warn, error or off")
	fl.StringVar(&f.hostname, "hostname", "", "host name to advertise in endpoints, TURN URIs and the certificate (map it to the listen address in /etc/hosts); with --tls on port 443, endpoints carry no port")
	fl.StringSliceVar(&f.corsOrigins, "cors-origins", nil, "origins (scheme://host[:port], comma-separated) whose pages may call the SigV4 APIs (default: any)")
	fl.StringVar(&f.policyFile, "policy", "", "IAM identity policy (a JSON file) every request must be allowed by (default: everything allowed)")
	fl.StringVar(&f.iotAddr, "iot-addr", "127.0.0.1:0", "with --iot-thing or --iot-role-alias, the AWS IoT credentials endpoint's listen address (mutual TLS)")
	fl.StringVar(&f.iotDir, "iot-dir", filepath.Join(os.TempDir(), "kvssign-iot"), "where the IoT CA (ca.pem) and each thing's THING.cert.pem and THING.private.key are written")
	fl.StringArrayVar(&f.iotThings, "iot-thing", nil, "issue a device certificate attached to this IoT thing (repeatable)")
	fl.StringArrayVar(&f.iotAliases, "iot-role-alias", nil, "IoT role alias ALIAS=ROLE_ARN[:SECONDS] (credentials last SECONDS, default 3600; AWS takes 900 to 43200, the emulator from 1) (repeatable)")
	f.limits = addLimitFlags(fl)
	f.storage = addStorageFlags(fl)
	return c
}

func runEmulate(cmd *cobra.Command, f *emulateFlags) error {
	if _, port, err := net.SplitHostPort(f.addr); err != nil || port == "" {
		return usagef("--addr %q: must be host:port, e.g. 127.0.0.1:0", f.addr)
	}
	secret, err := emulatorSecret(cmd, f.secretAccessKey)
	if err != nil {
		return err
	}
	if (f.accessKeyID == "") != (secret == "") {
		return usagef("--access-key-id and --secret-access-key (or $%s): give both or neither", envEmulatorSecret)
	}
	for name, d := range map[string]time.Duration{"--idle-timeout": f.idle, "--max-connection-duration": f.maxDuration, "--go-away-grace": f.goAwayGrace, "--sts-min-duration": f.stsMin} {
		if d <= 0 {
			return usagef("%s %v: must be positive", name, d)
		}
	}
	for name, r := range map[string]float64{"--connect-rate": f.connectRate, "--sdp-rate": f.sdpRate, "--ice-rate": f.iceRate} {
		if r == 0 || (r < 0 && r != -1) {
			return usagef("%s %v: must be positive, or -1 for unlimited", name, r)
		}
	}
	if f.maxViewers == 0 || f.maxViewers < -1 {
		return usagef("--max-viewers %d: must be positive, or -1 for unlimited", f.maxViewers)
	}
	if f.certFile != "" && !f.tls {
		return usagef("--tls-cert: needs --tls")
	}
	var policy string
	if f.policyFile != "" {
		var err error
		if policy, err = readPolicy(f.policyFile); err != nil {
			return usagef("--policy %s: %v", f.policyFile, err)
		}
	}
	logger, err := emulatorLogger(cmd.ErrOrStderr(), f.logLevel)
	if err != nil {
		return err
	}

	cfg := emulator.Config{
		Region:                f.region,
		Account:               f.account,
		Credentials:           sigv4.Credentials{AccessKeyID: f.accessKeyID, SecretAccessKey: secret},
		Logger:                logger,
		IdleTimeout:           f.idle,
		MaxConnectionDuration: f.maxDuration,
		GoAwayGrace:           f.goAwayGrace,
		MaxViewers:            f.maxViewers,
		ConnectRate:           f.connectRate,
		SDPRate:               f.sdpRate,
		ICERate:               f.iceRate,
		STSMinDuration:        f.stsMin,
		DisableTURN:           f.noTURN,
		Policy:                policy,
		CORSOrigins:           f.corsOrigins,
		Hostname:              f.hostname,
	}
	if err := f.limits.apply(&cfg, logger); err != nil {
		return err
	}
	if err := f.storage.apply(&cfg); err != nil {
		return err
	}
	if cfg.IoT, err = f.iotConfig(); err != nil {
		return err
	}
	// Flag values first (a bad one is a usage error), then the files.
	if _, err := emulator.New(cfg); err != nil {
		return usagef("%v", err)
	}
	cfg.StateFile = f.stateFile
	if cfg.IoT != nil {
		cfg.IoT.Dir = f.iotDir
	}
	if f.tls {
		cfg.TLS = true
		cfg.CertFile = f.certFile
		if cfg.CertFile == "" {
			cfg.CertFile = filepath.Join(os.TempDir(), "kvssign-emulator.pem")
		}
	}
	e, err := emulator.New(cfg)
	if err != nil {
		return err
	}
	for _, name := range f.channels {
		if _, err := e.CreateChannel(name, 0); err != nil && !errors.Is(err, emulator.ErrChannelExists) {
			return usagef("--create-channel: %v", err)
		}
	}
	if err := e.Listen(f.addr); err != nil {
		return err
	}
	defer e.Close()

	printEmulator(cmd.OutOrStdout(), e, f, cfg.CertFile)
	<-cmd.Context().Done()
	logger.Info("shutting down")
	return nil
}

// emulatorLogger is the emulator's logger at --log-level, to w; "off"
// discards everything.
func emulatorLogger(w io.Writer, levelName string) (*slog.Logger, error) {
	if levelName == "off" {
		return slog.New(slog.DiscardHandler), nil
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(levelName)); err != nil {
		return nil, usagef("--log-level %q: must be debug, info, warn, error or off", levelName)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})), nil
}

// printEmulator prints where the emulator listens and how to use it; the
// secret only when it is the public example key.
func printEmulator(out io.Writer, e *emulator.Emulator, f *emulateFlags, certFile string) {
	creds := e.Credentials()
	shown := "(as given; not shown)"
	if f.accessKeyID == "" {
		shown = creds.SecretAccessKey + "  (AWS's documented example key)"
	}
	fmt.Fprintf(out, "kvssign emulator listening on %s\n", e.URL())
	fmt.Fprintf(out, "  region:            %s\n", e.Region())
	fmt.Fprintf(out, "  account:           %s\n", e.Account())
	fmt.Fprintf(out, "  access key id:     %s\n", creds.AccessKeyID)
	fmt.Fprintf(out, "  secret access key: %s\n", shown)
	if f.tls {
		fmt.Fprintf(out, "  tls certificate:   %s\n", certFile)
	}
	if f.stateFile != "" {
		fmt.Fprintf(out, "  state file:        %s\n", f.stateFile)
	}
	if f.policyFile != "" {
		fmt.Fprintf(out, "  policy:            %s (every request must be allowed by it)\n", f.policyFile)
	}
	if a := e.TURNAddr(); a != "" {
		fmt.Fprintf(out, "  turn server:       %s (udp; GetIceServerConfig lists two servers, over udp, tcp and, with --tls, tls)\n", a)
	}
	if e.IoTURL() != "" {
		printIoT(out, e, f)
	}
	fmt.Fprintf(out, "  stats:             %s/_emulator/stats\n", e.URL())
	fmt.Fprintf(out, "try: aws --endpoint-url %s --region %s kinesisvideo list-signaling-channels\n", e.URL(), e.Region())

}

// envEmulatorSecret names the environment variable the emulator's secret
// access key is read from when --secret-access-key is not given.
const envEmulatorSecret = "KVSSIGN_EMULATOR_SECRET_ACCESS_KEY"

// emulatorSecret returns the secret access key to accept: read from
// standard input for "-", from the environment if flag is empty, or the
// flag's value, with a warning that other users of the machine can see it.
func emulatorSecret(cmd *cobra.Command, flag string) (string, error) {
	switch flag {
	case "-":
		line, err := bufio.NewReader(io.LimitReader(cmd.InOrStdin(), 4<<10)).ReadString('\n')
		if err != nil && err != io.EOF {
			return "", fmt.Errorf("--secret-access-key -: reading standard input: %w", err)
		}
		s := strings.TrimRight(line, "\r\n")
		if s == "" {
			return "", usagef("--secret-access-key -: no secret on standard input: pipe one line in")
		}
		return s, nil
	case "":
		return os.Getenv(envEmulatorSecret), nil
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "kvssign: warning: --secret-access-key on the command line is visible to other processes (ps); use --secret-access-key - (stdin) or $%s\n", envEmulatorSecret)
	return flag, nil
}

// maxPolicyFile bounds what --policy reads; the emulator refuses larger
// documents anyway.
const maxPolicyFile = 64 << 10

// readPolicy reads and checks an IAM policy file for --policy.
func readPolicy(path string) (string, error) {
	file, err := os.Open(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is in the message already
		}
		return "", err
	}
	defer file.Close()
	b, err := io.ReadAll(io.LimitReader(file, maxPolicyFile+1))
	if err != nil {
		return "", err
	}
	if len(b) > maxPolicyFile {
		return "", fmt.Errorf("the file is over %d bytes; a policy must be smaller", maxPolicyFile)
	}
	doc := string(b)
	if err := emulator.ValidatePolicy(doc); err != nil {
		return "", err
	}
	return doc, nil
}
