// The kvssign browser demo: a KVS WebRTC master or viewer that holds no AWS
// credentials. It asks the kvssign vending API for a connection (a signed
// wss:// URL, the channel ARN and ICE servers) and hands the KVS JS SDK's
// SignalingClient a request signer that returns that URL instead of signing.
// Everything else (offer, answer, trickle ICE, data channel, video) is plain
// WebRTC, as in AWS's own browser sample.

import { SignalingClient, Role } from 'amazon-kinesis-video-streams-webrtc';
import { checkAPI, vendConnection, VendError, redactURL } from './vend.js';

const $ = (id) => document.getElementById(id);

// ---- what the page shows -------------------------------------------------

function setState(id, state, text) {
  const el = $(id);
  el.dataset.state = state;
  el.textContent = text ?? state;
}

function log(text, cls) {
  const li = document.createElement('li');
  li.textContent = `${new Date().toISOString().slice(11, 23)} ${text}`;
  if (cls) li.className = cls;
  const list = $('log');
  list.append(li);
  list.scrollTop = list.scrollHeight;
  (cls === 'error' ? console.error : console.log)('[kvssign-demo]', text);
}

function showError(text) {
  const el = $('error');
  el.hidden = false;
  el.textContent = text;
  log(text, 'error');
  window.kvsDemo.errors.push(text);
}

function clearError() {
  $('error').hidden = true;
  $('error').textContent = '';
}

function addMessage(direction, who, text) {
  const li = document.createElement('li');
  li.className = direction;
  li.textContent = `${who}: ${text}`;
  $('messages').append(li);
  window.kvsDemo.messages.push({ direction, who, text });
}

// window.kvsDemo is for people poking at the page from the console and for
// the end-to-end test; it never holds the signed URL or the token.
window.kvsDemo = { messages: [], errors: [], peers: new Map() };

// ---- settings: URL fragment, then the form ---------------------------------

// The fragment (#role=VIEWER&channel=demo&token=…) never reaches a server,
// which makes it the place for the vending token in a shareable link.
function readFragment() {
  const p = new URLSearchParams(location.hash.slice(1));
  const set = (id, key) => { if (p.has(key)) $(id).value = p.get(key); };
  set('channel', 'channel');
  set('client-id', 'clientId');
  set('token', 'token');
  set('api', 'api');
  if (p.has('video')) $('send-video').checked = p.get('video') !== '0';
  const role = (p.get('role') || '').toUpperCase();
  if (role === 'MASTER' || role === 'VIEWER') $('role').value = role;
  return p.get('autoconnect') === '1';
}

// allowedAPIOrigins lists the origins besides the page's own that may
// receive the token, from <meta name="kvssign-api-origins">: set by whoever
// serves the page, never by a link.
function allowedAPIOrigins() {
  const m = document.querySelector('meta[name="kvssign-api-origins"]');
  return (m?.content || '').split(/[\s,]+/).filter(Boolean);
}

function settings() {
  const role = $('role').value;
  // A viewer with no client id of its own gets the one the vending service
  // binds to its token; the signed URL says which.
  const clientId = $('client-id').value.trim();
  return {
    role,
    channel: $('channel').value.trim(),
    clientId: role === 'VIEWER' && clientId ? clientId : undefined,
    token: $('token').value,
    api: $('api').value.trim() || location.origin,
    sendVideo: $('send-video').checked,
  };
}

// ---- the session -----------------------------------------------------------

let session = null;
// refused is set when the last session's signaling closed without ever
// opening (a refused handshake): the next request asks for a refresh.
let refused = false;

function resetStates() {
  setState('st-vend', 'idle');
  setState('st-signaling', 'closed');
  setState('st-pc', 'none');
  setState('st-ice', 'none');
  setState('st-dc', 'none');
  setState('st-video', 'none');
  $('st-expires').textContent = '-';
}

async function connect() {
  if (session) disconnect(false);
  resetStates();
  clearError();
  const cfg = settings();
  if (!cfg.channel) {
    showError('channel: enter the name of a signaling channel');
    return;
  }
  try {
    cfg.api = checkAPI(cfg.api, location.origin, allowedAPIOrigins());
  } catch (err) {
    showError(err.message);
    return;
  }
  $('connect').disabled = true;
  $('disconnect').disabled = false;
  $('role-badge').textContent = cfg.role;
  $('role-badge').className = 'badge ' + cfg.role;
  const s = { cfg, closed: false, signaling: null, localStream: null, peers: new Map() };
  session = s;
  try {
    setState('st-vend', 'requesting', 'requesting…');
    const conn = await vendConnection({ ...cfg, refresh: refused });
    refused = false;
    if (s.closed) return;
    setState('st-vend', 'ok', `ok (channel ${conn.channelARN.split('/')[1] || cfg.channel})`);
    $('st-expires').textContent = conn.expiresAt ? conn.expiresAt.toISOString() : 'unknown';
    log(`vended ${cfg.role} URL for ${redactURL(conn.url)}; ${conn.iceServers.length} ICE server(s)`);
    s.conn = conn;
    if (cfg.role === 'VIEWER') {
      cfg.clientId = conn.clientId || cfg.clientId;
      $('role-badge').textContent = `VIEWER ${cfg.clientId}`;
    }
    if (cfg.sendVideo) s.localStream = await openCamera();
    if (s.closed) return;
    openSignaling(s, conn);
  } catch (err) {
    setState('st-vend', 'error', 'failed');
    showError(err instanceof VendError ? err.message : `connect: ${err.message || err}`);
    disconnect(false);
  }
}

async function openCamera() {
  if (!navigator.mediaDevices?.getUserMedia) {
    log('no camera API in this browser; continuing with the data channel only');
    return null;
  }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
    $('local-video').srcObject = stream;
    log('camera on: ' + stream.getVideoTracks().map((t) => t.label || 'video').join(', '));
    return stream;
  } catch (err) {
    log(`no camera (${err.name}: ${err.message}); continuing with the data channel only`);
    return null;
  }
}

function openSignaling(s, conn) {
  const { cfg } = s;
  // The SDK asks this signer for a URL each time it opens. The first time it
  // gets the URL vended a moment ago; after that it asks the vending service
  // again, since a signed URL lives about five minutes.
  let fresh = conn.url;
  const requestSigner = {
    getSignedURL: async () => {
      if (fresh) { const u = fresh; fresh = null; return u; }
      const c = await vendConnection(cfg);
      return c.url;
    },
  };
  const signaling = new SignalingClient({
    channelARN: conn.channelARN,
    channelEndpoint: conn.endpoint,
    region: conn.region,
    role: cfg.role === 'MASTER' ? Role.MASTER : Role.VIEWER,
    clientId: cfg.role === 'VIEWER' ? (conn.clientId || cfg.clientId) : undefined,
    requestSigner,
  });
  s.signaling = signaling;
  setState('st-signaling', 'connecting', 'connecting…');

  signaling.on('open', async () => {
    s.opened = true;
    setState('st-signaling', 'open', `open as ${cfg.role}`);
    log(`signaling open (${conn.endpoint})`);
    if (cfg.role === 'VIEWER') {
      try { await startViewer(s); } catch (err) { showError(`viewer: ${err.message || err}`); }
    } else {
      log('waiting for a viewer’s offer');
    }
  });
  signaling.on('sdpOffer', async (offer, remoteId) => {
    if (cfg.role !== 'MASTER') return;
    try { await answerViewer(s, offer, remoteId); } catch (err) { showError(`answer ${remoteId}: ${err.message || err}`); }
  });
  signaling.on('sdpAnswer', async (answer) => {
    if (cfg.role !== 'VIEWER') return;
    const peer = s.peers.get('MASTER');
    if (!peer) return;
    log('SDP answer received');
    try { await peer.pc.setRemoteDescription(answer); } catch (err) { showError(`set answer: ${err.message || err}`); }
  });
  signaling.on('iceCandidate', async (candidate, remoteId) => {
    const peer = s.peers.get(cfg.role === 'MASTER' ? remoteId : 'MASTER');
    if (!peer) return;
    try { await peer.pc.addIceCandidate(candidate); } catch (err) { log(`ICE candidate refused: ${err.message || err}`, 'error'); }
  });
  signaling.on('statusResponse', (st) => {
    showError(`signaling said ${st.statusCode} ${st.errorType}: ${st.description || ''}`);
  });
  signaling.on('error', (err) => {
    // A WebSocket error event carries no detail in browsers. A refused
    // handshake (403: expired or bad signature, 404: unknown channel) shows
    // up here followed by a close.
    const msg = err && err.message ? err.message : 'the WebSocket failed (the browser gives no detail: a refused handshake, 403 expired or bad signature, 404 unknown channel, or the endpoint is unreachable)';
    showError(`signaling error: ${msg}`);
  });
  signaling.on('close', () => {
    if (!s.closed && !s.opened) refused = true;
    setState('st-signaling', s.closed ? 'closed' : 'closed-error', s.closed ? 'closed' : 'closed by the service');
    log('signaling closed');
    // Peer connections that are up keep working without signaling; Connect
    // starts over with a fresh URL.
    if (!s.closed) $('connect').disabled = false;
  });
  signaling.open();
}

function newPeer(s, remoteId) {
  const pc = new RTCPeerConnection({ iceServers: s.conn.iceServers, iceTransportPolicy: 'all' });
  const peer = { id: remoteId, pc, dc: null };
  s.peers.set(remoteId, peer);
  window.kvsDemo.peers.set(remoteId, { get connectionState() { return pc.connectionState; } });
  const label = s.cfg.role === 'MASTER' ? `viewer ${remoteId}` : 'master';
  // Events of a peer that has been replaced (a viewer that offered again,
  // a reconnect) no longer change what the page shows.
  peer.live = () => session === s && s.peers.get(remoteId) === peer;
  setState('st-pc', pc.connectionState);
  setState('st-ice', pc.iceConnectionState);
  pc.addEventListener('connectionstatechange', () => {
    if (!peer.live()) return;
    setState('st-pc', pc.connectionState, `${pc.connectionState} (${label})`);
    log(`peer connection with ${label}: ${pc.connectionState}`, pc.connectionState === 'failed' ? 'error' : undefined);
    if (pc.connectionState === 'failed') showError(`peer connection with ${label} failed: no ICE candidate pair worked (check the ICE servers and the network)`);
  });
  pc.addEventListener('iceconnectionstatechange', () => { if (peer.live()) setState('st-ice', pc.iceConnectionState); });
  pc.addEventListener('icecandidate', ({ candidate }) => {
    if (!candidate) { log('ICE gathering complete'); return; }
    try {
      if (s.cfg.role === 'MASTER') s.signaling.sendIceCandidate(candidate, remoteId);
      else s.signaling.sendIceCandidate(candidate);
    } catch (err) { log(`could not send ICE candidate: ${err.message}`, 'error'); }
  });
  pc.addEventListener('track', (ev) => {
    if (!peer.live()) return;
    const v = $('remote-video');
    v.srcObject = ev.streams[0] || new MediaStream([ev.track]);
    setState('st-video', 'receiving', `receiving ${ev.track.kind} from ${label}`);
  });
  pc.addEventListener('datachannel', (ev) => wireChannel(peer, ev.channel, label));
  if (s.localStream) {
    for (const t of s.localStream.getTracks()) pc.addTrack(t, s.localStream);
  }
  return peer;
}

function wireChannel(peer, dc, label) {
  peer.dc = dc;
  setState('st-dc', dc.readyState, `${dc.readyState} (${dc.label})`);
  dc.addEventListener('open', () => {
    if (!peer.live()) return;
    setState('st-dc', 'open', `open (${dc.label} with ${label})`);
    log(`data channel open with ${label}`);
    $('message').disabled = false;
    $('send').disabled = false;
  });
  dc.addEventListener('close', () => {
    if (!peer.live()) return;
    setState('st-dc', 'closed', `closed (${dc.label})`);
    log(`data channel with ${label} closed`);
  });
  dc.addEventListener('message', (ev) => addMessage('in', label, String(ev.data)));
}

async function startViewer(s) {
  const peer = newPeer(s, 'MASTER');
  wireChannel(peer, peer.pc.createDataChannel('kvsDataChannel'), 'master');
  if (!s.localStream) peer.pc.addTransceiver('video', { direction: 'recvonly' });
  const offer = await peer.pc.createOffer();
  await peer.pc.setLocalDescription(offer);
  s.signaling.sendSdpOffer(peer.pc.localDescription);
  log('SDP offer sent to the master');
}

async function answerViewer(s, offer, remoteId) {
  log(`SDP offer from viewer ${remoteId}`);
  const old = s.peers.get(remoteId);
  if (old) old.pc.close();
  const peer = newPeer(s, remoteId);
  await peer.pc.setRemoteDescription(offer);
  const answer = await peer.pc.createAnswer();
  await peer.pc.setLocalDescription(answer);
  s.signaling.sendSdpAnswer(peer.pc.localDescription, remoteId);
  log(`SDP answer sent to viewer ${remoteId}`);
}

function disconnect(byUser = true) {
  const s = session;
  session = null;
  if (s) {
    s.closed = true;
    for (const p of s.peers.values()) p.pc.close();
    if (s.signaling) s.signaling.close();
    if (s.localStream) for (const t of s.localStream.getTracks()) t.stop();
    if (byUser) log('disconnected');
  }
  $('connect').disabled = false;
  $('disconnect').disabled = true;
  $('message').disabled = true;
  $('send').disabled = true;
  if (byUser) resetStates();
}

function send(text) {
  if (!session) return;
  let sent = 0;
  for (const p of session.peers.values()) {
    if (p.dc && p.dc.readyState === 'open') { p.dc.send(text); sent++; }
  }
  if (sent === 0) { showError('send: no data channel is open'); return; }
  addMessage('out', 'me', text);
}

// ---- wiring ---------------------------------------------------------------

$('connect-form').addEventListener('submit', (ev) => { ev.preventDefault(); connect(); });
$('disconnect').addEventListener('click', () => disconnect(true));
$('send-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const text = $('message').value;
  if (!text) return;
  send(text);
  $('message').value = '';
});
const rv = $('remote-video');
const showVideo = () => {
  if (rv.videoWidth > 0) setState('st-video', 'playing', `playing ${rv.videoWidth}×${rv.videoHeight}`);
};
rv.addEventListener('playing', showVideo);
rv.addEventListener('resize', showVideo);
window.addEventListener('error', (ev) => showError(`page error: ${ev.message}`));
window.addEventListener('unhandledrejection', (ev) => showError(`page error: ${ev.reason?.message || ev.reason}`));

if (readFragment()) connect();
