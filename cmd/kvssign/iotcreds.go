// Credentials from the AWS IoT credentials provider: the --iot-* flags
// and the environment variables of the Kinesis Video Streams C SDK, so
// that a device script written for the C SDK runs kvssign unchanged.

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/spf13/pflag"

	"github.com/kvssign/kvssign/awskvs"
	"github.com/kvssign/kvssign/emulator"
	"github.com/kvssign/kvssign/sigv4"
)

// iotFlags are the --iot-* flags; each falls back to the C SDK's
// environment variable.
type iotFlags struct {
	endpoint, cert, key, roleAlias, thing, ca string
	provider                                  *awskvs.IoTProvider // set by apply when in use
}

// iotSetting is one --iot-* flag: its name, the C SDK's variable, and the
// awskvs.IoTConfig field it fills.
type iotSetting struct {
	flag, env, field string
	value            func(*iotFlags) *string
}

var iotSettings = []iotSetting{
	{"--iot-endpoint", "AWS_IOT_CORE_CREDENTIAL_ENDPOINT", "Endpoint", func(f *iotFlags) *string { return &f.endpoint }},
	{"--iot-cert", "AWS_IOT_CORE_CERT", "CertFile", func(f *iotFlags) *string { return &f.cert }},
	{"--iot-key", "AWS_IOT_CORE_PRIVATE_KEY", "KeyFile", func(f *iotFlags) *string { return &f.key }},
	{"--iot-role-alias", "AWS_IOT_CORE_ROLE_ALIAS", "RoleAlias", func(f *iotFlags) *string { return &f.roleAlias }},
	{"--iot-thing-name", "AWS_IOT_CORE_THING_NAME", "ThingName", func(f *iotFlags) *string { return &f.thing }},
	{"--iot-ca", "AWS_KVS_CACERT_PATH", "CAFile", func(f *iotFlags) *string { return &f.ca }},
}

func (f *iotFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.endpoint, "iot-endpoint", "", "AWS IoT credentials endpoint, PREFIX.credentials.iot.REGION.amazonaws.com: sign with a device certificate's credentials (default: $AWS_IOT_CORE_CREDENTIAL_ENDPOINT)")
	fs.StringVar(&f.cert, "iot-cert", "", "device certificate (PEM) for --iot-endpoint (default: $AWS_IOT_CORE_CERT)")
	fs.StringVar(&f.key, "iot-key", "", "the device certificate's private key (PEM, EC or RSA) (default: $AWS_IOT_CORE_PRIVATE_KEY)")
	fs.StringVar(&f.roleAlias, "iot-role-alias", "", "IoT role alias whose role's credentials to get (default: $AWS_IOT_CORE_ROLE_ALIAS)")
	fs.StringVar(&f.thing, "iot-thing-name", "", "IoT thing name, sent as x-amzn-iot-thingname (default: $AWS_IOT_CORE_THING_NAME)")
	fs.StringVar(&f.ca, "iot-ca", "", "CA bundle (PEM) the IoT endpoint's certificate must chain to (default: $AWS_KVS_CACERT_PATH, else the system's)")
}

// resolved returns the flags with the environment filled in.
func (f *iotFlags) resolved() iotFlags {
	out := *f
	for _, s := range iotSettings {
		if v := s.value(&out); *v == "" {
			*v = os.Getenv(s.env)
		}
	}
	return out
}

// enabled reports whether IoT credentials are asked for: any of the
// endpoint, certificate, key or role alias given. The thing name and the
// CA bundle alone do not ask for them (the C SDK reads AWS_KVS_CACERT_PATH
// for other connections too).
func (f *iotFlags) enabled() bool {
	r := f.resolved()
	return r.endpoint != "" || r.cert != "" || r.key != "" || r.roleAlias != ""
}

// check refuses an incomplete set of IoT settings, and flags of af that
// IoT credentials would leave unused.
func (f *iotFlags) check(af *awsFlags) error {
	if !f.enabled() {
		// Only the flags: the variables may be set for the C SDK's sake.
		if f.thing != "" || f.ca != "" {
			return usagef("--iot-thing-name and --iot-ca: only used with IoT credentials (--iot-endpoint, --iot-cert, --iot-key, --iot-role-alias)")
		}
		return nil
	}
	r := f.resolved()
	for _, s := range iotSettings[:4] {
		if *s.value(&r) == "" {
			return usagef("%s (or $%s) is required with IoT credentials: give --iot-endpoint, --iot-cert, --iot-key and --iot-role-alias together", s.flag, s.env)
		}
	}
	switch {
	case af.profile != "":
		return usagef("--profile: cannot be combined with IoT credentials (--iot-*, $AWS_IOT_CORE_*), which replace the profile's")
	case af.roleARN != "":
		return usagef("--role-arn: cannot be combined with IoT credentials (--iot-*, $AWS_IOT_CORE_*): the role alias names the role")
	}
	return nil
}

// apply replaces cfg's credentials with the IoT provider's when IoT
// credentials are asked for (check has passed).
func (f *iotFlags) apply(cfg *aws.Config, af *awsFlags, dbg *debugLog) error {
	if !f.enabled() {
		return nil
	}
	r := f.resolved()
	p, err := awskvs.NewIoTProvider(awskvs.IoTConfig{Endpoint: r.endpoint, CertFile: r.cert, KeyFile: r.key, CAFile: r.ca,
		RoleAlias: r.roleAlias, ThingName: r.thing, Timeout: af.timeout})
	if err != nil {
		return usageError{iotFlagError(err)}
	}
	f.provider = p
	cfg.Credentials = aws.CredentialsProviderFunc(func(ctx context.Context) (aws.Credentials, error) {
		c, err := p.Retrieve(ctx)
		return c, iotFlagError(err)
	})
	dbg.printf("credentials: AWS IoT role alias %q from %s, thing %q", r.roleAlias, r.endpoint, r.thing)
	return nil
}

// iotFlagError names the flag (and variable) of the IoTConfig field an
// error is about, in place of the field.
func iotFlagError(err error) error {
	var ie *awskvs.IoTError
	if !errors.As(err, &ie) || ie.Field == "" {
		return err
	}
	for _, s := range iotSettings {
		if s.field == ie.Field {
			return settingError{setting: s.flag + " ($" + s.env + ")", msg: ie.Detail(), err: err}
		}
	}
	return err
}

// signer returns the provider for signing URLs, with errors naming the
// flags, or nil when IoT credentials are not in use.
func (f *iotFlags) signer() sigv4.CredentialsProvider {
	if f.provider == nil {
		return nil
	}
	return sigv4.CredentialsFunc(func(ctx context.Context) (sigv4.Credentials, error) {
		c, err := f.provider.SigV4().Retrieve(ctx)
		return c, iotFlagError(err)
	})
}

// settingError is an error about a flag or the variable it falls back
// to; errors.As still finds the cause.
type settingError struct {
	setting, msg string
	err          error
}

func (e settingError) Error() string { return e.setting + ": " + e.msg }
func (e settingError) Unwrap() error { return e.err }

// iotConfig returns the emulator's IoT settings from the --iot-* flags of
// emulate, nil if none asks for the endpoint. Dir is left for the caller,
// so that checking the flags writes no file.
func (f *emulateFlags) iotConfig() (*emulator.IoTConfig, error) {
	if len(f.iotThings) == 0 && len(f.iotAliases) == 0 {
		return nil, nil
	}
	if f.iotDir == "" {
		return nil, usagef("--iot-dir: must name a folder for the certificates")
	}
	c := &emulator.IoTConfig{Addr: f.iotAddr, Things: f.iotThings}
	for _, a := range f.iotAliases {
		ra, err := parseRoleAlias(a)
		if err != nil {
			return nil, usagef("--iot-role-alias %q: %v", clipFlag(a), err)
		}
		c.RoleAliases = append(c.RoleAliases, ra)
	}
	return c, nil
}

func clipFlag(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

// parseRoleAlias reads ALIAS=ROLE_ARN[:SECONDS]. A role ARN has five
// colons, so a sixth starts the lifetime.
func parseRoleAlias(s string) (emulator.IoTRoleAlias, error) {
	name, arn, ok := strings.Cut(s, "=")
	if !ok || name == "" || arn == "" {
		return emulator.IoTRoleAlias{}, errors.New("must be ALIAS=ROLE_ARN[:SECONDS], e.g. kvs-camera=arn:aws:iam::123456789012:role/kvs-camera:3600")
	}
	a := emulator.IoTRoleAlias{Name: name, RoleARN: arn}
	if parts := strings.Split(arn, ":"); len(parts) == 7 {
		a.RoleARN = strings.Join(parts[:6], ":")
		n, err := strconv.Atoi(parts[6])
		if err != nil || n < 1 || n > 43200 {
			return a, fmt.Errorf("seconds %q: must be a whole number from 1 to 43200", clipFlag(parts[6]))
		}
		a.Duration = time.Duration(n) * time.Second
	}
	return a, nil
}

// printIoT prints how devices reach the emulated IoT credentials
// endpoint.
func printIoT(out io.Writer, e *emulator.Emulator, f *emulateFlags) {
	fmt.Fprintf(out, "  iot endpoint:      %s (mutual TLS; AWS_IOT_CORE_CREDENTIAL_ENDPOINT=%s)\n", e.IoTURL(), strings.TrimPrefix(e.IoTURL(), "https://"))
	fmt.Fprintf(out, "  iot files:         %s (ca.pem: AWS_KVS_CACERT_PATH; THING.cert.pem, THING.private.key)\n", f.iotDir)
	for _, a := range f.iotAliases {
		ra, _ := parseRoleAlias(a)
		d := ra.Duration
		if d == 0 {
			d = time.Hour
		}
		fmt.Fprintf(out, "  iot role alias:    %s -> %s (credentials last %v)\n", ra.Name, ra.RoleARN, d)
	}
	for _, th := range f.iotThings {
		fmt.Fprintf(out, "  iot thing:         %s (%s)\n", th, filepath.Join(f.iotDir, th+".cert.pem"))
	}
}
