package emulator

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/kvssign/kvssign/sigv4"
)

// The documented example credentials from AWS's documentation, accepted
// when [Config.Credentials] is empty. They are public: never use them
// against AWS.
const (
	ExampleAccessKeyID     = "AKIAIOSFODNN7EXAMPLE"
	ExampleSecretAccessKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
)

// Config configures an [Emulator]. The zero value is usable: every field
// says what its zero value means. Durations default to what KVS does, and
// can be set down to milliseconds so tests run quickly.
type Config struct {
	// Region is the only region requests may be signed for, and the region
	// of the channel ARNs. If empty, us-west-2.
	Region string
	// Account is the 12-digit account id in ARNs. If empty, 123456789012.
	Account string
	// Credentials are the long-term credentials the emulator accepts
	// (besides the temporary ones its STS issues). If AccessKeyID is empty,
	// the AWS documentation example pair is used.
	Credentials sigv4.Credentials
	// Clock returns the current time, for signatures, expiry of URLs,
	// temporary credentials and held messages, and the Date header. If
	// nil, time.Now. Connection timers (idle, duration, grace) run on real
	// time.
	Clock func() time.Time
	// Logger receives one line per notable event. It never sees a secret,
	// a session token, a signature or a signed URL. If nil, nothing is
	// logged.
	Logger *slog.Logger

	// IdleTimeout closes a signaling connection that has sent no message
	// for this long (pings do not count). If zero, 10 minutes.
	IdleTimeout time.Duration
	// MaxConnectionDuration is the longest a signaling connection lives.
	// GoAwayGrace before it ends (half-way if the grace is longer), the
	// emulator sends GO_AWAY. If zero, 1 hour.
	MaxConnectionDuration time.Duration
	// GoAwayGrace is how long a connection stays open after GO_AWAY. If
	// zero, 1 minute.
	GoAwayGrace time.Duration
	// MaxViewers is the number of viewers a channel accepts at once. If
	// zero, 10; if negative, unlimited.
	MaxViewers int
	// ConnectRate is how many ConnectAsMaster (and, separately,
	// ConnectAsViewer) handshakes per second a channel accepts. If zero, 3
	// (the KVS quota); if negative, unlimited.
	ConnectRate float64
	// SDPRate and ICERate are how many SDP offers (and, separately,
	// answers), and ICE candidates, per second one connection may send.
	// If zero, 5 and 20 (the KVS quotas); if negative, unlimited.
	SDPRate, ICERate float64
	// WriteTimeout bounds each write to a signaling connection; a peer too
	// slow to take a message within it is disconnected. If zero, 5 seconds.
	WriteTimeout time.Duration
	// MaxConnections is the connection budget: the most signaling
	// connections open at once. Handshakes beyond it are refused at once
	// with 503 ServiceUnavailableException, and the control plane and
	// admin endpoints keep answering. If zero, the soft RLIMIT_NOFILE
	// less a reserve of an eighth (at least 128 descriptors); if
	// negative, or the limit is unknown, unlimited.
	MaxConnections int
	// Quotas are the control plane's calls per second per account and per
	// channel. The zero value enforces KVS's.
	Quotas Quotas
	// MaxChannels is the account's signaling channel limit. If zero, 10000.
	MaxChannels int
	// ICETTL is the Ttl of the TURN servers GetIceServerConfig returns, and
	// how long their credentials are accepted. If zero, 300 seconds.
	ICETTL time.Duration
	// AlexaAnswerTimeout is how long SendAlexaOfferToMaster waits for the
	// master's SDP_ANSWER before it answers with a null Answer. If zero, 5
	// seconds.
	AlexaAnswerTimeout time.Duration
	// DisableTURN, if set, runs no TURN server: GetIceServerConfig then
	// returns URIs on the emulator's own address, where nothing answers
	// TURN. If false, [Emulator.Serve] (and Start and Listen) also starts
	// two TURN servers on free ports of 127.0.0.1 (UDP, TCP and, with TLS,
	// TLS), relaying to loopback only, which GetIceServerConfig's URIs and
	// credentials point at.
	DisableTURN bool

	// STSMinDuration and STSMaxDuration bound DurationSeconds for
	// AssumeRole and GetSessionToken. If zero, 15 minutes and 12 hours
	// (36 hours for GetSessionToken). Set STSMinDuration to a second or
	// two to test expiry.
	STSMinDuration, STSMaxDuration time.Duration
	// STSDefaultDuration is the lifetime of temporary credentials when the
	// request gives no DurationSeconds. If zero, 1 hour for AssumeRole and
	// 12 hours for GetSessionToken.
	STSDefaultDuration time.Duration

	// Policy, if set, is an IAM identity policy (JSON) that every request
	// must be allowed by: made with the long-term credentials, with
	// GetSessionToken's, and, standing in for a role's own policy, with
	// the credentials of every role assumed through the emulator's STS
	// (which AssumeRole's session policy may narrow further). The
	// emulator evaluates Effect, Action and Resource, with * and ?
	// wildcards, and refuses documents with elements it cannot evaluate
	// (NotAction, NotResource, Principal, Condition…); see
	// [ValidatePolicy]. Checked: the control plane, GetIceServerConfig and
	// the signaling handshake (kinesisvideo:ConnectAsMaster,
	// ConnectAsViewer); STS is not. If empty, every request with valid
	// credentials is allowed, unless a session policy limits them.
	Policy string

	// StateFile, if set, is where channels are kept across restarts. It is
	// read by [New] (a missing file means no channels; a corrupt one is an
	// error) and rewritten atomically on every change.
	StateFile string
	// TLS serves https and wss with a self-signed certificate for
	// 127.0.0.1, ::1, localhost and Hostname. See [Emulator.CertificatePEM].
	TLS bool
	// CertFile, if set with TLS, is where the certificate is written as
	// PEM, for clients to trust.
	CertFile string
	// Hostname, if set, is the host name the emulator advertises in every
	// endpoint and TURN URI instead of its listener's address, and names
	// in its certificate, so that a client bound to a real KVS host name
	// (mapped to 127.0.0.1 in /etc/hosts) runs unchanged. With TLS on
	// port 443, endpoints carry no port. If empty, the listener's address.
	Hostname string
	// CORSOrigins lists the origins (scheme://host[:port]) whose pages may
	// call the control plane, STS and GetIceServerConfig. If empty, any
	// origin may: those calls are authenticated by their signatures and
	// carry no cookies. The admin endpoints never answer other origins.
	CORSOrigins []string
	// IoT, if set, runs an emulated AWS IoT credentials provider on its
	// own port (mutual TLS; see [Emulator.IoTURL]): devices holding a
	// certificate the emulator issued get temporary credentials of a role
	// alias's role, limited by Policy as an assumed role's are, in which
	// Resource may name ${credentials-iot:ThingName}.
	IoT *IoTConfig

	// StorageSessionDuration is the longest a storage session (a master's
	// JoinStorageSession) lasts before the storage peer ends it. If zero,
	// 1 hour, as KVS.
	StorageSessionDuration time.Duration
	// StorageViewers is how many viewers a storage session takes with
	// JoinStorageSessionAsViewer. If zero, 3, as KVS; if negative,
	// unlimited.
	StorageViewers int
	// StorageNoMasterTimeout is how long storage viewers stay joined
	// without a master. If zero, 3 minutes, as KVS.
	StorageNoMasterTimeout time.Duration
	// RecordingDir is where the storage peer writes each session's
	// recording (a Matroska file of the master's H.264 and Opus). If
	// empty, a temporary directory that Close removes.
	RecordingDir string
}

const (
	defaultRegion  = "us-west-2"
	defaultAccount = "123456789012"
)

var (
	regionRE  = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	accountRE = regexp.MustCompile(`^[0-9]{12}$`)
	// hostnameRE matches DNS names of letters, digits and hyphens.
	hostnameRE = regexp.MustCompile(`^(?i)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$`)
)

// withDefaults returns c with its zero values replaced, or an error naming
// the first invalid field.
func (c Config) withDefaults() (Config, error) {
	if c.Region == "" {
		c.Region = defaultRegion
	}
	if !regionRE.MatchString(c.Region) {
		return c, fmt.Errorf("emulator: region %q: must look like us-west-2", c.Region)
	}
	if c.Account == "" {
		c.Account = defaultAccount
	}
	if !accountRE.MatchString(c.Account) {
		return c, fmt.Errorf("emulator: account %q: must be 12 digits", c.Account)
	}
	switch {
	case c.Credentials.AccessKeyID == "" && c.Credentials.SecretAccessKey == "":
		c.Credentials = sigv4.Credentials{AccessKeyID: ExampleAccessKeyID, SecretAccessKey: ExampleSecretAccessKey}
	case c.Credentials.AccessKeyID == "" || c.Credentials.SecretAccessKey == "":
		return c, errors.New("emulator: credentials: give both the access key id and the secret access key, or neither")
	}
	if err := c.Credentials.Validate(); err != nil {
		return c, fmt.Errorf("emulator: credentials: %w", err)
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if err := c.durationDefaults(); err != nil {
		return c, err
	}
	if c.MaxViewers == 0 {
		c.MaxViewers = 10
	}
	if c.ConnectRate == 0 {
		c.ConnectRate = 3
	}
	if c.SDPRate == 0 {
		c.SDPRate = 5
	}
	if c.ICERate == 0 {
		c.ICERate = 20
	}
	if c.MaxConnections == 0 {
		c.MaxConnections = -1
		if soft, ok := softFileLimit(); ok {
			c.MaxConnections = defaultMaxConnections(soft)
		}
	}
	if c.StorageViewers == 0 {
		c.StorageViewers = 3
	}
	if c.MaxChannels <= 0 {
		c.MaxChannels = 10000
	}
	if err := c.Quotas.validate(); err != nil {
		return c, err
	}
	if c.Policy != "" {
		if err := ValidatePolicy(c.Policy); err != nil {
			return c, err
		}
	}
	if err := checkOrigins(c.CORSOrigins); err != nil {
		return c, err
	}
	if c.Hostname != "" && (len(c.Hostname) > 253 || !hostnameRE.MatchString(c.Hostname)) {
		return c, fmt.Errorf("emulator: hostname %q: must be a DNS name like kinesisvideo.us-west-2.amazonaws.com", c.Hostname)
	}
	if c.IoT != nil {
		if err := c.IoT.validate(); err != nil {
			return c, err
		}
	}
	if c.CertFile != "" && !c.TLS {
		return c, errors.New("emulator: cert file: is only written with TLS")
	}
	return c, nil
}

// durationDefaults fills in the zero durations and refuses negative ones.
func (c *Config) durationDefaults() error {
	for _, f := range []struct {
		d    *time.Duration
		v    time.Duration
		name string
	}{
		{&c.IdleTimeout, 10 * time.Minute, "idle timeout"},
		{&c.MaxConnectionDuration, time.Hour, "maximum connection duration"},
		{&c.GoAwayGrace, time.Minute, "GO_AWAY grace"},
		{&c.WriteTimeout, 5 * time.Second, "write timeout"},
		{&c.ICETTL, 300 * time.Second, "ICE TTL"},
		{&c.AlexaAnswerTimeout, 5 * time.Second, "Alexa answer timeout"},
		{&c.StorageSessionDuration, time.Hour, "storage session duration"},
		{&c.StorageNoMasterTimeout, 3 * time.Minute, "storage no-master timeout"},
		{&c.STSMinDuration, 15 * time.Minute, "STS minimum duration"},
		{&c.STSDefaultDuration, 0, "STS default duration"},
		{&c.STSMaxDuration, 0, "STS maximum duration"},
	} {
		if *f.d < 0 {
			return fmt.Errorf("emulator: %s %v: must not be negative", f.name, *f.d)
		}
		if *f.d == 0 {
			*f.d = f.v
		}
	}
	if c.STSMaxDuration != 0 && c.STSMaxDuration < c.STSMinDuration {
		return fmt.Errorf("emulator: STS maximum duration %v: is less than the minimum %v", c.STSMaxDuration, c.STSMinDuration)
	}
	return nil
}
