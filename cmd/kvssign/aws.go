// What the commands that call AWS share: flags, configuration, the
// resolver, --debug output, redaction, and turning AWS errors into a cause
// and a fix.

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/smithy-go/logging"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kvssign/kvssign/awskvs"
	"github.com/kvssign/kvssign/diagnose"
	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/sigv4"
)

// outputFlags are --output and --debug, which every command has.
type outputFlags struct {
	output string
	debug  bool
}

func (f *outputFlags) register(fs *pflag.FlagSet, withOutput bool) {
	if withOutput {
		fs.StringVar(&f.output, "output", "text", "output format: text or json")
	}
	fs.BoolVar(&f.debug, "debug", false, "show canonical requests, strings to sign and calls on stderr (secrets redacted)")
}

func (f *outputFlags) check() error {
	switch f.output {
	case "text", "json":
		return nil
	}
	return usagef("--output %q: must be text or json", f.output)
}

func (f *outputFlags) json() bool { return f.output == "json" }

// awsFlags are the flags of commands that call AWS.
type awsFlags struct {
	profile, region, endpointURL       string
	roleARN, externalID, roleSession   string
	roleDuration, timeout, clockOffset time.Duration
	iot                                iotFlags // device certificate credentials: iotcreds.go
}

// register adds the flags; --region and --clock-offset only when the
// command does not have them already.
func (f *awsFlags) register(fs *pflag.FlagSet, withRegion, withClockOffset bool) {
	f.registerTimeout(fs, withRegion, withClockOffset, awskvs.DefaultCallTimeout)
}

// registerTimeout is register with another default for --timeout.
func (f *awsFlags) registerTimeout(fs *pflag.FlagSet, withRegion, withClockOffset bool, timeout time.Duration) {
	fs.StringVar(&f.profile, "profile", "", "shared config profile (default: AWS_PROFILE or default)")
	if withRegion {
		fs.StringVar(&f.region, "region", "", "AWS region (default: AWS_REGION, the profile's region, or the channel ARN's)")
	}
	fs.StringVar(&f.endpointURL, "endpoint-url", "", "control plane and STS base URL, e.g. http://127.0.0.1:4566 for a local emulator")
	fs.StringVar(&f.roleARN, "role-arn", "", "IAM role to assume with STS before signing")
	fs.StringVar(&f.externalID, "external-id", "", "external id for --role-arn")
	fs.StringVar(&f.roleSession, "role-session-name", "", "session name for --role-arn (default: kvssign-<unix time>)")
	fs.DurationVar(&f.roleDuration, "role-duration", 0, "session lifetime for --role-arn (default: STS's, one hour)")
	fs.DurationVar(&f.timeout, "timeout", timeout, "deadline of each network call")
	f.iot.register(fs)
	if withClockOffset {
		fs.DurationVar(&f.clockOffset, "clock-offset", 0, "add this to the local clock when signing (e.g. 90s or -2m) to correct skew")
	}
}

// usesChain reports whether credentials must come from the SDK's chain
// rather than the environment alone.
func (f *awsFlags) usesChain() bool {
	return f.profile != "" || f.roleARN != "" || f.iot.enabled() || os.Getenv("AWS_ACCESS_KEY_ID") == "" || os.Getenv("AWS_SECRET_ACCESS_KEY") == ""
}

// config loads the AWS configuration the flags ask for. regionHint, used
// when no region is configured anywhere, is the channel ARN's.
func (f *awsFlags) config(ctx context.Context, dbg *debugLog, regionHint string) (aws.Config, error) {
	if f.timeout <= 0 {
		return aws.Config{}, usagef("--timeout %v: must be positive", f.timeout)
	}
	if f.roleDuration < 0 {
		return aws.Config{}, usagef("--role-duration %v: must be positive", f.roleDuration)
	}
	if err := f.iot.check(f); err != nil {
		return aws.Config{}, err
	}
	o := awskvs.ConfigOptions{
		Profile: f.profile, Region: f.region, EndpointURL: f.endpointURL,
		RoleARN: f.roleARN, ExternalID: f.externalID, RoleSessionName: f.roleSession, RoleDuration: f.roleDuration,
	}
	var extra []func(*config.LoadOptions) error
	if f.region == "" && regionHint != "" {
		extra = append(extra, config.WithDefaultRegion(regionHint))
	}
	if dbg.enabled() {
		extra = append(extra, config.WithLogger(dbg.sdkLogger()), config.WithClientLogMode(aws.LogSigning|aws.LogRetries))
	}
	cfg, err := awskvs.LoadConfig(ctx, o, extra...)
	if errors.Is(err, awskvs.ErrInvalidArgument) {
		return aws.Config{}, usageError{err}
	}
	if err != nil {
		return aws.Config{}, err
	}
	if cfg.Region == "" {
		return aws.Config{}, usagef("no region: set --region, AWS_REGION, or region in the profile")
	}
	if err := f.iot.apply(&cfg, f, dbg); err != nil {
		return aws.Config{}, err
	}
	dbg.printf("region %s, endpoint %s, profile %q, role %q", cfg.Region, orDefault(f.endpointURL, "AWS"), f.profile, f.roleARN)
	return cfg, nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// resolver returns a Resolver for the flags, with debug output wired in.
func (f *awsFlags) resolver(cfg aws.Config, dbg *debugLog) *awskvs.Resolver {
	r := awskvs.NewResolver(cfg)
	r.CallTimeout = f.timeout
	r.ClockOffset = f.clockOffset
	if s := f.iot.signer(); s != nil {
		r.Credentials = s // renews ahead with jitter, unlike the SDK's cache
	}
	if dbg.enabled() {
		r.Logger = dbg.slogger()
		r.Trace = dbg.trace
	}
	return r
}

// channelFlags name a channel: --channel NAME|ARN or --channel-arn ARN.
type channelFlags struct{ channel, channelARN string }

func (f *channelFlags) register(fs *pflag.FlagSet, withARN bool) {
	fs.StringVar(&f.channel, "channel", "", "the signaling channel's name (or ARN)")
	if withARN {
		fs.StringVar(&f.channelARN, "channel-arn", "", "the signaling channel's ARN")
	}
}

// get returns the channel the flags name, checked.
func (f *channelFlags) get() (string, error) {
	switch {
	case f.channel != "" && f.channelARN != "":
		return "", usagef("--channel and --channel-arn: give one, not both")
	case f.channelARN != "":
		if _, err := kvs.ParseChannelARN(f.channelARN); err != nil {
			return "", flagError("--channel-arn", err)
		}
		return f.channelARN, nil
	case f.channel != "":
		return checkChannelArg("--channel", f.channel)
	}
	return "", usagef("--channel NAME or --channel-arn ARN is required")
}

// checkChannelArg checks a channel name or ARN given as flag or argument.
func checkChannelArg(what, s string) (string, error) {
	if strings.HasPrefix(s, "arn:") {
		if _, err := kvs.ParseChannelARN(s); err != nil {
			return "", flagError(what, err)
		}
		return s, nil
	}
	if err := kvs.ValidateChannelName(s); err != nil {
		return "", flagError(what, err)
	}
	return s, nil
}

// flagError words a bad flag value as a usage error naming the flag, the
// value and the rule it breaks.
func flagError(flag string, err error) error {
	return usagef("%s: %s", flag, withoutPackage(err))
}

// withoutPackage words an error for a message that already names the
// input: a kvs.FieldError without its package prefix.
func withoutPackage(err error) string {
	if fe, ok := errors.AsType[*kvs.FieldError](err); ok {
		return fe.Reason()
	}
	return err.Error()
}

// arnRegion returns the region of a channel ARN, or "" for a name.
func arnRegion(channel string) string {
	if a, err := kvs.ParseChannelARN(channel); err == nil {
		return a.Region
	}
	return ""
}

// parseRole reads --role.
func parseRole(s string) (kvs.Role, error) {
	if s == "" {
		return "", usagef("--role is required: master or viewer")
	}
	r, err := kvs.ParseRole(s)
	if err != nil {
		return "", usagef("--role %q: must be master or viewer", s)
	}
	return r, nil
}

// debugLog writes --debug output to stderr, redacted. A nil or disabled
// debugLog writes nothing.
type debugLog struct {
	mu *sync.Mutex
	w  io.Writer
}

func newDebugLog(on bool, stderr io.Writer) *debugLog {
	if !on {
		return nil
	}
	return &debugLog{mu: new(sync.Mutex), w: stderr}
}

func (d *debugLog) enabled() bool { return d != nil }

func (d *debugLog) write(s string) {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	io.WriteString(d.w, printableLines(sigv4.Redact(s)))
}

func (d *debugLog) printf(format string, args ...any) {
	if d == nil {
		return
	}
	d.write("debug: " + fmt.Sprintf(format, args...) + "\n")
}

// trace shows a canonical request and string to sign.
func (d *debugLog) trace(canonicalRequest, stringToSign string) {
	d.write("debug: canonical request:\n" + indent(canonicalRequest) + "debug: string to sign:\n" + indent(stringToSign))
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ") + "\n"
}

func (d *debugLog) sdkLogger() logging.Logger {
	return logging.LoggerFunc(func(_ logging.Classification, format string, v ...any) {
		d.write("debug: sdk: " + strings.TrimRight(fmt.Sprintf(format, v...), "\n") + "\n")
	})
}

func (d *debugLog) slogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(debugWriter{d}, &slog.HandlerOptions{Level: slog.LevelDebug,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}}))
}

type debugWriter struct{ d *debugLog }

func (w debugWriter) Write(p []byte) (int, error) {
	w.d.write("debug: " + string(p))
	return len(p), nil
}

// redactedURL shows a signed URL for diagnostics: scheme, host, path and
// parameter names, without the signature, token and credential values.
func redactedURL(u string) string { return printable(sigv4.Redact(u)) }

// scrubbed is an error whose text is redacted; errors.As and errors.Is
// still see the original.
type scrubbed struct{ err error }

func (e scrubbed) Error() string { return sigv4.Redact(e.err.Error()) }
func (e scrubbed) Unwrap() error { return e.err }

func scrub(err error) error {
	if err == nil {
		return nil
	}
	return scrubbed{err}
}

// responseDate returns the Date header of the answer that made err, if any.
func responseDate(err error) (time.Time, bool) {
	var re *smithyhttp.ResponseError
	if !errors.As(err, &re) || re.Response == nil {
		return time.Time{}, false
	}
	return parseHTTPDate(re.Response.Header.Get("Date"))
}

func parseHTTPDate(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	t, err := http.ParseTime(s)
	return t, err == nil
}

// explainAWS turns a failed call to AWS into an error that says the likely
// cause and the fix.
func explainAWS(err error, in diagnose.Failure) error {
	if err == nil {
		return nil
	}
	var ae *awskvs.Error
	if errors.As(err, &ae) {
		if ae.Kind == awskvs.ErrInvalidArgument && ae.StatusCode == 0 {
			return usageError{err}
		}
		in.Status, in.Code, in.Message = ae.StatusCode, ae.Code, ae.Message
		in.Op, in.Attempts = ae.Op, ae.Attempts
		if in.ServerDate.IsZero() {
			in.ServerDate, _ = responseDate(err)
		}
	} else {
		in.Message = err.Error()
	}
	d := diagnose.Explain(in)
	if d.Cause == "" {
		return err
	}
	return diagnosedError{err: err, d: d}
}

// diagnosedError is an error with its likely cause and fix.
type diagnosedError struct {
	err     error
	d       diagnose.Diagnosis
	printed bool // already printed as JSON
}

func (e diagnosedError) Error() string {
	s := e.err.Error() + "\n  likely cause: " + printable(e.d.Explanation)
	if e.d.Fix != "" {
		s += "\n  fix: " + printable(e.d.Fix)
	}
	return s
}

func (e diagnosedError) Unwrap() error { return e.err }

// registerCompletions completes the values of --role, --output and
// --profile for the shell completion cobra generates.
func registerCompletions(c *cobra.Command) {
	fixed := func(vals ...string) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return vals, cobra.ShellCompDirectiveNoFileComp
		}
	}
	if c.Flag("role") != nil {
		c.RegisterFlagCompletionFunc("role", fixed("master", "viewer"))
	}
	if c.Flag("output") != nil {
		c.RegisterFlagCompletionFunc("output", fixed("text", "json"))
	}
	if c.Flag("profile") != nil {
		c.RegisterFlagCompletionFunc("profile", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return profileNames(), cobra.ShellCompDirectiveNoFileComp
		})
	}
}

// profileNames lists the profiles of the shared config and credentials
// files, for completion.
func profileNames() []string {
	home, _ := os.UserHomeDir()
	files := []string{os.Getenv("AWS_CONFIG_FILE"), os.Getenv("AWS_SHARED_CREDENTIALS_FILE")}
	if files[0] == "" {
		files[0] = filepath.Join(home, ".aws", "config")
	}
	if files[1] == "" {
		files[1] = filepath.Join(home, ".aws", "credentials")
	}
	seen := map[string]bool{}
	var names []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for line := range strings.Lines(string(data)) {
			line = strings.TrimSpace(line)
			if !strings.HasPrefix(line, "[") || !strings.HasSuffix(line, "]") {
				continue
			}
			name := strings.TrimSpace(strings.TrimPrefix(strings.Trim(line, "[]"), "profile "))
			if name != "" && !strings.HasPrefix(name, "sso-session ") && !strings.HasPrefix(name, "services ") && !seen[name] {
				seen[name] = true
				names = append(names, name)
			}
		}
	}
	return names
}

// finish ends a command: with --output json, an error whose cause is
// known is also printed on stdout as {"ok":false,…} so that scripts can
// read it. The error is returned redacted either way.
func finish(stdout io.Writer, jsonOut bool, err error) error {
	var de diagnosedError
	if err != nil && jsonOut && errors.As(err, &de) && !de.printed {
		writeJSON(stdout, failureJSON{Error: printable(sigv4.Redact(de.err.Error())), Diagnosis: printableDiagnosis(de.d)})
	}
	return scrub(err)
}
