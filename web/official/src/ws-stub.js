// Stands in for the ws package, the KVS SDK's fallback when there is no
// WebSocket global. A browser always has one, so nothing reaches this.
export default function NoWebSocket() {
  throw new Error('official-client page: the ws package is not bundled; the browser has WebSocket');
}
