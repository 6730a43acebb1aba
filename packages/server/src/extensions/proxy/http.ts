import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { z } from 'zod';

/**
 * One HTTP callback endpoint in Centrifugo's terms (a `proxies[]` entry, or
 * `client.proxy.connect`, `channel.proxy.subscribe`, ... of a config.json).
 */
export interface ProxyEndpoint {
  /** `default` for the unnamed proxies; the `proxies[].name` otherwise. */
  name: string;
  /** `http://` or `https://` URL the request is POSTed to. */
  endpoint: string;
  /** Centrifugo's `timeout`. @default 1000 */
  timeoutMs: number;
  /** Transport headers of the client's HTTP upgrade request to forward (lowercase names; `http_headers`). */
  httpHeaders: readonly string[];
  /** Headers from the client's connect `headers` (headers emulation) to forward (lowercase names; `emulated_headers`). */
  emulatedHeaders: readonly string[];
  /** Headers sent with every request, lowest priority (`http.static_headers`). */
  staticHeaders: Readonly<Record<string, string>>;
  /** Adds the connection's `meta` to every request but connect (`include_connection_meta`). */
  includeConnectionMeta: boolean;
  /** `data` travels as `b64data` (base64 of the JSON text) and `encoding` is `binary` (`binary_encoding`). */
  binaryEncoding: boolean;
}

/** What a proxy may answer: `{ result }`, `{ error }` or `{ disconnect }` (Centrifugo checks disconnect, then error). */
export interface ProxyReply {
  result?: Record<string, unknown> | undefined;
  error?: { code: number; message: string; temporary?: boolean | undefined } | undefined;
  disconnect?: { code: number; reason: string } | undefined;
}

/** The call failed (transport error, timeout, a status other than 200, a body that is not the envelope): Centrifugo's "internal error" case. */
export class ProxyCallError extends Error {
  override readonly name = 'ProxyCallError';
}

const uint32 = z.number().int().min(0).max(4_294_967_295);
const EnvelopeSchema = z.union([
  z.null(),
  z
    .object({
      // The result's fields are checked by each proxy kind; here it must be an object (or null: no result).
      result: z.record(z.string(), z.unknown()).nullish(),
      error: z.object({ code: uint32, message: z.string().optional(), temporary: z.boolean().optional() }).loose().nullish(),
      disconnect: z.object({ code: uint32, reason: z.string().optional() }).loose().nullish(),
    })
    .loose(),
]);

/** Largest response body read; a larger one is a failed call. */
const MAX_BODY_BYTES = 4 * 1_048_576;
const agents = { http: new HttpAgent({ keepAlive: true, maxSockets: 256 }), https: new HttpsAgent({ keepAlive: true, maxSockets: 256 }) };

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(', ') : v;
}

/**
 * The headers of a proxy request, as Centrifugo builds them: static headers
 * first, then allow-listed emulated headers (client-controlled), then
 * allow-listed transport headers (they win), and `Content-Type:
 * application/json` always. Nothing is forwarded unless listed.
 */
export function proxyHeaders(p: ProxyEndpoint, transportHeaders: IncomingHttpHeaders, emulated: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  const set = (name: string, value: string): void => {
    for (const k of Object.keys(out)) if (k.toLowerCase() === name.toLowerCase()) delete out[k];
    out[name] = value;
  };
  for (const [k, v] of Object.entries(p.staticHeaders)) set(k, v);
  for (const [k, v] of Object.entries(emulated)) if (p.emulatedHeaders.includes(k.toLowerCase()) && typeof v === 'string') set(k, v);
  for (const name of p.httpHeaders) {
    const v = headerValue(transportHeaders[name]);
    if (v !== undefined) set(name, v);
  }
  set('Content-Type', 'application/json');
  return out;
}

/**
 * POSTs `body` as JSON to the endpoint and returns its envelope. Rejects
 * with a {@link ProxyCallError} on a transport error, the timeout, a status
 * other than 200, or a body that is not JSON in the envelope's shape (a
 * JSON `null` or `{}` is an empty envelope, as Go's decoder reads it).
 */
export function callProxy(p: ProxyEndpoint, body: unknown, headers: Record<string, string>): Promise<ProxyReply> {
  const payload = Buffer.from(JSON.stringify(body));
  return new Promise<ProxyReply>((resolve, reject) => {
    let done = false;
    const finish = (err: Error | undefined, reply?: ProxyReply): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(reply!);
    };
    let url: URL;
    try {
      url = new URL(p.endpoint);
    } catch {
      finish(new ProxyCallError(`proxy endpoint ${p.endpoint} is not a URL`));
      return;
    }
    const https = url.protocol === 'https:';
    const req = (https ? httpsRequest : httpRequest)(url, { method: 'POST', headers: { ...headers, 'Content-Length': String(payload.length) }, agent: https ? agents.https : agents.http }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        finish(new ProxyCallError(`unexpected HTTP status code: ${res.statusCode ?? 0}`));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BODY_BYTES) {
          res.destroy();
          finish(new ProxyCallError(`response body larger than ${MAX_BODY_BYTES} bytes`));
          return;
        }
        chunks.push(c);
      });
      res.on('error', (err) => finish(new ProxyCallError(`error reading HTTP body: ${err.message}`)));
      res.on('end', () => {
        let json: unknown;
        try {
          json = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch (err) {
          finish(new ProxyCallError(`response is not JSON: ${(err as Error).message}`));
          return;
        }
        const env = EnvelopeSchema.safeParse(json);
        if (!env.success) {
          const issue = env.error.issues[0];
          finish(new ProxyCallError(`response is not {result|error|disconnect}: ${issue ? `${issue.path.join('.')}: ${issue.message}` : 'bad shape'}`));
          return;
        }
        const e = env.data ?? {};
        finish(undefined, {
          result: e.result ?? undefined,
          error: e.error ? { code: e.error.code, message: e.error.message ?? '', temporary: e.error.temporary } : undefined,
          disconnect: e.disconnect ? { code: e.disconnect.code, reason: e.disconnect.reason ?? '' } : undefined,
        });
      });
    });
    const timer = setTimeout(() => {
      req.destroy();
      finish(new ProxyCallError(`no answer within ${p.timeoutMs} ms`));
    }, p.timeoutMs);
    timer.unref();
    req.on('error', (err) => finish(new ProxyCallError(`HTTP request error: ${err.message}`)));
    req.end(payload);
  });
}
