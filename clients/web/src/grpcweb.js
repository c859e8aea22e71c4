// gRPC-web over fetch (application/grpc-web+proto): unary calls and server streams.

const SERVICE = 'upload.v1.UploadService';
/** The item service's path, for `Api.unary(`${ITEMS}/SubmitItem`, …)`. */
export const ITEMS = 'upload.v1.ItemService';

/** A gRPC error with the server's status code and message. */
export class RpcError extends Error {
  constructor(code, message) {
    super(message || `gRPC status ${code}`);
    this.code = code;
  }
}

function frame(bytes) {
  const out = new Uint8Array(5 + bytes.length);
  new DataView(out.buffer).setUint32(1, bytes.length);
  out.set(bytes, 5);
  return out;
}

function trailerStatus(text) {
  const headers = new Map();
  for (const line of text.split('\r\n')) {
    const at = line.indexOf(':');
    if (at > 0) headers.set(line.slice(0, at).trim().toLowerCase(), line.slice(at + 1).trim());
  }
  return headers;
}

function check(status, message) {
  if (status !== null && status !== undefined && status !== '0') {
    throw new RpcError(Number(status), decodeURIComponent(message || ''));
  }
}

/** Reads frames from a response body as they arrive, calling onMessage for each. */
async function readFrames(res, onMessage) {
  check(res.headers.get('grpc-status'), res.headers.get('grpc-message'));
  const reader = res.body.getReader();
  let buf = new Uint8Array(0);
  let ended = false;
  for (;;) {
    const { done, value } = await reader.read();
    if (value) {
      const joined = new Uint8Array(buf.length + value.length);
      joined.set(buf); joined.set(value, buf.length);
      buf = joined;
    }
    while (buf.length >= 5) {
      const len = new DataView(buf.buffer, buf.byteOffset).getUint32(1);
      if (buf.length < 5 + len) break;
      const flag = buf[0];
      const payload = buf.slice(5, 5 + len);
      buf = buf.slice(5 + len);
      if (flag & 0x80) {
        const t = trailerStatus(new TextDecoder().decode(payload));
        check(t.get('grpc-status'), t.get('grpc-message'));
        ended = true;
      } else {
        onMessage(payload);
      }
    }
    if (done) break;
  }
  if (!ended && !res.headers.get('grpc-status')) throw new RpcError(14, 'the stream ended early');
}

/** A client for one server address and bearer token. */
export class Api {
  constructor(endpoint, token) {
    this.endpoint = endpoint.replace(/\/$/, '');
    this.token = token;
  }

  async fetch(method, body, signal) {
    let res;
    try {
      // `Method` is the upload service's; `Service/Method` names another.
      const path = method.includes('/') ? method : `${SERVICE}/${method}`;
      res = await fetch(`${this.endpoint}/${path}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/grpc-web+proto',
          'x-grpc-web': '1',
          authorization: `Bearer ${this.token}`,
        },
        body: frame(body),
        signal,
      });
    } catch (e) {
      throw new RpcError(14, `cannot reach the upload server: ${e.message}`);
    }
    if (!res.ok) throw new RpcError(14, `the upload server answered HTTP ${res.status}`);
    return res;
  }

  /** A unary call: the one response message's bytes. */
  async unary(method, body) {
    const res = await this.fetch(method, body);
    let out = null;
    await readFrames(res, (m) => { out = m; });
    if (out === null) throw new RpcError(13, `${method} returned no message`);
    return out;
  }

  /** A server stream: onMessage for each message, resolves when the stream ends. */
  async stream(method, body, onMessage, signal) {
    const res = await this.fetch(method, body, signal);
    await readFrames(res, onMessage);
  }
}
