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
	storage    mediaStorage

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
	Streams  []persistedStream  `json:"streams,omitempty"`
}

// persistedStream is a stream in the state file.
type persistedStream struct {
	Name                 string            `json:"name"`
	ARN                  string            `json:"arn"`
	CreationTimeMs       int64             `json:"creationTimeMs"`
	DataRetentionInHours int64             `json:"dataRetentionInHours"`
	MediaType            string            `json:"mediaType,omitempty"`
	KmsKeyID             string            `json:"kmsKeyId,omitempty"`
	DeviceName           string            `json:"deviceName,omitempty"`
	Version              string            `json:"version"`
	Tags                 map[string]string `json:"tags,omitempty"`
}

type persistedChannel struct {
	Name              string `json:"name"`
	ARN               string `json:"arn"`
	CreationTimeMs    int64  `json:"creationTimeMs"`
	MessageTTLSeconds int    `json:"messageTtlSeconds"`
	Version           string `json:"version"`
	Tags              []tag  `json:"tags,omitempty"`
	EndpointID        string `json:"endpointId"`
	// MediaStorage is absent for a channel never configured.
	MediaStorage *mediaStorage `json:"mediaStorage,omitempty"`
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

// The state file is a snapshot (persisted, as JSON) plus a journal next
// to it, <state file>.log, of one JSON line per change since the
// snapshot: {"put":{…channel…}}, {"delete":"name"}, {"putStream":{…}} or
// {"deleteStream":"name"}. A change appends
// its line and syncs it before it is acknowledged, so creating N channels
// costs O(N) I/O rather than a rewrite of the whole file each. Once the
// journal has more lines than there are channels (plus a slack), it is
// folded into a new snapshot (written to a temporary file, synced and
// renamed over the old one) and removed. Replaying the journal onto any
// snapshot that already holds some of its changes gives the same result,
// so a crash between the rename and the removal loses nothing.

const (
	journalSuffix = ".log"
	// compactSlack is how many journal lines beyond the number of
	// channels are kept before compaction, so that small states do not
	// rewrite their snapshot often.
	compactSlack = 1024
)

// journalState tracks the journal; guarded by e.mu.
type journalState struct {
	lines int
	// broken: an append failed and may have left a partial line, or the
	// journal could not be removed; the next change compacts instead.
	broken bool
}

type journalEntry struct {
	Put          *persistedChannel `json:"put,omitempty"`
	Delete       string            `json:"delete,omitempty"`
	PutStream    *persistedStream  `json:"putStream,omitempty"`
	DeleteStream string            `json:"deleteStream,omitempty"`
}

func (e *Emulator) journalPath() string { return e.cfg.StateFile + journalSuffix }

// loadState reads the state file and replays its journal into
// e.channels. A missing or empty file means no channels; anything
// unreadable is an error.
func (e *Emulator) loadState() error {
	if err := e.loadSnapshot(); err != nil {
		return err
	}
	replayed, err := e.replayJournal()
	if err != nil {
		return err
	}
	if replayed {
		// Start from a snapshot, so that a torn last line is gone before
		// anything is appended after it.
		e.mu.Lock()
		defer e.mu.Unlock()
		return e.compactLocked()
	}
	return nil
}

func (e *Emulator) loadSnapshot() error {
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
		if _, dup := e.channels[pc.Name]; dup {
			return fmt.Errorf("emulator: state file %s: channel %d (%q): appears twice", path, i, pc.Name)
		}
		ch, rule := e.restore(pc)
		if rule != "" {
			return fmt.Errorf("emulator: state file %s: channel %d (%q): %s", path, i, pc.Name, rule)
		}
		e.channels[ch.name] = ch
		e.byARN[ch.arn] = ch
	}
	for i, ps := range p.Streams {
		if _, dup := e.streams.byName[ps.Name]; dup {
			return fmt.Errorf("emulator: state file %s: stream %d (%q): appears twice", path, i, ps.Name)
		}
		st, rule := e.restoreStream(ps)
		if rule != "" {
			return fmt.Errorf("emulator: state file %s: stream %d (%q): %s", path, i, ps.Name, rule)
		}
		e.streams.put(st)
	}
	return nil
}

// restore checks a persisted channel and makes it a channel again; if
// the record breaks a rule, it returns the rule instead.
func (e *Emulator) restore(pc persistedChannel) (*channel, string) {
	if err := kvs.ValidateChannelName(pc.Name); err != nil {
		return nil, err.Error()
	}
	if pc.ARN != e.channelARN(pc.Name, pc.CreationTimeMs) {
		return nil, "arn does not match the name, region, account and creation time"
	}
	if pc.MessageTTLSeconds < 5 || pc.MessageTTLSeconds > 120 {
		return nil, "messageTtlSeconds must be 5 to 120"
	}
	if len(pc.EndpointID) != 8 {
		return nil, "endpointId must be 8 hex digits"
	}
	ch := newChannel(pc.Name, pc.ARN, time.UnixMilli(pc.CreationTimeMs), time.Duration(pc.MessageTTLSeconds)*time.Second,
		pc.Version, pc.Tags, pc.EndpointID)
	if m := pc.MediaStorage; m != nil {
		if m.Status != storageEnabled && m.Status != storageDisabled {
			return nil, "mediaStorage.status must be ENABLED or DISABLED"
		}
		if m.enabled() && m.StreamARN == "" {
			return nil, "mediaStorage.streamArn must be set when status is ENABLED"
		}
		ch.storage = *m
	}
	return ch, ""
}

// restoreStream checks a persisted stream and makes it a stream again; if
// the record breaks a rule, it returns the rule instead.
func (e *Emulator) restoreStream(ps persistedStream) (*stream, string) {
	if err := kvs.ValidateChannelName(ps.Name); err != nil {
		return nil, err.Error()
	}
	if ps.ARN != e.streamARN(ps.Name, ps.CreationTimeMs) {
		return nil, "arn does not match the name, region, account and creation time"
	}
	if ps.DataRetentionInHours < 0 || ps.DataRetentionInHours > 87600 {
		return nil, "dataRetentionInHours must be 0 to 87600"
	}
	return &stream{name: ps.Name, arn: ps.ARN, created: time.UnixMilli(ps.CreationTimeMs), retention: ps.DataRetentionInHours,
		mediaType: ps.MediaType, kmsKeyID: ps.KmsKeyID, device: ps.DeviceName, version: ps.Version, tags: ps.Tags}, ""
}

func (st *stream) persisted() persistedStream {
	return persistedStream{Name: st.name, ARN: st.arn, CreationTimeMs: st.created.UnixMilli(), DataRetentionInHours: st.retention,
		MediaType: st.mediaType, KmsKeyID: st.kmsKeyID, DeviceName: st.device, Version: st.version, Tags: st.tags}
}

// replayJournal applies the journal's changes in order and reports
// whether there was a journal. A last line without its newline was never
// acknowledged (the crash came mid-write) and is ignored.
func (e *Emulator) replayJournal() (bool, error) {
	path := e.journalPath()
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("emulator: state journal: %w", err)
	}
	for n := 1; len(b) > 0; n++ {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			e.log.Warn("state journal: ignoring a partial last line, from a crash while writing it", "file", path, "line", n)
			break
		}
		if err := e.applyJournalLine(b[:i]); err != nil {
			return false, fmt.Errorf("emulator: state journal %s: line %d: %s; fix or remove it", path, n, err)
		}
		b = b[i+1:]
	}
	return true, nil
}

func (e *Emulator) applyJournalLine(line []byte) error {
	var je journalEntry
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&je); err != nil || dec.More() {
		return errors.New("corrupt (not one JSON object)")
	}
	set := 0
	for _, b := range []bool{je.Put != nil, je.Delete != "", je.PutStream != nil, je.DeleteStream != ""} {
		if b {
			set++
		}
	}
	if set != 1 {
		return errors.New(`corrupt (want exactly one of "put", "delete", "putStream" and "deleteStream")`)
	}
	switch {
	case je.PutStream != nil:
		st, rule := e.restoreStream(*je.PutStream)
		if rule != "" {
			return fmt.Errorf("stream %q: %s", je.PutStream.Name, rule)
		}
		e.streams.put(st)
	case je.DeleteStream != "":
		e.streams.remove(je.DeleteStream)
	case je.Put != nil:
		ch, rule := e.restore(*je.Put)
		if rule != "" {
			return fmt.Errorf("channel %q: %s", je.Put.Name, rule)
		}
		if old := e.channels[ch.name]; old != nil {
			delete(e.byARN, old.arn)
		}
		e.channels[ch.name] = ch
		e.byARN[ch.arn] = ch
	default:
		if old := e.channels[je.Delete]; old != nil {
			delete(e.byARN, old.arn)
			delete(e.channels, je.Delete)
		}
	}
	return nil
}

func (ch *channel) persisted() persistedChannel {
	pc := persistedChannel{
		Name: ch.name, ARN: ch.arn, CreationTimeMs: ch.created.UnixMilli(),
		MessageTTLSeconds: int(ch.messageTTL / time.Second), Version: ch.version, Tags: ch.tags, EndpointID: ch.endpointID,
	}
	if ch.storage.Status != "" {
		m := ch.storage
		pc.MediaStorage = &m
	}
	return pc
}

// persistLocked saves ch, created or changed, which e.channels already
// holds. The caller holds e.mu.
func (e *Emulator) persistLocked(ch *channel) error {
	pc := ch.persisted()
	return e.appendLocked(journalEntry{Put: &pc})
}

// persistDeleteLocked saves the deletion of the channel name, which
// e.channels no longer holds. The caller holds e.mu.
func (e *Emulator) persistDeleteLocked(name string) error {
	return e.appendLocked(journalEntry{Delete: name})
}

// appendLocked appends one change to the journal and syncs it, or, when
// the journal is long or broken, writes a snapshot of e.channels (which
// hold the change) instead. The caller holds e.mu.
func (e *Emulator) appendLocked(je journalEntry) error {
	if e.cfg.StateFile == "" {
		return nil
	}
	if e.journal.broken || e.journal.lines >= len(e.channels)+len(e.streams.byName)+compactSlack {
		return e.compactLocked()
	}
	line, err := json.Marshal(je)
	if err != nil {
		return err
	}
	if err := appendSynced(e.journalPath(), append(line, '\n')); err != nil {
		e.journal.broken = true
		return fmt.Errorf("emulator: state journal: %w", err)
	}
	e.journal.lines++
	return nil
}

// appendSynced appends data to the file at path and syncs it; a new file's
// directory is synced too. On failure it cuts the file back to its old
// size, as far as it can.
func appendSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err == nil {
		if _, err = f.Write(data); err == nil {
			err = f.Sync()
		}
		if err != nil {
			f.Truncate(fi.Size())
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && fi.Size() == 0 {
		syncDir(filepath.Dir(path))
	}
	return err
}

// compactLocked writes e.channels as the snapshot and removes the
// journal. The caller holds e.mu.
func (e *Emulator) compactLocked() error {
	if err := e.saveStateLocked(); err != nil {
		return err
	}
	e.journal.lines = 0
	e.journal.broken = false
	if err := os.Remove(e.journalPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		// The snapshot holds everything and replaying the journal onto it
		// changes nothing; only appending after a partial line would
		// harm, so try again on the next change.
		e.journal.broken = true
		e.log.Warn("state journal: could not remove it after writing the snapshot", "err", err)
	}
	return nil
}

// flushState folds the journal into the snapshot, so that after a clean
// stop the state file alone holds every channel.
func (e *Emulator) flushState() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cfg.StateFile == "" || (e.journal.lines == 0 && !e.journal.broken) {
		return
	}
	if err := e.compactLocked(); err != nil {
		e.log.Warn("state file: could not write the snapshot at shutdown; the journal keeps the changes", "err", err)
	}
}

// saveStateLocked writes the state file atomically (write, sync, rename).
// The caller holds e.mu.
func (e *Emulator) saveStateLocked() error {
	p := persisted{Format: stateFormat, Region: e.cfg.Region, Account: e.cfg.Account, Channels: make([]persistedChannel, 0, len(e.channels))}
	for _, ch := range e.channels {
		p.Channels = append(p.Channels, ch.persisted())
	}
	sort.Slice(p.Channels, func(i, j int) bool { return p.Channels[i].Name < p.Channels[j].Name })
	for _, st := range e.streams.byName {
		p.Streams = append(p.Streams, st.persisted())
	}
	sort.Slice(p.Streams, func(i, j int) bool { return p.Streams[i].Name < p.Streams[j].Name })
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
	syncDir(dir)
	return nil
}

// syncDir syncs a directory, so that a file created or renamed in it
// survives a crash.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// channelARN returns the ARN of a channel of this emulator.
func (e *Emulator) channelARN(name string, createdMs int64) string {
	return "arn:aws:kinesisvideo:" + e.cfg.Region + ":" + e.cfg.Account + ":channel/" + name + "/" + strconv.FormatInt(createdMs, 10)
}
