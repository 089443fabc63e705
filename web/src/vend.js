// The one call this page makes for credentials: POST /v1/connections on the
// kvssign vending service, with a bearer token. The answer is a signed
// signaling URL (a bearer credential for its few minutes: it is never
// logged or shown whole) and the channel's ICE servers. No AWS key, secret
// or signing code is involved on this side.

export class VendError extends Error {}

// vendConnection asks the vending service at cfg.api for a connection to
// cfg.channel as cfg.role and returns it normalised:
// { url, endpoint, channelARN, region, clientId, iceServers, expiresAt }.
export async function vendConnection(cfg) {
  const body = { channel: cfg.channel, role: cfg.role };
  if (cfg.clientId) body.clientId = cfg.clientId;
  // The last URL was refused at the handshake: the channel may have been
  // deleted and created again, so the service should look it up afresh.
  if (cfg.refresh) body.refresh = true;
  const headers = { 'Content-Type': 'application/json', Accept: 'application/json' };
  if (cfg.token) headers.Authorization = `Bearer ${cfg.token}`;
  const api = cfg.api.replace(/\/+$/, '');
  let res;
  try {
    res = await fetch(`${api}/v1/connections`, {
      method: 'POST',
      headers,
      body: JSON.stringify(body),
      credentials: 'omit',
      cache: 'no-store',
      signal: AbortSignal.timeout(10000),
    });
  } catch (err) {
    throw new VendError(`vending service at ${api}: ${err.name === 'TimeoutError' ? 'no answer within 10 s' : 'unreachable'} (${err.message})`);
  }
  let data = null;
  try { data = await res.json(); } catch { /* reported below */ }
  if (!res.ok) {
    const e = data && (data.error || data);
    const what = e && (e.message || e.Message) ? `${e.code ? e.code + ': ' : ''}${e.message || e.Message}` : res.statusText;
    const retry = res.headers.get('Retry-After');
    throw new VendError(`vending service said ${res.status}: ${what}${retry ? ` (retry after ${retry} s)` : ''}`);
  }
  if (!data) throw new VendError(`vending service answered ${res.status} without JSON`);
  return normalise(data);
}

// checkAPI returns the base URL of the vending API the page may send its
// token to: api when its origin is the page's own or one of allowed (the
// origins listed in the page's kvssign-api-origins meta tag). Anything
// else is refused, since a crafted link could otherwise point the page,
// and the token the user types, at a host of the link's choosing.
export function checkAPI(api, pageOrigin, allowed) {
  let u;
  try { u = new URL(api); } catch { throw new VendError(`vending API ${JSON.stringify(api)}: not a URL`); }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new VendError(`vending API ${u.protocol}: must be https: (or http:)`);
  if (u.username || u.password || u.search || u.hash) throw new VendError('vending API: must be an origin and a path, with no user, query or fragment');
  if (u.origin !== pageOrigin && !allowed.includes(u.origin)) {
    throw new VendError(`vending API ${u.origin}: the page sends its token only to its own origin or to one listed in its kvssign-api-origins meta tag`);
  }
  return u.origin + u.pathname.replace(/\/+$/, '');
}

// normalise reads the vending answer. Only the URL is required: the channel
// ARN, client id, endpoint and region are in the signed URL itself, which
// keeps the page working with any server that vends a KVS URL.
export function normalise(d) {
  const raw = d.url || d.URL || d.signedURL || d.signedUrl;
  if (!raw) throw new VendError('vending service answer has no url');
  let u;
  try { u = new URL(raw); } catch { throw new VendError('vending service answer: url is not a URL'); }
  if (u.protocol !== 'wss:' && u.protocol !== 'ws:') throw new VendError(`vending service answer: url scheme ${u.protocol}: want wss: (or ws: for a local emulator)`);
  const q = u.searchParams;
  const channelARN = d.channelARN || d.channelArn || q.get('X-Amz-ChannelARN');
  if (!channelARN) throw new VendError('vending service answer: no channel ARN');
  const cred = (q.get('X-Amz-Credential') || '').split('/');
  const region = d.region || cred[2] || channelARN.split(':')[3];
  const endpoint = d.endpoint || d.wssEndpoint || `${u.protocol}//${u.host}${u.pathname === '/' ? '' : u.pathname}`;
  let expiresAt = null;
  if (d.expiresAt) expiresAt = new Date(d.expiresAt);
  else if (q.get('X-Amz-Date') && q.get('X-Amz-Expires')) {
    const m = q.get('X-Amz-Date').match(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/);
    if (m) expiresAt = new Date(Date.UTC(+m[1], m[2] - 1, +m[3], +m[4], +m[5], +m[6]) + 1000 * +q.get('X-Amz-Expires'));
  }
  return {
    url: raw,
    endpoint,
    channelARN,
    region,
    clientId: d.clientId || q.get('X-Amz-ClientId') || undefined,
    iceServers: iceServers(d.iceServers || d.IceServers || d.iceServerList || []),
    expiresAt,
  };
}

// iceServers accepts RTCIceServer objects ({urls, username, credential}) or
// the KVS GetIceServerConfig shape ({Uris, Username, Password}).
function iceServers(list) {
  return list.map((s) => ({
    urls: s.urls || s.Uris || s.uris || s.url,
    username: s.username ?? s.Username,
    credential: s.credential ?? s.Password ?? s.password,
  })).filter((s) => s.urls && s.urls.length);
}

// redactURL shows where a signed URL points and when it was signed, never
// its credential, token or signature.
export function redactURL(raw) {
  try {
    const u = new URL(raw);
    return `${u.protocol}//${u.host}${u.pathname} (signed ${u.searchParams.get('X-Amz-Date') || '?'}, valid ${u.searchParams.get('X-Amz-Expires') || '?'} s)`;
  } catch {
    return '(unparseable URL)';
  }
}
