import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ChannelNamespaces, ChannelsConfigError, parseDuration } from '../core/channels/namespaces.js';
import type { CentrifugoProxySettings } from '../extensions/proxy/proxies.js';
import { ProxyConfigError, proxySettings, type ProxyDef, type ProxyDefs } from '../extensions/proxy/settings.js';
import { centrifugoEnv } from './centrifugo-env.js';
import { readV5, readV6, type Reader } from './centrifugo-shapes.js';

/**
 * What the server takes from a Centrifugo `config.json` (`CENTRIFUGO_CONFIG`)
 * and Centrifugo's environment variables: token keys, allowed origins,
 * namespaces, proxies, the server API key, client limits; and the names of
 * every option it ignores.
 */
export interface CentrifugoSettings {
  /** The file, when there is one. */
  path: string | undefined;
  /** The file's shape: v5 (flat) or v6 (`client`, `channel`, ... sections). */
  version: 5 | 6;
  token: { secret?: string; publicKey?: string; jwksUrl?: string; issuer?: string; audience?: string };
  /** The setting that gave the token key (for messages). */
  tokenSource: string | undefined;
  apiKey: string | undefined;
  /** undefined: not set; `'any'`: `*`. */
  allowedOrigins: string[] | 'any' | undefined;
  limits: Partial<Record<LimitName, number>>;
  /** The namespaces (undefined when neither the file nor the environment has any channel options). */
  namespaces: ChannelNamespaces | undefined;
  proxies: CentrifugoProxySettings | undefined;
  /** Every option set and ignored, by name, with why. */
  ignored: string[];
}

export type LimitName = 'pingIntervalMs' | 'pongTimeoutMs' | 'staleCloseDelayMs' | 'expiredCloseDelayMs' | 'maxChannelsPerConnection' | 'maxOutboundBytes' | 'historyMaxLimit' | 'maxMessageBytes';

/** What the shape readers give: the raw values with the option names they came from. */
export interface RawSettings {
  token: Partial<Record<'hmac_secret_key' | 'rsa_public_key' | 'ecdsa_public_key' | 'jwks_public_endpoint' | 'issuer' | 'audience', { value: unknown; name: string }>>;
  apiKey?: { value: unknown; name: string } | undefined;
  allowedOrigins?: { value: unknown; name: string } | undefined;
  limits: Partial<Record<LimitName, { value: unknown; name: string }>>;
  /** `{ channel: { without_namespace, namespaces, history_meta_ttl } }` for ChannelNamespaces.fromConfig, or undefined. */
  channel: Record<string, unknown> | undefined;
  proxies: ProxyDefs;
}

/** A file or setting the server cannot start with; the message names the file and the problem. */
export class CentrifugoConfigError extends Error {
  override readonly name = 'CentrifugoConfigError';
}

const DURATIONS: ReadonlySet<LimitName> = new Set(['pingIntervalMs', 'pongTimeoutMs', 'staleCloseDelayMs', 'expiredCloseDelayMs']);

function str(v: { value: unknown; name: string } | undefined): string | undefined {
  if (v === undefined || v.value === undefined || v.value === null || v.value === '') return undefined;
  if (typeof v.value !== 'string') throw new CentrifugoConfigError(`${v.name} must be a string`);
  return v.value;
}

function origins(v: { value: unknown; name: string }, ignored: string[]): string[] | 'any' | undefined {
  const list = typeof v.value === 'string' ? v.value.split(/\s+/).filter(Boolean) : v.value;
  if (!Array.isArray(list) || list.some((o) => typeof o !== 'string')) throw new CentrifugoConfigError(`${v.name} must be a list of origins`);
  if (list.length === 0) return undefined;
  if (list.includes('*')) return 'any';
  const out: string[] = [];
  for (const entry of list as string[]) {
    const o = entry.replace(/\/$/, '');
    if (o.includes('*')) {
      ignored.push(`${v.name} entry '${entry}' (patterns are not supported: list the origins, or '*'; browsers from it are refused)`);
      continue;
    }
    let ok = false;
    try {
      const u = new URL(o);
      ok = (u.protocol === 'http:' || u.protocol === 'https:') && u.origin === o;
    } catch {
      ok = false;
    }
    if (!ok) throw new CentrifugoConfigError(`${v.name}: '${entry}' is not an origin like https://app.example.com`);
    out.push(o);
  }
  return out;
}

function limit(name: LimitName, v: { value: unknown; name: string }): number {
  if (DURATIONS.has(name)) {
    if (v.value === -1 || v.value === '-1') return 0;
    if (typeof v.value !== 'string' && typeof v.value !== 'number') throw new CentrifugoConfigError(`${v.name} must be a duration such as "25s"`);
    try {
      return parseDuration(typeof v.value === 'string' && /^\d+(\.\d+)?$/.test(v.value) ? Number(v.value) : v.value, v.name);
    } catch (err) {
      throw new CentrifugoConfigError((err as Error).message);
    }
  }
  const n = typeof v.value === 'string' ? Number(v.value) : v.value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw new CentrifugoConfigError(`${v.name} must be an integer >= 0 (got ${JSON.stringify(v.value)})`);
  return n;
}

/** Reads the file: a missing file or one that is not a JSON object stops the start. */
function readFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CentrifugoConfigError(`CENTRIFUGO_CONFIG=${path} cannot be read: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new CentrifugoConfigError(`CENTRIFUGO_CONFIG=${path} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new CentrifugoConfigError(`CENTRIFUGO_CONFIG=${path} must hold a JSON object (Centrifugo's config.json)`);
  return json as Record<string, unknown>;
}

/** v6 when the file has v6's sections; v5 (flat keys) otherwise. */
function isV6(json: Record<string, unknown>): boolean {
  const section = (k: string): boolean => typeof json[k] === 'object' && json[k] !== null && !Array.isArray(json[k]);
  return ['client', 'channel', 'http_api', 'rpc', 'websocket', 'engine', 'http_server', 'log'].some(section);
}

/**
 * Centrifugo's settings from `CENTRIFUGO_CONFIG` (v5 or v6 `config.json`)
 * and Centrifugo's environment variables (which win over the file, as in
 * Centrifugo); undefined when neither is there. Throws a
 * {@link CentrifugoConfigError} naming the file (or variable) and the
 * problem.
 */
export function loadCentrifugoSettings(env: NodeJS.ProcessEnv): CentrifugoSettings | undefined {
  const path = env['CENTRIFUGO_CONFIG']?.trim() || undefined;
  const fromEnv = centrifugoEnv(env);
  if (path === undefined && !fromEnv.any) return undefined;
  const json = path === undefined ? {} : readFile(path);
  const where = path === undefined ? 'Centrifugo environment' : `CENTRIFUGO_CONFIG=${path}`;
  const version = path !== undefined && !isV6(json) ? 5 : 6;
  const ignored: string[] = [];
  let raw: RawSettings;
  let reader: Reader;
  try {
    ({ raw, reader } = version === 6 ? readV6(json) : readV5(json));
    fromEnv.apply(raw, version);
  } catch (err) {
    if (err instanceof CentrifugoConfigError || err instanceof ProxyConfigError) throw new CentrifugoConfigError(`${where}: ${err.message}`);
    throw err;
  }
  for (const name of reader.unread()) ignored.push(name);
  try {
    const token: CentrifugoSettings['token'] = {};
    const keys = (['hmac_secret_key', 'rsa_public_key', 'ecdsa_public_key', 'jwks_public_endpoint'] as const).filter((k) => str(raw.token[k]) !== undefined);
    if (keys.length > 1) throw new CentrifugoConfigError(`set only one of ${keys.map((k) => raw.token[k]!.name).join(', ')}: this server verifies tokens with one key`);
    let tokenSource: string | undefined;
    const secret = str(raw.token.hmac_secret_key);
    if (secret !== undefined) {
      if (Buffer.byteLength(secret) < 32) throw new CentrifugoConfigError(`${raw.token.hmac_secret_key!.name} must be at least 32 bytes (a shorter HMAC key is refused here)`);
      token.secret = secret;
      tokenSource = raw.token.hmac_secret_key!.name;
    }
    for (const k of ['rsa_public_key', 'ecdsa_public_key'] as const) {
      const pem = str(raw.token[k]);
      if (pem === undefined) continue;
      try {
        createPublicKey(pem.replace(/\\n/g, '\n'));
      } catch (err) {
        throw new CentrifugoConfigError(`${raw.token[k]!.name} is not a PEM public key: ${(err as Error).message}`);
      }
      token.publicKey = pem;
      tokenSource = raw.token[k]!.name;
    }
    const jwks = str(raw.token.jwks_public_endpoint);
    if (jwks !== undefined) {
      if (!/^https?:\/\//.test(jwks)) throw new CentrifugoConfigError(`${raw.token.jwks_public_endpoint!.name} must be an http(s) URL (templated endpoints are not supported)`);
      token.jwksUrl = jwks;
      tokenSource = raw.token.jwks_public_endpoint!.name;
    }
    const issuer = str(raw.token.issuer);
    if (issuer !== undefined) token.issuer = issuer;
    const audience = str(raw.token.audience);
    if (audience !== undefined) token.audience = audience;
    const apiKey = str(raw.apiKey);
    if (apiKey !== undefined && !/^[\x21-\x7e]{16,256}$/.test(apiKey)) throw new CentrifugoConfigError(`${raw.apiKey!.name} must be 16-256 printable ASCII characters without spaces (as API_KEY)`);
    const limits: CentrifugoSettings['limits'] = {};
    for (const [k, v] of Object.entries(raw.limits) as Array<[LimitName, { value: unknown; name: string }]>) if (v.value !== undefined && v.value !== null) limits[k] = limit(k, v);
    let namespaces: ChannelNamespaces | undefined;
    if (raw.channel) {
      try {
        namespaces = ChannelNamespaces.fromConfig(raw.channel);
      } catch (err) {
        if (err instanceof ChannelsConfigError) throw new CentrifugoConfigError(`channel options: ${err.message}`);
        throw err;
      }
      ignored.push(...namespaces.warnings);
    }
    const proxies = proxySettings(raw.proxies, namespaces ?? ChannelNamespaces.defaults());
    return {
      path,
      version,
      token,
      tokenSource,
      apiKey,
      allowedOrigins: raw.allowedOrigins ? origins(raw.allowedOrigins, ignored) : undefined,
      limits,
      namespaces,
      proxies,
      ignored,
    };
  } catch (err) {
    if (err instanceof CentrifugoConfigError || err instanceof ProxyConfigError) throw new CentrifugoConfigError(`${where}: ${err.message}`);
    throw err;
  }
}

export type { ProxyDef };

/** The part of the server's Config that a Centrifugo config feeds (see config.ts). */
export interface CentrifugoConfigTarget {
  auth: { secret?: string | undefined; publicKey?: string | undefined; jwksUrl?: string | undefined; issuer?: string | undefined; audience?: string | undefined };
  authMode: 'jwt' | 'open';
  apiKey: string | undefined;
  allowedOrigins: string[] | undefined;
  channels: { configPath: string | undefined; namespaces: ChannelNamespaces | undefined; maxChannelsPerSocket: number };
  centrifugo: Record<LimitName, number>;
}

/** Env variables of the server whose value wins over the Centrifugo config for each limit. */
const LIMIT_ENV: Record<LimitName, string> = {
  pingIntervalMs: 'CENTRIFUGO_CLIENT_PING_INTERVAL',
  pongTimeoutMs: 'CENTRIFUGO_CLIENT_PONG_TIMEOUT',
  staleCloseDelayMs: 'CENTRIFUGO_CLIENT_STALE_CLOSE_DELAY',
  expiredCloseDelayMs: 'CENTRIFUGO_CLIENT_EXPIRED_CLOSE_DELAY',
  maxChannelsPerConnection: 'CENTRIFUGO_CLIENT_CHANNEL_LIMIT',
  maxOutboundBytes: 'CENTRIFUGO_CLIENT_QUEUE_MAX_SIZE',
  historyMaxLimit: 'CENTRIFUGO_CLIENT_HISTORY_MAX_PUBLICATION_LIMIT',
  maxMessageBytes: 'CENTRIFUGO_WEBSOCKET_MESSAGE_SIZE_LIMIT',
};

/**
 * Lays Centrifugo's settings over the server's: the token keys (one setting
 * for every transport: Socket.IO, REST writes and Centrifugo then need
 * tokens), `http_api.key` as `API_KEY`, allowed origins, namespaces, client
 * limits. The server's own variables (`AUTH_JWT_*`, `API_KEY`,
 * `ALLOWED_ORIGINS`, `CHANNELS_CONFIG`, `CENTRIFUGO_CLIENT_*`) win; a token
 * key in both places is a problem (which one would be meant?). Returns the
 * problems, each naming the settings.
 */
export function applyCentrifugoSettings(c: CentrifugoConfigTarget, s: CentrifugoSettings, env: NodeJS.ProcessEnv): string[] {
  const problems: string[] = [];
  const set = (name: string): boolean => (env[name] ?? '').trim() !== '';
  const ownKey = ['AUTH_JWT_SECRET', 'AUTH_JWT_PUBLIC_KEY', 'AUTH_JWKS_URL'].find(set);
  if (s.tokenSource !== undefined) {
    if (ownKey) problems.push(`set either ${ownKey} or ${s.tokenSource} (Centrifugo's token key), not both: the server verifies tokens with one key`);
    else {
      c.auth = { ...c.auth, secret: s.token.secret, publicKey: s.token.publicKey, jwksUrl: s.token.jwksUrl };
      c.authMode = 'jwt';
    }
  }
  if (s.token.issuer !== undefined && !set('AUTH_JWT_ISSUER')) c.auth.issuer = s.token.issuer;
  if (s.token.audience !== undefined && !set('AUTH_JWT_AUDIENCE')) c.auth.audience = s.token.audience;
  if (s.apiKey !== undefined && c.apiKey === undefined) c.apiKey = s.apiKey;
  if (s.allowedOrigins !== undefined && !set('ALLOWED_ORIGINS')) c.allowedOrigins = s.allowedOrigins === 'any' ? undefined : s.allowedOrigins;
  for (const [k, v] of Object.entries(s.limits) as Array<[LimitName, number]>) if (!set(LIMIT_ENV[k])) c.centrifugo[k] = v;
  if (s.namespaces) {
    if (c.channels.configPath !== undefined) problems.push(`set either CHANNELS_CONFIG or CENTRIFUGO_CONFIG's channel options (namespaces), not both`);
    else c.channels.namespaces = s.namespaces;
  }
  return problems;
}
