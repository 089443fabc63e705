package emulator_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/at-wat/ebml-go"
	"github.com/at-wat/ebml-go/webm"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	kvtypes "github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"
	"github.com/coder/websocket"
	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/kvssign/kvssign/emulator"
	"github.com/kvssign/kvssign/internal/leakcheck"
	"github.com/kvssign/kvssign/internal/testmedia"
	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/sigv4"
)

// storageChannel creates a channel with media storage enabled and returns
// its ARN and WEBRTC endpoint.
func storageChannel(t testing.TB, e *emulator.Emulator, name string) (arn, webrtcEndpoint string) {
	t.Helper()
	ctx := ctxT(t)
	c := sdkClient(e, exampleCreds())
	arn = mustCreate(t, e, name)
	st, err := c.CreateStream(ctx, &kinesisvideo.CreateStreamInput{StreamName: aws.String(name + "-stream"), DataRetentionInHours: aws.Int32(24)})
	if err != nil {
		t.Fatalf("CreateStream: %v", err)
	}
	if _, err := c.UpdateMediaStorageConfiguration(ctx, &kinesisvideo.UpdateMediaStorageConfigurationInput{ChannelARN: aws.String(arn),
		MediaStorageConfiguration: &kvtypes.MediaStorageConfiguration{Status: kvtypes.MediaStorageConfigurationStatusEnabled, StreamARN: st.StreamARN}}); err != nil {
		t.Fatalf("UpdateMediaStorageConfiguration: %v", err)
	}
	return arn, endpoint(t, e, arn, kvs.Master, kvtypes.ChannelProtocolWebrtc)
}

// callStorage POSTs a SigV4-signed storage call and returns the status,
// the x-amzn-ErrorType code and the body.
func callStorage(t testing.TB, ep, op string, in any) (int, string, map[string]string) {
	t.Helper()
	body, _ := json.Marshal(in)
	req, err := http.NewRequestWithContext(ctxT(t), http.MethodPost, ep+"/"+op, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(body)
	s := &sigv4.Signer{Service: "kinesisvideo", Region: "us-west-2"}
	if err := s.SignRequest(req.Context(), exampleCreds(), req, hex.EncodeToString(sum[:])); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", op, err)
	}
	defer resp.Body.Close()
	out := map[string]string{}
	b, _ := io.ReadAll(resp.Body)
	json.Unmarshal(b, &out)
	code, _, _ := strings.Cut(resp.Header.Get("x-amzn-ErrorType"), ":")
	return resp.StatusCode, code, out
}

func joinMaster(t testing.TB, ep, arn string) {
	t.Helper()
	if status, code, body := callStorage(t, ep, "joinStorageSession", map[string]string{"channelArn": arn}); status != http.StatusOK {
		t.Fatalf("JoinStorageSession: %d %s %v", status, code, body)
	}
}

// loopbackAPI is a pion API for the test's own peers: default codecs,
// loopback only.
func loopbackAPI(t testing.TB) *webrtc.API {
	t.Helper()
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	var s webrtc.SettingEngine
	s.SetIncludeLoopbackCandidate(true)
	s.SetInterfaceFilter(func(name string) bool { return name == "lo" || name == "lo0" })
	s.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	s.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(s))
}

// mediaPeer is a test master or viewer: a signaling connection that
// answers the storage peer's offers with a pion peer connection.
type mediaPeer struct {
	t       testing.TB
	sig     *peer
	api     *webrtc.API
	master  bool
	tracks  []webrtc.TrackLocal // what a master sends
	offers  chan kvs.ServerMessage
	mu      sync.Mutex
	pc      *webrtc.PeerConnection
	frames  atomic.Int64 // video frames received (viewer)
	audio   atomic.Int64 // audio packets received
	connCh  chan struct{}
	closeMu sync.Once

	sentMu    sync.Mutex
	videoSent []time.Time // when each clip frame was handed to pion, by index
	audioSent []time.Time // when each Opus packet was
}

func newMediaPeer(t testing.TB, sig *peer, master bool, kinds ...string) *mediaPeer {
	t.Helper()
	p := &mediaPeer{t: t, sig: sig, api: loopbackAPI(t), master: master, offers: make(chan kvs.ServerMessage, 8)}
	for _, k := range kinds {
		var tr *webrtc.TrackLocalStaticSample
		var err error
		if k == "video" {
			tr, err = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264}, "video", "master")
		} else {
			tr, err = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, "audio", "master")
		}
		if err != nil {
			t.Fatal(err)
		}
		p.tracks = append(p.tracks, tr)
	}
	go func() {
		for {
			m, err := sig.tryRecv(time.Minute)
			if err != nil {
				return
			}
			if m.MessageType == kvs.ActionSDPOffer {
				p.offers <- m
			}
		}
	}()
	t.Cleanup(func() {
		p.mu.Lock()
		pc := p.pc
		p.mu.Unlock()
		if pc != nil {
			pc.Close()
		}
	})
	return p
}

// answer waits for the storage peer's offer and answers it; it returns the
// offer's sender (the storage peer's client id).
func (p *mediaPeer) answer() string {
	p.t.Helper()
	var offer kvs.ServerMessage
	select {
	case offer = <-p.offers:
	case <-time.After(10 * time.Second):
		p.t.Fatal("no SDP_OFFER from the storage peer")
	}
	var sd kvs.SessionDescription
	if err := kvs.DecodePayload(offer.MessagePayload, &sd); err != nil {
		p.t.Fatal(err)
	}
	pc, err := p.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	old := p.pc
	p.pc = pc
	p.mu.Unlock()
	if old != nil {
		old.Close()
	}
	p.connCh = make(chan struct{})
	connCh := p.connCh
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			close(connCh)
		}
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			pkt, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			switch {
			case tr.Kind() == webrtc.RTPCodecTypeAudio:
				p.audio.Add(1)
			case pkt.Marker:
				p.frames.Add(1)
			}
		}
	})
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sd.SDP}); err != nil {
		p.t.Fatal(err)
	}
	for _, tr := range p.tracks {
		if _, err := pc.AddTrack(tr); err != nil {
			p.t.Fatal(err)
		}
	}
	ans, err := pc.CreateAnswer(nil)
	if err != nil {
		p.t.Fatal(err)
	}
	if p.master {
		// A master trickles its candidates, as the SDKs do: some may
		// reach the storage peer before the answer.
		pc.OnICECandidate(func(c *webrtc.ICECandidate) {
			if c == nil {
				return
			}
			b, _ := kvs.EncodePayload(c.ToJSON())
			p.sig.ws.Write(context.Background(), websocket.MessageText, mustJSON(kvs.ClientMessage{
				Action: kvs.ActionICECandidate, RecipientClientID: offer.SenderClientID, MessagePayload: b}))
		})
		if err := pc.SetLocalDescription(ans); err != nil {
			p.t.Fatal(err)
		}
		p.sig.send(kvs.ClientMessage{Action: kvs.ActionSDPAnswer, RecipientClientID: offer.SenderClientID,
			MessagePayload: payload(p.t, kvs.SessionDescription{Type: "answer", SDP: ans.SDP})})
		return offer.SenderClientID
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(ans); err != nil {
		p.t.Fatal(err)
	}
	<-gathered
	p.sig.send(kvs.ClientMessage{Action: kvs.ActionSDPAnswer, MessagePayload: payload(p.t, kvs.SessionDescription{Type: "answer", SDP: pc.LocalDescription().SDP})})
	return offer.SenderClientID
}

// waitConnected waits for the peer connection made by answer.
func (p *mediaPeer) waitConnected() {
	p.t.Helper()
	select {
	case <-p.connCh:
	case <-time.After(10 * time.Second):
		p.t.Fatal("the peer connection to the storage peer did not connect")
	}
}

// stream sends the test clip once, video and audio together.
func (p *mediaPeer) stream(ctx context.Context) {
	p.t.Helper()
	video, err := testmedia.H264()
	if err != nil {
		p.t.Fatal(err)
	}
	audio, err := testmedia.Opus()
	if err != nil {
		p.t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, tr := range p.tracks {
		samples, sent := video, &p.videoSent
		if tr.Kind() == webrtc.RTPCodecTypeAudio {
			samples, sent = audio, &p.audioSent
		}
		w := tr.(*webrtc.TrackLocalStaticSample)
		write := func(s media.Sample) error {
			p.sentMu.Lock()
			*sent = append(*sent, time.Now())
			p.sentMu.Unlock()
			return w.WriteSample(s)
		}
		wg.Go(func() { testmedia.Play(ctx, samples, 1, write) })
	}
	wg.Wait()
}

// sentFrom returns how many clip frames the master sent from frame k on,
// and how many Opus packets it sent from when it sent frame k.
func (p *mediaPeer) sentFrom(k int) (video, audio int) {
	p.sentMu.Lock()
	defer p.sentMu.Unlock()
	if k >= len(p.videoSent) {
		return 0, 0
	}
	at := p.videoSent[k]
	for _, t := range p.audioSent {
		if !t.Before(at) {
			audio++
		}
	}
	return len(p.videoSent) - k, audio
}

// clipKeyframe returns the index of the clip's keyframe whose IDR slice
// is in block, or -1.
func clipKeyframe(t *testing.T, block []byte) int {
	t.Helper()
	video, err := testmedia.H264()
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range video {
		for _, nal := range bytes.Split(s.Data, []byte{0, 0, 1}) {
			// A four-byte start code leaves its first zero on the NAL
			// before; no NAL ends in a zero byte.
			nal = bytes.TrimRight(nal, "\x00")
			if len(nal) > 0 && nal[0]&0x1f == 5 && bytes.Contains(block, nal) {
				return i
			}
		}
	}
	return -1
}

// matroska is what the test reads of a recording.
type matroska struct {
	Header  webm.EBMLHeader `ebml:"EBML"`
	Segment webm.Segment    `ebml:"Segment"`
}

// readRecording parses a recording and returns its video frame count, its
// audio frame count, the last video frame's timestamp and the first video
// frame.
func readRecording(t *testing.T, path string) (video, audio int, last time.Duration, first []byte, doc matroska) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := ebml.Unmarshal(f, &doc); err != nil {
		t.Fatalf("recording %s does not parse as Matroska: %v", path, err)
	}
	for _, c := range doc.Segment.Cluster {
		for _, b := range c.SimpleBlock {
			switch b.TrackNumber {
			case 1:
				if video == 0 && len(b.Data) > 0 {
					first = b.Data[0]
				}
				video++
				last = max(last, time.Duration(int64(c.Timecode)+int64(b.Timecode))*time.Millisecond)
			case 2:
				audio++
			}
		}
	}
	return video, audio, last, first, doc
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d, %v", u, resp.StatusCode, err)
	}
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

func storageConfig(t *testing.T) emulator.Config {
	cfg := fastConfig()
	cfg.RecordingDir = t.TempDir()
	return cfg
}

// TestStorageSessionEndToEnd: a master joins and streams the clip, a
// storage viewer receives it, a second master takes the session over,
// and the first session's recording holds what was sent.
func TestStorageSessionEndToEnd(t *testing.T) {
	e := start(t, storageConfig(t))
	arn, ep := storageChannel(t, e, "ingest")
	m1 := newMediaPeer(t, connectMaster(t, e, arn), true, "video", "audio")
	v := newMediaPeer(t, connectViewer(t, e, arn, "viewer-1"), false, "audio")
	joinMaster(t, ep, arn)
	first := m1.answer()
	m1.waitConnected()
	if status, code, body := callStorage(t, ep, "joinStorageSessionAsViewer", map[string]string{"channelArn": arn, "clientId": "viewer-1"}); status != http.StatusOK {
		t.Fatalf("JoinStorageSessionAsViewer: %d %s %v", status, code, body)
	}
	v.answer()
	v.waitConnected()
	// The viewer talks back (Opus) while the master streams.
	talk, stopTalking := context.WithCancel(ctxT(t))
	talked := make(chan struct{})
	go func() {
		defer close(talked)
		v.stream(talk)
	}()
	m1.stream(ctxT(t))
	stopTalking()
	<-talked
	if n := v.frames.Load(); n < 50 {
		t.Errorf("the storage viewer received %d video frames of %d; want most", n, testmedia.FrameCount)
	}
	if n := m1.audio.Load(); n < 50 {
		t.Errorf("the master received %d of the viewer's audio packets; want most of 200", n)
	}
	ss := e.StorageSessions()
	if len(ss) != 1 || ss[0].Master != first || len(ss[0].Viewers) != 1 || ss[0].Recording == "" || ss[0].MasterPackets == 0 || ss[0].ViewerPackets == 0 {
		t.Fatalf("StorageSessions() = %+v; want one with master %s, one viewer, a recording, packets from both", ss, first)
	}

	// A newer master takes the session over: the first one's recording
	// is finished.
	m2 := newMediaPeer(t, connectMaster(t, e, arn), true, "video", "audio")
	joinMaster(t, ep, arn)
	if second := m2.answer(); second == first {
		t.Errorf("the second session's peer id is the first's, %s", first)
	}
	// The viewer stays and gets the new master's media.
	m2.waitConnected()
	seen := v.frames.Load()
	part, cancel := context.WithTimeout(ctxT(t), time.Second)
	m2.stream(part)
	cancel()
	waitFor(t, "the viewer to get the second master's frames", func() bool { return v.frames.Load() >= seen+10 })
	waitFor(t, "the first recording to finish", func() bool {
		recs := e.Recordings()
		return len(recs) == 2 && recs[0].Done && !recs[1].Done
	})
	rec := e.Recordings()[0]
	video := checkRecording(t, rec, m1)

	var listed []emulator.Recording
	getJSON(t, e.URL()+"/_emulator/recordings", &listed)
	if len(listed) != 2 || listed[0].Name != rec.Name || listed[0].VideoFrames != video {
		t.Errorf("GET /_emulator/recordings = %+v; want the first recording, then the second's under way", listed)
	}
	var sessions []emulator.StorageSession
	getJSON(t, e.URL()+"/_emulator/storage", &sessions)
	if len(sessions) != 1 || sessions[0].Channel != "ingest" || sessions[0].Master == first {
		t.Errorf("GET /_emulator/storage = %+v; want the ingest channel's session with the second master", sessions)
	}
	resp, err := http.Get(e.URL() + "/_emulator/recordings/" + rec.Name)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || int64(len(got)) != rec.Size || resp.Header.Get("Content-Type") != "video/x-matroska" {
		t.Errorf("GET recording: %d, %d bytes, %s; want 200, %d bytes of video/x-matroska", resp.StatusCode, len(got), resp.Header.Get("Content-Type"), rec.Size)
	}
	st := e.Stats().Storage
	if st.Joins != 2 || st.ViewerJoins != 1 || st.Ended != 1 || st.Sessions != 1 || st.Viewers != 1 {
		t.Errorf("Stats().Storage = %+v; want 2 joins, 1 viewer join, 1 ended, 1 session, 1 viewer", st)
	}
}

// checkRecording holds a finished recording to what master sent from the
// recording's first frame on, and returns its video frames.
func checkRecording(t *testing.T, rec emulator.Recording, master *mediaPeer) int {
	t.Helper()
	video, audio, last, firstFrame, doc := readRecording(t, rec.Path)
	if doc.Header.DocType != "matroska" || len(doc.Segment.Tracks.TrackEntry) != 2 {
		t.Errorf("DocType %q, %d tracks; want matroska with 2", doc.Header.DocType, len(doc.Segment.Tracks.TrackEntry))
	}
	// The recording starts at the first keyframe the storage peer got
	// whole, which on loaded cores may not be the clip's first: hold it to
	// what the master sent from that keyframe on.
	k := clipKeyframe(t, firstFrame)
	if k < 0 {
		t.Fatalf("the recording's first frame is none of the clip's keyframes")
	}
	sentVideo, sentAudio := master.sentFrom(k)
	t.Logf("the recording starts at clip frame %d; the master sent %d frames and %d Opus packets from it", k, sentVideo, sentAudio)
	if want := sentVideo; video < want*9/10 || video > want*11/10 {
		t.Errorf("recording has %d video frames; want %d ±10%%", video, want)
	}
	span := time.Duration(sentVideo) * testmedia.Length / testmedia.FrameCount
	if last < span*9/10 || last > span*11/10 {
		t.Errorf("recording's video spans %v; want %v ±10%%", last, span)
	}
	if d := time.Duration(doc.Segment.Info.Duration) * time.Millisecond; d < span*9/10 || d > span*11/10 {
		t.Errorf("recording's Duration = %v; want %v ±10%%", d, span)
	}
	if audio < sentAudio*3/4 {
		t.Errorf("recording has %d audio frames; want about the %d sent", audio, sentAudio)
	}
	if rec.VideoFrames != video || rec.Width != testmedia.Width || rec.Height != testmedia.Height || rec.Profile != "constrained-baseline" {
		t.Errorf("Recordings()[0] = %+v; want %d frames, %dx%d constrained-baseline", rec, video, testmedia.Width, testmedia.Height)
	}
	return video
}

// TestStorageSessionRefusesAudioOnly: a master that answers without
// video is refused, and the refusal is in the stats.
func TestStorageSessionRefusesAudioOnly(t *testing.T) {
	e := start(t, storageConfig(t))
	arn, ep := storageChannel(t, e, "audio-only")
	m := newMediaPeer(t, connectMaster(t, e, arn), true, "audio")
	joinMaster(t, ep, arn)
	m.answer()
	waitFor(t, "the refusal", func() bool { return e.Stats().Storage.Refused == 1 })
	st := e.Stats().Storage
	if !strings.Contains(st.LastRefusal, "no H.264 video") || st.Sessions != 0 {
		t.Errorf("Stats().Storage = %+v; want the refusal named and no session", st)
	}
	if len(e.Recordings()) != 0 {
		t.Errorf("Recordings() = %+v; want none", e.Recordings())
	}
}

// TestStorageSessionErrors checks the storage calls' refusals.
func TestStorageSessionErrors(t *testing.T) {
	e := start(t, storageConfig(t))
	arn, ep := storageChannel(t, e, "errors")
	plain := mustCreate(t, e, "no-storage")
	connectViewer(t, e, arn, "connected")
	tests := []struct {
		name   string
		op     string
		in     map[string]string
		status int
		code   string
		msg    string
	}{
		{"no master connected", "joinStorageSession", map[string]string{"channelArn": arn}, 400, "InvalidArgumentException", "connect as master"},
		{"no channel arn", "joinStorageSession", map[string]string{}, 400, "InvalidArgumentException", "channelArn"},
		{"bad channel arn", "joinStorageSession", map[string]string{"channelArn": "arn:nope"}, 400, "InvalidArgumentException", "channelArn"},
		{"unknown channel", "joinStorageSession", map[string]string{"channelArn": "arn:aws:kinesisvideo:us-west-2:123456789012:channel/nope/1"}, 404, "ResourceNotFoundException", "not found"},
		{"storage disabled", "joinStorageSession", map[string]string{"channelArn": plain}, 400, "InvalidArgumentException", "ENABLED"},
		{"viewer without client id", "joinStorageSessionAsViewer", map[string]string{"channelArn": arn}, 400, "InvalidArgumentException", "clientId"},
		{"viewer bad client id", "joinStorageSessionAsViewer", map[string]string{"channelArn": arn, "clientId": "a b"}, 400, "InvalidArgumentException", "clientId"},
		{"viewer not connected", "joinStorageSessionAsViewer", map[string]string{"channelArn": arn, "clientId": "elsewhere"}, 400, "InvalidArgumentException", "connect as that viewer"},
		{"unknown operation", "joinStorageSessionNow", map[string]string{"channelArn": arn}, 404, "UnknownOperationException", "joinStorageSession"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, code, body := callStorage(t, ep, tc.op, tc.in)
			if status != tc.status || code != tc.code || !strings.Contains(body["message"], tc.msg) {
				t.Errorf("%s = %d %s %v; want %d %s with a message containing %q", tc.op, status, code, body, tc.status, tc.code, tc.msg)
			}
		})
	}
}

// TestStorageViewerLimits: a fourth viewer is refused; viewers without a
// master are dropped after the no-master timeout.
func TestStorageViewerLimits(t *testing.T) {
	cfg := storageConfig(t)
	cfg.StorageNoMasterTimeout = 2 * time.Second
	e := start(t, cfg)
	arn, ep := storageChannel(t, e, "viewers")
	for _, id := range []string{"v1", "v2", "v3", "v4"} {
		connectViewer(t, e, arn, id)
	}
	for _, id := range []string{"v1", "v2", "v3"} {
		if status, code, body := callStorage(t, ep, "joinStorageSessionAsViewer", map[string]string{"channelArn": arn, "clientId": id}); status != http.StatusOK {
			t.Fatalf("JoinStorageSessionAsViewer %s: %d %s %v", id, status, code, body)
		}
	}
	status, code, body := callStorage(t, ep, "joinStorageSessionAsViewer", map[string]string{"channelArn": arn, "clientId": "v4"})
	if status != http.StatusBadRequest || code != "ClientLimitExceededException" || !strings.Contains(body["message"], "3 viewers") {
		t.Errorf("fourth viewer: %d %s %v; want 400 ClientLimitExceededException naming 3 viewers", status, code, body)
	}
	// A viewer that joins again replaces itself, within the limit.
	if status, code, body := callStorage(t, ep, "joinStorageSessionAsViewer", map[string]string{"channelArn": arn, "clientId": "v2"}); status != http.StatusOK {
		t.Errorf("v2 joining again: %d %s %v", status, code, body)
	}
	waitFor(t, "the viewers to be dropped without a master", func() bool {
		return e.Stats().Storage.Viewers == 0 && len(e.StorageSessions()) == 0
	})
	if st := e.Stats().Storage; st.ViewersRefused != 1 || st.ViewerJoins != 4 {
		t.Errorf("Stats().Storage = %+v; want 1 viewer refused, 4 joins", st)
	}
}

// TestStorageSessionTimeLimit: the storage peer ends a session at
// StorageSessionDuration.
func TestStorageSessionTimeLimit(t *testing.T) {
	cfg := storageConfig(t)
	cfg.StorageSessionDuration = 500 * time.Millisecond
	e := start(t, cfg)
	arn, ep := storageChannel(t, e, "limited")
	newMediaPeer(t, connectMaster(t, e, arn), true, "video", "audio")
	joinMaster(t, ep, arn)
	waitFor(t, "the session to end at its limit", func() bool { return e.Stats().Storage.Ended == 1 })
	if st := e.Stats().Storage; st.Sessions != 0 || st.Refused != 0 {
		t.Errorf("Stats().Storage = %+v; want no session, nothing refused", st)
	}
}

// TestStorageSessionClose: Close ends the sessions and leaves no
// goroutine of the emulator's behind.
func TestStorageSessionClose(t *testing.T) {
	e, err := emulator.New(storageConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	arn, ep := storageChannel(t, e, "closing")
	m := newMediaPeer(t, connectMaster(t, e, arn), true, "video", "audio")
	joinMaster(t, ep, arn)
	m.answer()
	m.waitConnected()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	m.stream(ctx)
	cancel()
	if err := e.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	leakcheck.Gone(t, closeSettles, emulatorCode)
	recs := e.Recordings()
	if len(recs) != 1 || !recs[0].Done {
		t.Fatalf("Recordings() after Close = %+v; want one finished", recs)
	}
	if _, err := os.Stat(recs[0].Path); err != nil {
		t.Errorf("a recording in RecordingDir is gone after Close: %v", err)
	}
}

// TestAWSCLIJoinStorageSession runs the aws CLI's kinesis-video-webrtc-storage
// commands against the emulator's WEBRTC endpoint.
func TestAWSCLIJoinStorageSession(t *testing.T) {
	if _, err := exec.LookPath("aws"); err != nil {
		t.Skip("the aws CLI is not on PATH (Debian: apt-get install awscli); skipping the CLI check")
	}
	e := start(t, storageConfig(t))
	arn, ep := storageChannel(t, e, "cli-ingest")
	connectMaster(t, e, arn)
	connectViewer(t, e, arn, "cli-viewer")
	run := func(args ...string) (string, error) {
		cmd := exec.Command("aws", append([]string{"--endpoint-url", ep, "--output", "json", "kinesis-video-webrtc-storage"}, args...)...)
		cmd.Env = cliEnv(e)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run("join-storage-session", "--channel-arn", arn); err != nil {
		t.Fatalf("join-storage-session: %v\n%s", err, out)
	}
	if out, err := run("join-storage-session-as-viewer", "--channel-arn", arn, "--client-id", "cli-viewer"); err != nil {
		t.Fatalf("join-storage-session-as-viewer: %v\n%s", err, out)
	}
	out, err := run("join-storage-session-as-viewer", "--channel-arn", arn, "--client-id", "not-connected")
	if err == nil || !strings.Contains(out, "InvalidArgumentException") {
		t.Errorf("join-storage-session-as-viewer for a viewer not connected: %v\n%s; want InvalidArgumentException", err, out)
	}
	if st := e.Stats().Storage; st.Joins != 1 || st.ViewerJoins != 1 {
		t.Errorf("Stats().Storage = %+v; want 1 join and 1 viewer join", st)
	}
}

// TestStorageSessionEndsWithTheChannel: disabling storage or deleting the
// channel ends its session.
func TestStorageSessionEndsWithTheChannel(t *testing.T) {
	e := start(t, storageConfig(t))
	c := sdkClient(e, exampleCreds())
	for _, tc := range []struct {
		name string
		end  func(arn string) error
	}{
		{"disabled", func(arn string) error {
			_, err := c.UpdateMediaStorageConfiguration(ctxT(t), &kinesisvideo.UpdateMediaStorageConfigurationInput{ChannelARN: aws.String(arn),
				MediaStorageConfiguration: &kvtypes.MediaStorageConfiguration{Status: kvtypes.MediaStorageConfigurationStatusDisabled}})
			return err
		}},
		{"deleted", func(arn string) error {
			_, err := c.DeleteSignalingChannel(ctxT(t), &kinesisvideo.DeleteSignalingChannelInput{ChannelARN: aws.String(arn)})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			arn, ep := storageChannel(t, e, "ends-"+tc.name)
			connectMaster(t, e, arn)
			connectViewer(t, e, arn, "v")
			joinMaster(t, ep, arn)
			if status, code, body := callStorage(t, ep, "joinStorageSessionAsViewer", map[string]string{"channelArn": arn, "clientId": "v"}); status != http.StatusOK {
				t.Fatalf("JoinStorageSessionAsViewer: %d %s %v", status, code, body)
			}
			if err := tc.end(arn); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the session to end", func() bool { return len(e.StorageSessions()) == 0 })
		})
	}
}

// TestStorageJoinErrorLeavesNoSession: a join whose peer connection cannot
// be made leaves no empty session behind, listed or counted.
func TestStorageJoinErrorLeavesNoSession(t *testing.T) {
	e := start(t, storageConfig(t))
	arn, ep := storageChannel(t, e, "broken")
	connectMaster(t, e, arn)
	connectViewer(t, e, arn, "v")
	emulator.BreakStoragePeer(e)
	for _, tc := range []struct {
		op string
		in map[string]string
	}{
		{"joinStorageSession", map[string]string{"channelArn": arn}},
		{"joinStorageSessionAsViewer", map[string]string{"channelArn": arn, "clientId": "v"}},
	} {
		if status, code, body := callStorage(t, ep, tc.op, tc.in); status != http.StatusInternalServerError {
			t.Errorf("%s with no peer connection to be made: %d %s %v; want 500", tc.op, status, code, body)
		}
		if ss, live := e.StorageSessions(), emulator.LiveStorageSessions(e); len(ss) != 0 || live != 0 {
			t.Errorf("after a failed %s: StorageSessions() = %+v, %d live; want none", tc.op, ss, live)
		}
	}
}

// TestStorageReplacedMasterSendsNoOffer: a master link replaced by a newer
// join before its offer went out does not send it, so the master answers
// only the current storage peer.
func TestStorageReplacedMasterSendsNoOffer(t *testing.T) {
	e := start(t, storageConfig(t))
	arn, _ := storageChannel(t, e, "replaced")
	sig := connectMaster(t, e, arn)
	replaced, current, err := emulator.OfferFromReplacedMaster(e, arn)
	if err != nil {
		t.Fatal(err)
	}
	for {
		m, err := sig.tryRecv(10 * time.Second)
		if err != nil {
			t.Fatalf("no offer from the current storage peer %s: %v", current, err)
		}
		if m.MessageType != kvs.ActionSDPOffer {
			continue
		}
		if m.SenderClientID != current {
			t.Fatalf("the master got an offer from %s; want only the current storage peer %s's (replaced: %s)", m.SenderClientID, current, replaced)
		}
		break
	}
	waitFor(t, "the session to end", func() bool { return len(e.StorageSessions()) == 0 && emulator.LiveStorageSessions(e) == 0 })
}

// TestStorageSessionBadMessages: the storage peer drops what it cannot
// use, and ends a session whose answer does not fit its offer.
func TestStorageSessionBadMessages(t *testing.T) {
	e := start(t, storageConfig(t))
	arn, ep := storageChannel(t, e, "bad-messages")
	m := connectMaster(t, e, arn)
	joinMaster(t, ep, arn)
	offer := m.recv()
	if offer.MessageType != kvs.ActionSDPOffer {
		t.Fatalf("got %+v; want the storage peer's SDP_OFFER", offer)
	}
	rejected := e.Stats().MessagesRejected
	m.send(kvs.ClientMessage{Action: kvs.ActionSDPOffer, RecipientClientID: offer.SenderClientID, MessagePayload: payload(t, kvs.SessionDescription{Type: "offer", SDP: "v=0"})})
	m.send(kvs.ClientMessage{Action: kvs.ActionICECandidate, RecipientClientID: offer.SenderClientID, MessagePayload: "bm90IGpzb24="})
	m.send(kvs.ClientMessage{Action: kvs.ActionSDPAnswer, RecipientClientID: offer.SenderClientID, MessagePayload: payload(t, kvs.SessionDescription{Type: "offer", SDP: "v=0"})})
	waitFor(t, "three messages dropped", func() bool { return e.Stats().MessagesRejected == rejected+3 })
	m.send(kvs.ClientMessage{Action: kvs.ActionSDPAnswer, RecipientClientID: offer.SenderClientID, MessagePayload: payload(t, kvs.SessionDescription{Type: "answer", SDP: "v=0\r\n"})})
	waitFor(t, "the session to end", func() bool { return e.Stats().Storage.Ended == 1 })
	if st := e.Stats().Storage; st.Refused != 0 {
		t.Errorf("Stats().Storage = %+v; a broken answer is not a media refusal", st)
	}
}

// TestStorageSessionPolicy: the storage calls are IAM actions of their own.
func TestStorageSessionPolicy(t *testing.T) {
	cfg := storageConfig(t)
	cfg.Policy = `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":"kinesisvideo:*","Resource":"*"},
		{"Effect":"Deny","Action":"kinesisvideo:JoinStorageSession","Resource":"*"}]}`
	e := start(t, cfg)
	arn, ep := storageChannel(t, e, "policy")
	connectMaster(t, e, arn)
	connectViewer(t, e, arn, "v")
	status, code, body := callStorage(t, ep, "joinStorageSession", map[string]string{"channelArn": arn})
	if status != http.StatusForbidden || code != "AccessDeniedException" || !strings.Contains(body["message"], "kinesisvideo:JoinStorageSession") {
		t.Errorf("JoinStorageSession denied: %d %s %v; want 403 AccessDeniedException naming the action", status, code, body)
	}
	if status, code, body := callStorage(t, ep, "joinStorageSessionAsViewer", map[string]string{"channelArn": arn, "clientId": "v"}); status != http.StatusOK {
		t.Errorf("JoinStorageSessionAsViewer allowed: %d %s %v", status, code, body)
	}
}
