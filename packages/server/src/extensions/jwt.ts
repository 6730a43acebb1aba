import { createPublicKey, type KeyObject } from 'node:crypto';
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { PresenceError } from 'realtime-message-protocol';
import { ANONYMOUS_USER_ID } from '../core/channels/presence-info.js';
import type { Extension, VerifiedToken } from './extension.js';

/** Verifies a handshake token and returns who it is for. */
export type TokenVerifier = (token: string) => Promise<VerifiedToken>;

export interface JwtAuthOptions {
  /** HS256 shared secret (at least 32 bytes). */
  secret?: string | undefined;
  /** PEM public key (SPKI); RS256 for RSA keys, ES256 for P-256 keys. */
  publicKey?: string | undefined;
  /** URL of a JSON Web Key Set (RS256/ES256). */
  jwksUrl?: string | undefined;
  /** Required `iss`, when set. */
  issuer?: string | undefined;
  /** Required `aud`, when set. */
  audience?: string | undefined;
  /** Allowed clock skew in seconds (for `exp`, `nbf` and an `iat` in the future). @default 5 */
  clockToleranceSec?: number;
  /** Refuse tokens without `exp`. @default false */
  requireExp?: boolean | undefined;
  /** Refuse tokens that live longer than this many seconds (`exp` − `iat`, or `exp` − now without `iat`). @default no cap */
  maxLifetimeSec?: number | undefined;
}

function algorithmFor(key: KeyObject): string {
  if (key.asymmetricKeyType === 'rsa') return 'RS256';
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256';
  throw new Error(`AUTH_JWT_PUBLIC_KEY must be an RSA or P-256 EC public key (got ${key.asymmetricKeyType ?? 'unknown'})`);
}

/**
 * Builds a JWT verifier with an explicit algorithm allow-list: HS256 for a
 * secret, RS256 or ES256 (by key type) for a public key, RS256/ES256 for a
 * JWKS. `alg: none` and every other algorithm are refused by jose.
 */
export function createJwtVerifier(opts: JwtAuthOptions): TokenVerifier {
  let key: Uint8Array | KeyObject | JWTVerifyGetKey;
  let algorithms: string[];
  if (opts.secret) {
    if (Buffer.byteLength(opts.secret) < 32) throw new Error('AUTH_JWT_SECRET must be at least 32 bytes for HS256');
    key = new TextEncoder().encode(opts.secret);
    algorithms = ['HS256'];
  } else if (opts.publicKey) {
    const k = createPublicKey(opts.publicKey.replace(/\\n/g, '\n'));
    key = k;
    algorithms = [algorithmFor(k)];
  } else if (opts.jwksUrl) {
    key = createRemoteJWKSet(new URL(opts.jwksUrl), { timeoutDuration: 5_000, cooldownDuration: 30_000 });
    algorithms = ['RS256', 'ES256'];
  } else {
    throw new Error('createJwtVerifier needs a secret, a public key or a JWKS URL');
  }
  return async (token) => {
    if (typeof token !== 'string' || token.length === 0 || token.length > 8_192) {
      throw new PresenceError('unauthorized', 'a token is required in the handshake auth.token');
    }
    try {
      const tolerance = opts.clockToleranceSec ?? 5;
      const { payload } = await jwtVerify(token, key as Uint8Array, {
        algorithms,
        issuer: opts.issuer,
        audience: opts.audience,
        clockTolerance: tolerance,
        requiredClaims: opts.requireExp || opts.maxLifetimeSec !== undefined ? ['sub', 'exp'] : ['sub'],
      });
      if (typeof payload.sub !== 'string' || payload.sub.length === 0) throw new PresenceError('unauthorized', 'token has no subject');
      // The presence rooms' name for anonymous Centrifugo connections: a token for it would pass for them.
      if (payload.sub === ANONYMOUS_USER_ID) throw new PresenceError('unauthorized', `token subject '${ANONYMOUS_USER_ID}' is reserved for anonymous connections`);
      const now = Math.floor(Date.now() / 1000);
      // jose checks `iat` only together with a maximum token age: a token "issued" in the future is refused here.
      if (payload.iat !== undefined && payload.iat > now + tolerance) throw new PresenceError('unauthorized', 'token issued in the future (iat)');
      if (opts.maxLifetimeSec !== undefined && payload.exp !== undefined && payload.exp - (payload.iat ?? now) > opts.maxLifetimeSec) {
        throw new PresenceError('unauthorized', `token lives longer than the allowed ${opts.maxLifetimeSec} s`);
      }
      return { userId: payload.sub, expiresAt: payload.exp ? payload.exp * 1000 : undefined, claims: payload };
    } catch (err) {
      if (err instanceof PresenceError) throw err;
      const why =
        err instanceof joseErrors.JWTExpired
          ? 'token expired'
          : err instanceof joseErrors.JOSEAlgNotAllowed
            ? 'token algorithm not allowed'
            : err instanceof joseErrors.JWSSignatureVerificationFailed
              ? 'token signature invalid'
              : err instanceof joseErrors.JWTClaimValidationFailed && err.claim === 'exp'
                ? 'token has no expiry (exp is required)'
              : err instanceof joseErrors.JWTClaimValidationFailed
                ? `token claim invalid (${err.claim})`
                : 'token invalid';
      throw new PresenceError('unauthorized', why);
    }
  };
}

/**
 * The extension that authenticates every transport's connections with a
 * token verifier (usually {@link createJwtVerifier}).
 * @example new Extensions([tokenAuth(createJwtVerifier({ secret }))])
 */
export function tokenAuth(verify: TokenVerifier): Extension {
  return {
    name: 'token-auth',
    authenticate: (ctx) => verify(ctx.token as string),
  };
}
