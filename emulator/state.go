// Channels, and the state file that keeps them across restarts.

package emulator

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/kvssign/kvssign/kvs"
)

// tag is a channel tag.
type tag struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

// channel is one signaling channel: its description and, while the
// emulator runs, its connections and held messages.
type channel struct {
	// Immutable after creation except under e.mu.
	name       string
	arn        string
	created    time.Time
	messageTTL time.Duration
	version    string
	tags       []tag
	endpointID string // 8 hex digits, in the endpoints GetSignalingChannelEndpoint returns

	mu      sync.Mutex // guards what follows
	deleted bool
	master  *conn
	viewers map[string]*conn
	// held holds messages for peers that are offline, keyed by recipient:
	// "" for the master, a viewer's ClientId otherwise.
	held           map[string][]heldMsg
	connectMaster  bucket
	connectViewers bucket
	// alexa holds the SendAlexaOfferToMaster calls waiting for the
	// master's answer, by SenderClientId.
	alexa map[string]chan string
}

// heldMsg is a message waiting for its recipient to connect.
type heldMsg struct {
	msg kvs.ServerMessage
	at  time.Time // when it was sent, by the emulator's clock
}

// persisted is the state file's content.
type persisted struct {
	Format   int                `json:"format"`
	Region   string             `json:"region"`
	Account  string             `json:"account"`
	Channels []persistedChannel `json:"channels"`
}

type persistedChannel struct {
	Name              string `json:"name"`
	ARN               string `json:"arn"`
	CreationTimeMs    int64  `json:"creationTimeMs"`
	MessageTTLSeconds int    `json:"messageTtlSeconds"`
	Version           string `json:"version"`
	Tags              []tag  `json:"tags,omitempty"`
	EndpointID        string `json:"endpointId"`
}

const stateFormat = 1

func newChannel(name, arn string, created time.Time, ttl time.Duration, version string, tags []tag, endpointID string) *channel {
	return &channel{
		name: name, arn: arn, created: created, messageTTL: ttl, version: version, tags: tags, endpointID: endpointID,
		viewers: make(map[string]*conn),
		held:    make(map[string][]heldMsg),
	}
}

// randomAlnum returns n random characters of [A-Za-z0-9].
func randomAlnum(n int, alphabet string) string {
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

const (
	alnum      = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	upperAlnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	hexDigits  = "0123456789abcdef"
)

// loadState reads the state file into e.channels. A missing or empty file
// means no channels; anything unreadable is an error.
func (e *Emulator) loadState() error {
	path := e.cfg.StateFile
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("emulator: state file: %w", err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	var p persisted
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return fmt.Errorf("emulator: state file %s: corrupt (%v); fix or remove it", path, err)
	}
	if dec.More() {
		return fmt.Errorf("emulator: state file %s: corrupt (data after the JSON object); fix or remove it", path)
	}
	if p.Format != stateFormat {
		return fmt.Errorf("emulator: state file %s: format %d: want %d", path, p.Format, stateFormat)
	}
	if p.Region != e.cfg.Region || p.Account != e.cfg.Account {
		return fmt.Errorf("emulator: state file %s: holds channels of region %s, account %s: start with the same region and account (or another file)",
			path, p.Region, p.Account)
	}
	for i, pc := range p.Channels {
		bad := func(rule string) error {
			return fmt.Errorf("emulator: state file %s: channel %d (%q): %s", path, i, pc.Name, rule)
		}
		if err := kvs.ValidateChannelName(pc.Name); err != nil {
			return bad(err.Error())
		}
		if pc.ARN != e.channelARN(pc.Name, pc.CreationTimeMs) {
			return bad("arn does not match the name, region, account and creation time")
		}
		if pc.MessageTTLSeconds < 5 || pc.MessageTTLSeconds > 120 {
			return bad("messageTtlSeconds must be 5 to 120")
		}
		if len(pc.EndpointID) != 8 {
			return bad("endpointId must be 8 hex digits")
		}
		if _, dup := e.channels[pc.Name]; dup {
			return bad("appears twice")
		}
		ch := newChannel(pc.Name, pc.ARN, time.UnixMilli(pc.CreationTimeMs), time.Duration(pc.MessageTTLSeconds)*time.Second, pc.Version, pc.Tags, pc.EndpointID)
		e.channels[ch.name] = ch
		e.byARN[ch.arn] = ch
	}
	return nil
}

// persistLocked saves ch's changed description. The caller holds e.mu.
func (e *Emulator) persistLocked(ch *channel) error {
	_ = ch
	return e.saveStateLocked()
}

// saveStateLocked writes the state file atomically (write, sync, rename).
// The caller holds e.mu.
func (e *Emulator) saveStateLocked() error {
	if e.cfg.StateFile == "" {
		return nil
	}
	p := persisted{Format: stateFormat, Region: e.cfg.Region, Account: e.cfg.Account, Channels: []persistedChannel{}}
	for _, ch := range e.channels {
		p.Channels = append(p.Channels, persistedChannel{
			Name: ch.name, ARN: ch.arn, CreationTimeMs: ch.created.UnixMilli(),
			MessageTTLSeconds: int(ch.messageTTL / time.Second), Version: ch.version, Tags: ch.tags, EndpointID: ch.endpointID,
		})
	}
	sort.Slice(p.Channels, func(i, j int) bool { return p.Channels[i].Name < p.Channels[j].Name })
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if err := writeFileAtomic(e.cfg.StateFile, b); err != nil {
		return fmt.Errorf("emulator: state file: %w", err)
	}
	return nil
}

func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// channelARN returns the ARN of a channel of this emulator.
func (e *Emulator) channelARN(name string, createdMs int64) string {
	return "arn:aws:kinesisvideo:" + e.cfg.Region + ":" + e.cfg.Account + ":channel/" + name + "/" + strconv.FormatInt(createdMs, 10)
}
