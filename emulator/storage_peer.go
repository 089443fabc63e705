// The storage peer of WebRTC ingestion: JoinStorageSession and
// JoinStorageSessionAsViewer at the WEBRTC endpoint. On a master's join it
// offers to the master over the master's signaling connection, records
// what the master sends and forwards it to up to three storage viewers.

package emulator

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/kvssign/kvssign/kvs"
)

// Storage session operation names, as counted by [Emulator.Stats].
const (
	OpJoinStorageSession         = "JoinStorageSession"
	OpJoinStorageSessionAsViewer = "JoinStorageSessionAsViewer"
)

// webrtcPrefix is the path of the WEBRTC endpoint GetSignalingChannelEndpoint
// returns, /webrtc/w-XXXXXXXX.
const webrtcPrefix = "/webrtc/"

// storageState is the emulator's storage peer: a session per channel with
// a joined master or viewers, and the recordings. Its zero value is ready.
type storageState struct {
	live atomic.Int32 // sessions; spares the relay's hot path the lock when 0

	mu       sync.Mutex
	sessions map[*channel]*storageSession
	recs     []*recorder
	paths    map[string]string // the recordings' paths by name
	dir      string            // where recordings go, once one was made
	tempDir  bool              // dir is the emulator's own, removed on Close
	api      *webrtc.API
	seq      int

	joins, viewerJoins, refused, viewersRefused, ended atomic.Int64
	lastRefusal                                        atomic.Pointer[string]
}

// StorageStats counts the storage peer's work.
type StorageStats struct {
	// Sessions and Viewers are the masters and the storage viewers
	// connected to the storage peer now.
	Sessions int64 `json:"sessions"`
	Viewers  int64 `json:"viewers"`
	// Joins and ViewerJoins count accepted JoinStorageSession and
	// JoinStorageSessionAsViewer calls.
	Joins       int64 `json:"joins"`
	ViewerJoins int64 `json:"viewerJoins"`
	// Refused counts master sessions the storage peer ended because of
	// their media (not both H.264 and Opus, a profile or size KVS does not
	// take); LastRefusal says why the latest was.
	Refused     int64  `json:"refused"`
	LastRefusal string `json:"lastRefusal,omitempty"`
	// ViewersRefused counts JoinStorageSessionAsViewer calls refused for
	// the viewer limit.
	ViewersRefused int64 `json:"viewersRefused"`
	// Ended counts master sessions that ended (replaced, time limit,
	// refused, connection lost, emulator closing).
	Ended int64 `json:"ended"`
}

// StorageSession is one channel's storage session, as the admin API
// lists it.
type StorageSession struct {
	Channel string `json:"channel"`
	// Master is the storage peer's client id toward the master; empty when
	// no master is joined.
	Master      string    `json:"master,omitempty"`
	MasterSince time.Time `json:"masterSince,omitzero"`
	// Viewers are the joined storage viewers' client ids.
	Viewers []string `json:"viewers"`
	// Recording is the path of the master's recording, once it started.
	Recording string `json:"recording,omitempty"`
	// MasterPackets counts the RTP packets the master sent, ViewerPackets
	// those the viewers sent (their Opus, which goes on to the master).
	MasterPackets int64 `json:"masterPackets"`
	ViewerPackets int64 `json:"viewerPackets"`
}

// storageSession is a channel's storage session: the master's link (the
// newest JoinStorageSession's) and the viewers'. Its links are guarded by
// storageState.mu.
type storageSession struct {
	e            *Emulator
	ch           *channel
	video, audio *forwarder // the master's media, to the viewers
	talk         *forwarder // the viewers' audio, to the master

	talkMu   sync.Mutex
	talker   *peerLink // the viewer whose audio goes to the master
	talkAt   time.Time // when its last packet came
	master   *peerLink
	viewers  map[string]*peerLink
	orphaned *time.Timer // drops the viewers after StorageNoMasterTimeout without a master
}

func (e *Emulator) storageStats() StorageStats {
	st := &e.storage
	s := StorageStats{
		Joins: st.joins.Load(), ViewerJoins: st.viewerJoins.Load(), Refused: st.refused.Load(),
		ViewersRefused: st.viewersRefused.Load(), Ended: st.ended.Load(),
	}
	if r := st.lastRefusal.Load(); r != nil {
		s.LastRefusal = *r
	}
	st.mu.Lock()
	for _, ss := range st.sessions {
		if ss.master != nil {
			s.Sessions++
		}
		s.Viewers += int64(len(ss.viewers))
	}
	st.mu.Unlock()
	return s
}

// StorageSessions returns the channels' storage sessions, by channel name.
func (e *Emulator) StorageSessions() []StorageSession {
	st := &e.storage
	st.mu.Lock()
	out := make([]StorageSession, 0, len(st.sessions))
	for _, s := range st.sessions {
		v := StorageSession{Channel: s.ch.name, Viewers: make([]string, 0, len(s.viewers))}
		if m := s.master; m != nil {
			v.Master, v.MasterSince, v.MasterPackets = m.peerID, m.since, m.rtpIn.Load()
			m.mu.Lock()
			if m.rec != nil {
				v.Recording = m.rec.info.Path
			}
			m.mu.Unlock()
		}
		for id, l := range s.viewers {
			v.Viewers = append(v.Viewers, id)
			v.ViewerPackets += l.rtpIn.Load()
		}
		slices.Sort(v.Viewers)
		out = append(out, v)
	}
	st.mu.Unlock()
	slices.SortFunc(out, func(a, b StorageSession) int { return strings.Compare(a.Channel, b.Channel) })
	return out
}

// Recordings returns the storage sessions' recordings, oldest first,
// those under way included.
func (e *Emulator) Recordings() []Recording {
	st := &e.storage
	st.mu.Lock()
	recs := slices.Clone(st.recs)
	st.mu.Unlock()
	out := make([]Recording, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.snapshot())
	}
	return out
}

// recordingPath returns the path of the recording named name, if there is
// one.
func (e *Emulator) recordingPath(name string) (string, bool) {
	st := &e.storage
	st.mu.Lock()
	defer st.mu.Unlock()
	path, ok := st.paths[name]
	return path, ok
}

// newRecording opens a recording file for channel.
func (st *storageState) newRecording(channel string, sps, pps []byte, info spsInfo, pts uint32, dir string, now time.Time) (*recorder, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.dir == "" {
		if dir == "" {
			d, err := os.MkdirTemp("", "kvssign-recordings-")
			if err != nil {
				return nil, fmt.Errorf("emulator: recording directory: %w", err)
			}
			dir, st.tempDir = d, true
		} else if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("emulator: recording directory: %w", err)
		}
		st.dir = dir
	}
	st.seq++
	name := recordingName(channel, now, st.seq)
	r, err := newRecorder(filepath.Join(st.dir, name), channel, sps, pps, info, pts, now)
	if err != nil {
		return nil, err
	}
	r.info.Name = name
	st.recs = append(st.recs, r)
	if st.paths == nil {
		st.paths = map[string]string{}
	}
	st.paths[name] = r.info.Path
	return r, nil
}

// maxNameChannel is how much of a channel's name a recording's file name
// keeps: a channel name may have 256 characters, a file name 255 bytes.
const maxNameChannel = 128

// recordingName returns the file name of a channel's recording number seq,
// started at now. A name too long to keep whole is cut and followed by a
// hash of all of it, so that channels sharing a long prefix keep apart.
func recordingName(channel string, now time.Time, seq int) string {
	if len(channel) > maxNameChannel {
		sum := sha256.Sum256([]byte(channel))
		channel = channel[:maxNameChannel] + "-" + hex.EncodeToString(sum[:8])
	}
	return fmt.Sprintf("%s-%s-%d.mkv", channel, now.UTC().Format("20060102T150405Z"), seq)
}

// closeStorage removes the recordings' directory if the emulator made it.
// Close calls it once every link has ended.
func (e *Emulator) closeStorage() {
	st := &e.storage
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.tempDir {
		os.RemoveAll(st.dir)
	}
}

func (st *storageState) peerAPI() (*webrtc.API, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.api == nil {
		api, err := newStorageAPI()
		if err != nil {
			return nil, fmt.Errorf("emulator: storage peer: %w", err)
		}
		st.api = api
	}
	return st.api, nil
}

// storageTake takes a signaling message meant for the storage peer: one
// addressed to a master link's client id (key), or one from a joined
// storage viewer (key empty). It reports whether it took it.
func (e *Emulator) storageTake(ch *channel, key string, m kvs.ServerMessage) bool {
	st := &e.storage
	if st.live.Load() == 0 {
		return false
	}
	st.mu.Lock()
	var l *peerLink
	if s := st.sessions[ch]; s != nil {
		if key == "" {
			l = s.viewers[m.SenderClientID]
		} else if s.master != nil && s.master.peerID == key {
			l = s.master
		}
	}
	st.mu.Unlock()
	if l == nil {
		return false
	}
	l.receive(m)
	return true
}

// serveStorage serves the WEBRTC endpoint.
func (e *Emulator) serveStorage(w http.ResponseWriter, r *http.Request) {
	_, op, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, webrtcPrefix), "/")
	switch op {
	case "joinStorageSession":
		op = OpJoinStorageSession
	case "joinStorageSessionAsViewer":
		op = OpJoinStorageSessionAsViewer
	default:
		op = ""
	}
	var err error
	if op == "" || r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, webrtcPrefix+"w-") {
		err = errf(http.StatusNotFound, "UnknownOperationException",
			"no operation at %s %s; the WEBRTC endpoint serves POST /joinStorageSession and /joinStorageSessionAsViewer", r.Method, clipValue(r.URL.Path))
	} else {
		e.stats.call(op)
		if err = e.joinStorage(r, op); err != nil {
			e.stats.fail(op)
			e.log.Debug("storage session error", "op", op, "err", err)
		}
	}
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) {
			// This service's errors carry "message", as its model says.
			c := *ae
			c.lowerKey = true
			err = &c
		}
		e.writeJSONError(w, err)
		return
	}
	e.writeJSON(w, struct{}{})
}

type joinStorageInput struct {
	ChannelArn *string `json:"channelArn"`
	ClientId   *string `json:"clientId"`
}

func (e *Emulator) joinStorage(r *http.Request, op string) error {
	body, res, err := e.readSigned(r)
	if err != nil {
		return err
	}
	if ae := e.faults.inject(op, false); ae != nil {
		e.stats.faults.Add(1)
		return ae
	}
	var in joinStorageInput
	if err := decodeJSON(body, &in); err != nil {
		return err
	}
	if _, err := checkARN("channelArn", in.ChannelArn); err != nil {
		return err
	}
	if op == OpJoinStorageSessionAsViewer {
		switch {
		case in.ClientId == nil:
			return invalidArg("1 validation error detected: Value null at 'clientId' failed to satisfy constraint: Member must not be null")
		case kvs.ValidateClientID(*in.ClientId) != nil:
			return invalidArg("%s", validationMessage(*in.ClientId, "clientId", "Member must satisfy regular expression pattern: ^[a-zA-Z0-9_.-]+$ of length 1 to 256"))
		}
	}
	who, ae := e.caller(res.AccessKeyID)
	if ae != nil {
		return ae
	}
	if ae := e.authorize(who, op, *in.ChannelArn); ae != nil {
		return ae
	}
	ch, err := e.channelByARN(*in.ChannelArn)
	if err != nil {
		return err
	}
	e.mu.Lock()
	enabled := ch.storage.enabled()
	e.mu.Unlock()
	if !enabled {
		return invalidArg("The channel's media storage is not ENABLED: call UpdateMediaStorageConfiguration first.")
	}
	if op == OpJoinStorageSession {
		return e.joinMaster(ch)
	}
	return e.joinViewer(ch, *in.ClientId)
}

// newPeerID returns a client id for the storage peer's messages.
func newPeerID() string {
	var b [8]byte
	rand.Read(b[:])
	return "storage-peer-" + hex.EncodeToString(b[:])
}

// sessionLocked returns ch's session, creating it. The caller holds st.mu.
func (st *storageState) sessionLocked(e *Emulator, ch *channel) (*storageSession, error) {
	if s := st.sessions[ch]; s != nil {
		return s, nil
	}
	video, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000}, "video", "kvs-storage")
	if err != nil {
		return nil, err
	}
	audio, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "kvs-storage")
	if err != nil {
		return nil, err
	}
	talk, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "kvs-storage-viewers")
	if err != nil {
		return nil, err
	}
	if st.sessions == nil {
		st.sessions = map[*channel]*storageSession{}
	}
	s := &storageSession{e: e, ch: ch, viewers: map[string]*peerLink{},
		// One frame at 25 fps, and one 20 ms Opus packet.
		video: &forwarder{track: video, gap: 90000 / 25},
		audio: &forwarder{track: audio, gap: 960},
		talk:  &forwarder{track: talk, gap: 960},
	}
	st.sessions[ch] = s
	st.live.Add(1)
	return s, nil
}

// joinMaster starts a master session on ch, replacing the current one.
func (e *Emulator) joinMaster(ch *channel) error {
	ch.mu.Lock()
	connected := ch.master != nil
	ch.mu.Unlock()
	if !connected {
		return invalidArg("No master is connected to the channel's signaling: connect as master before JoinStorageSession.")
	}
	api, err := e.storage.peerAPI()
	if err != nil {
		return err
	}
	l := &peerLink{peerID: newPeerID(), since: e.now(), ended: make(chan struct{})}
	st := &e.storage
	st.mu.Lock()
	s, err := st.sessionLocked(e, ch)
	if err == nil {
		l.s = s
		err = l.newPeerConnection(api)
	}
	if err != nil {
		if s != nil {
			st.dropIfEmptyLocked(s)
		}
		st.mu.Unlock()
		if l.pc != nil {
			l.pc.Close()
		}
		return err
	}
	old := s.master
	s.master = l
	if s.orphaned != nil {
		s.orphaned.Stop()
		s.orphaned = nil
	}
	st.mu.Unlock()
	if old != nil {
		old.end("replaced by a newer JoinStorageSession", false)
	}
	l.timer = time.AfterFunc(e.cfg.StorageSessionDuration, func() { l.end("the session reached its maximum duration", false) })
	st.joins.Add(1)
	e.log.Info("storage session joined", "channel", ch.name, "peer", l.peerID)
	e.startLink(l)
	return nil
}

// joinViewer adds the viewer clientID to ch's session.
func (e *Emulator) joinViewer(ch *channel, clientID string) error {
	ch.mu.Lock()
	connected := ch.viewers[clientID] != nil
	ch.mu.Unlock()
	if !connected {
		return invalidArg("No viewer with ClientId %s is connected to the channel's signaling: connect as that viewer before JoinStorageSessionAsViewer.", clientID)
	}
	api, err := e.storage.peerAPI()
	if err != nil {
		return err
	}
	st := &e.storage
	st.mu.Lock()
	s, err := st.sessionLocked(e, ch)
	if err != nil {
		st.mu.Unlock()
		return err
	}
	old := s.viewers[clientID]
	if n := len(s.viewers); old == nil && e.cfg.StorageViewers >= 0 && n >= e.cfg.StorageViewers {
		st.mu.Unlock()
		st.viewersRefused.Add(1)
		return errf(http.StatusBadRequest, "ClientLimitExceededException",
			"The storage session of this channel already has %d viewers, the most it takes.", n)
	}
	l := &peerLink{s: s, clientID: clientID, since: e.now(), ended: make(chan struct{})}
	if s.master != nil {
		l.peerID = s.master.peerID
	} else {
		l.peerID = newPeerID()
	}
	if err := l.newPeerConnection(api); err != nil {
		st.dropIfEmptyLocked(s)
		st.mu.Unlock()
		if l.pc != nil {
			l.pc.Close()
		}
		return err
	}
	s.viewers[clientID] = l
	if s.master == nil && s.orphaned == nil {
		s.orphaned = time.AfterFunc(e.cfg.StorageNoMasterTimeout, s.dropOrphans)
	}
	st.mu.Unlock()
	if old != nil {
		old.end("replaced by a newer JoinStorageSessionAsViewer", false)
	}
	st.viewerJoins.Add(1)
	e.log.Info("storage session viewer joined", "channel", ch.name, "clientId", clientID)
	e.startLink(l)
	return nil
}

// startLink runs l on a goroutine of its own, or closes it if the
// emulator is closing.
func (e *Emulator) startLink(l *peerLink) {
	if !e.track() {
		l.end("emulator shutting down", false)
		l.pc.Close()
		l.s.linkEnded(l)
		return
	}
	go func() {
		defer e.untrack()
		l.run()
	}()
}

// dropOrphans ends the viewers of a session that has had no master for
// StorageNoMasterTimeout.
func (s *storageSession) dropOrphans() {
	st := &s.e.storage
	st.mu.Lock()
	var viewers []*peerLink
	if s.master == nil {
		for _, v := range s.viewers {
			viewers = append(viewers, v)
		}
	}
	s.orphaned = nil
	st.mu.Unlock()
	for _, v := range viewers {
		v.end("no master joined the storage session in time", false)
	}
}

// linkEnded removes an ended link from its session, records why, and
// finishes a master's recording.
func (s *storageSession) linkEnded(l *peerLink) {
	e := s.e
	st := &e.storage
	if l.isMaster() {
		st.ended.Add(1)
		if l.refused {
			st.refused.Add(1)
			reason := s.ch.name + ": " + l.reason
			st.lastRefusal.Store(&reason)
			e.log.Warn("storage session refused", "channel", s.ch.name, "reason", l.reason)
		} else {
			e.log.Info("storage session ended", "channel", s.ch.name, "peer", l.peerID, "reason", l.reason)
		}
		l.mu.Lock()
		rec := l.rec
		l.mu.Unlock()
		if rec != nil {
			if info, err := rec.close(); err != nil {
				e.log.Error("storage session recording", "channel", s.ch.name, "path", info.Path, "err", err)
			}
		}
	} else {
		e.log.Info("storage session viewer left", "channel", s.ch.name, "clientId", l.clientID, "reason", l.reason)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if l.isMaster() && s.master == l {
		s.master = nil
		if len(s.viewers) > 0 && s.orphaned == nil && !e.isClosed() {
			s.orphaned = time.AfterFunc(e.cfg.StorageNoMasterTimeout, s.dropOrphans)
		}
	} else if !l.isMaster() && s.viewers[l.clientID] == l {
		delete(s.viewers, l.clientID)
	}
	st.dropIfEmptyLocked(s)
}

// dropIfEmptyLocked removes s, if it has neither master nor viewers, so
// that it is no longer listed and, with no session left, the relay skips
// the storage peer's lock again. The caller holds st.mu.
func (st *storageState) dropIfEmptyLocked(s *storageSession) {
	if s.master != nil || len(s.viewers) > 0 || st.sessions[s.ch] != s {
		return
	}
	if s.orphaned != nil {
		s.orphaned.Stop()
		s.orphaned = nil
	}
	delete(st.sessions, s.ch)
	st.live.Add(-1)
}

// adminRecording serves GET /_emulator/recordings/NAME: the file of a
// recording the storage peer made, by its base name only.
func (e *Emulator) adminRecording(w http.ResponseWriter, r *http.Request, name string) {
	path, ok := e.recordingPath(name)
	if !ok {
		adminError(w, http.StatusNotFound, "no recording named %q; GET /_emulator/recordings lists them", clipValue(name))
		return
	}
	f, err := os.Open(path)
	if err != nil {
		adminError(w, http.StatusNotFound, "recording %q: %v", name, err)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		adminError(w, http.StatusInternalServerError, "recording %q: %v", name, err)
		return
	}
	w.Header().Set("Content-Type", "video/x-matroska")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	http.ServeContent(w, r, name, st.ModTime(), f)
}

// endStorage ends ch's storage session, master and viewers, for reason.
func (e *Emulator) endStorage(ch *channel, reason string) {
	st := &e.storage
	if st.live.Load() == 0 {
		return
	}
	st.mu.Lock()
	var links []*peerLink
	if s := st.sessions[ch]; s != nil {
		if s.master != nil {
			links = append(links, s.master)
		}
		for _, v := range s.viewers {
			links = append(links, v)
		}
	}
	st.mu.Unlock()
	for _, l := range links {
		l.end(reason, false)
	}
}
