import { createPublicKey, type KeyObject } from 'node:crypto';
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { JsonValue } from 'realtime-message-protocol';
import { z } from 'zod';
import type { JwtAuthOptions } from '../../extensions/jwt.js';

/**
 * Centrifugo's connection and subscription JWTs, verified with the server's
 * token keys (the `AUTH_JWT_*` settings every transport shares): HS256/384/512
 * for a secret, RS256/384/512 or ES256/384/512 (by the key's type and curve)
 * or EdDSA for a public key, and any of those for a JWKS. `alg: none` and
 * every other algorithm are refused.
 */

/** Why a token was refused: `expired` (Centrifugo 109 / 3005 / 2501) or `invalid` (3500 / 103). */
export class TokenError extends Error {
  override readonly name = 'TokenError';
  constructor(
    readonly kind: 'expired' | 'invalid',
    message: string,
  ) {
    super(message);
  }
}

/** One of Centrifugo's `override` switches: `{ "value": true }`. */
const BoolValue = z.object({ value: z.boolean() }).loose();
const OverrideSchema = z
  .object({
    presence: BoolValue.optional(),
    join_leave: BoolValue.optional(),
    force_push_join_leave: BoolValue.optional(),
    force_recovery: BoolValue.optional(),
    force_positioning: BoolValue.optional(),
  })
  .loose();
export type SubscriptionOverride = z.output<typeof OverrideSchema>;

const b64 = z.string().max(65_536);
const SubOptionsSchema = z
  .object({ info: z.unknown().optional(), b64info: b64.optional(), data: z.unknown().optional(), b64data: b64.optional(), override: OverrideSchema.optional(), expire_at: z.number().int().min(0).optional() })
  .loose();

const ConnectionClaimsSchema = z
  .object({
    sub: z.string().default(''),
    info: z.unknown().optional(),
    b64info: b64.optional(),
    channels: z.array(z.string()).max(1_024).optional(),
    subs: z.record(z.string(), SubOptionsSchema).optional(),
    meta: z.unknown().optional(),
    expire_at: z.number().int().min(0).optional(),
    channel: z.undefined({ error: 'a connection token must not have a channel claim' }).optional(),
  })
  .loose();

const SubscriptionClaimsSchema = z
  .object({
    sub: z.string().default(''),
    channel: z.string().min(1, { error: 'a subscription token needs a channel claim' }),
    client: z.string().optional(),
    info: z.unknown().optional(),
    b64info: b64.optional(),
    data: z.unknown().optional(),
    b64data: b64.optional(),
    override: OverrideSchema.optional(),
    expire_at: z.number().int().min(0).optional(),
  })
  .loose();

/** Per-channel options of a server-side subscription (the `subs` claim, or a connect hook's result). */
export interface ServerSubOptions {
  info?: JsonValue | undefined;
  data?: JsonValue | undefined;
  override?: SubscriptionOverride | undefined;
  /** Unix ms; undefined: never. */
  expiresAt?: number | undefined;
}

/** What a connection token (or a connect hook) says about the connection. */
export interface ConnectionCredentials {
  user: string;
  /** Unix ms when the connection expires (`expire_at`, else `exp`); undefined: never. */
  expiresAt: number | undefined;
  info: JsonValue | undefined;
  /** Returned to the client in the connect reply (connect hooks only; tokens have none). */
  data: JsonValue | undefined;
  meta: JsonValue | undefined;
  /** Server-side subscriptions: `channels` with namespace defaults, `subs` with options. */
  subs: Map<string, ServerSubOptions>;
}

/** What a subscription token says. */
export interface SubscriptionCredentials {
  user: string;
  channel: string;
  client: string | undefined;
  info: JsonValue | undefined;
  data: JsonValue | undefined;
  override: SubscriptionOverride | undefined;
  expiresAt: number | undefined;
}

/** Raw JSON or base64 of raw JSON (`b64info`, `b64data`): the JSON protocol embeds the bytes as JSON. */
function rawJson(value: unknown, base64: string | undefined, what: string): JsonValue | undefined {
  if (value !== undefined) return value as JsonValue;
  if (base64 === undefined) return undefined;
  try {
    return JSON.parse(Buffer.from(base64, 'base64').toString('utf8')) as JsonValue;
  } catch {
    throw new TokenError('invalid', `${what} is not base64 of JSON (the JSON protocol carries JSON only)`);
  }
}

/** `expire_at` (0 = never) when present, else `exp`; in unix ms. */
function expiry(p: JWTPayload, expireAt: number | undefined): number | undefined {
  if (expireAt !== undefined) return expireAt === 0 ? undefined : expireAt * 1_000;
  return p.exp === undefined ? undefined : p.exp * 1_000;
}

function subOptions(o: z.output<typeof SubOptionsSchema>, where: string): ServerSubOptions {
  return {
    info: rawJson(o.info, o.b64info, `${where}.b64info`),
    data: rawJson(o.data, o.b64data, `${where}.b64data`),
    override: o.override,
    expiresAt: o.expire_at ? o.expire_at * 1_000 : undefined,
  };
}

/** Reads Centrifugo connection claims (from a JWT, or from a connect hook's result in the same shape). */
export function connectionCredentials(claims: unknown): ConnectionCredentials {
  const res = ConnectionClaimsSchema.safeParse(claims);
  if (!res.success) throw new TokenError('invalid', `connection token claim invalid (${res.error.issues[0]?.path.join('.')}: ${res.error.issues[0]?.message})`);
  const c = res.data;
  const subs = new Map<string, ServerSubOptions>();
  for (const ch of c.channels ?? []) subs.set(ch, {});
  for (const [ch, o] of Object.entries(c.subs ?? {})) subs.set(ch, subOptions(o, `subs.${ch}`));
  const p = claims as JWTPayload & { data?: unknown; b64data?: unknown };
  return {
    user: c.sub,
    expiresAt: expiry(p, c.expire_at),
    info: rawJson(c.info, c.b64info, 'b64info'),
    data: rawJson(p.data, typeof p.b64data === 'string' ? p.b64data : undefined, 'b64data'),
    meta: c.meta as JsonValue | undefined,
    subs,
  };
}

/** Verifies Centrifugo connection and subscription tokens. */
export interface CentrifugoTokenVerifier {
  connection(token: string): Promise<ConnectionCredentials>;
  subscription(token: string): Promise<SubscriptionCredentials>;
}

const HS = ['HS256', 'HS384', 'HS512'];
const RS = ['RS256', 'RS384', 'RS512'];
const ES = ['ES256', 'ES384', 'ES512'];
const EC_ALG: Record<string, string> = { prime256v1: 'ES256', secp384r1: 'ES384', secp521r1: 'ES512' };

function algorithmsFor(key: KeyObject): string[] {
  if (key.asymmetricKeyType === 'rsa') return RS;
  if (key.asymmetricKeyType === 'ec') {
    const alg = EC_ALG[key.asymmetricKeyDetails?.namedCurve ?? ''];
    if (alg) return [alg];
  }
  if (key.asymmetricKeyType === 'ed25519') return ['EdDSA'];
  throw new Error(`the token public key must be RSA, EC P-256/P-384/P-521 or Ed25519 (got ${key.asymmetricKeyType ?? 'unknown'})`);
}

/**
 * A verifier of Centrifugo tokens over the server's token keys.
 * @example const tokens = createCentrifugoTokenVerifier({ secret: process.env.AUTH_JWT_SECRET });
 */
export function createCentrifugoTokenVerifier(opts: JwtAuthOptions): CentrifugoTokenVerifier {
  let key: Uint8Array | KeyObject | JWTVerifyGetKey;
  let algorithms: string[];
  if (opts.secret) {
    key = new TextEncoder().encode(opts.secret);
    algorithms = HS;
  } else if (opts.publicKey) {
    const k = createPublicKey(opts.publicKey.replace(/\\n/g, '\n'));
    key = k;
    algorithms = algorithmsFor(k);
  } else if (opts.jwksUrl) {
    // Centrifugo caches JWKS keys for an hour; jose refetches on an unknown kid (at most every 30 s).
    key = createRemoteJWKSet(new URL(opts.jwksUrl), { timeoutDuration: 5_000, cooldownDuration: 30_000, cacheMaxAge: 3_600_000 });
    algorithms = [...RS, ...ES, 'EdDSA'];
  } else {
    throw new Error('createCentrifugoTokenVerifier needs a secret, a public key or a JWKS URL');
  }

  async function verify(token: string): Promise<JWTPayload> {
    if (token.length > 16_384) throw new TokenError('invalid', 'token longer than 16384 characters');
    try {
      const { payload } = await jwtVerify(token, key as Uint8Array, {
        algorithms,
        issuer: opts.issuer,
        audience: opts.audience,
        // Centrifugo allows no leeway: a token is expired at its exp.
        clockTolerance: 0,
        requiredClaims: opts.requireExp ? ['exp'] : [],
      });
      const now = Math.floor(Date.now() / 1_000);
      if (opts.maxLifetimeSec !== undefined && payload.exp !== undefined && payload.exp - (payload.iat ?? now) > opts.maxLifetimeSec) {
        throw new TokenError('invalid', `token lives longer than the allowed ${opts.maxLifetimeSec} s`);
      }
      return payload;
    } catch (err) {
      if (err instanceof TokenError) throw err;
      // Expired or not yet valid: the client asks for a new token (Centrifugo's ErrTokenExpired covers both).
      if (err instanceof joseErrors.JWTExpired) throw new TokenError('expired', 'token expired');
      if (err instanceof joseErrors.JWTClaimValidationFailed && err.claim === 'nbf') throw new TokenError('expired', 'token not valid yet (nbf)');
      const why =
        err instanceof joseErrors.JOSEAlgNotAllowed
          ? 'token algorithm not allowed'
          : err instanceof joseErrors.JWSSignatureVerificationFailed
            ? 'token signature invalid'
            : err instanceof joseErrors.JWTClaimValidationFailed
              ? `token claim invalid (${err.claim})`
              : 'token invalid';
      throw new TokenError('invalid', why);
    }
  }

  return {
    async connection(token) {
      return connectionCredentials(await verify(token));
    },
    async subscription(token) {
      const payload = await verify(token);
      const res = SubscriptionClaimsSchema.safeParse(payload);
      if (!res.success) throw new TokenError('invalid', `subscription token claim invalid (${res.error.issues[0]?.path.join('.')}: ${res.error.issues[0]?.message})`);
      const c = res.data;
      return {
        user: c.sub,
        channel: c.channel,
        client: c.client,
        info: rawJson(c.info, c.b64info, 'b64info'),
        data: rawJson(c.data, c.b64data, 'b64data'),
        override: c.override,
        expiresAt: expiry(payload, c.expire_at),
      };
    },
  };
}
