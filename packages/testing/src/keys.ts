import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';

/** The key types the tests sign and verify with. */
export type TestKeyType =
  | { type: 'rsa'; modulusLength: number }
  | { type: 'ec'; namedCurve: string }
  | { type: 'ed25519' }
  | { type: 'x25519' };

/**
 * A key pair for a test, as KeyObjects that no key generation job shares.
 *
 * Node 20 can deadlock when a KeyObject made by `generateKeyPairSync` (or
 * `generateKeyPair`) is exported (as JWK: jose does it to sign with a
 * KeyObject) while a garbage collection finalizes the generation job: the
 * export holds the key's mutex, the job's destructor waits for it, on the same
 * thread (seen in CI: a test worker stuck for good in `ExportJWKRsaKey` under
 * `~KeyGenJob`). Here the job itself writes PEM while it is alive, and the
 * KeyObjects are made from that text, so they share nothing with the job.
 */
export function testKeyPair(spec: TestKeyType): { publicKey: KeyObject; privateKey: KeyObject } {
  const { type, ...options } = spec;
  const pem = generateKeyPairSync(type as 'rsa', {
    ...(options as { modulusLength: number }),
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return { publicKey: createPublicKey(pem.publicKey), privateKey: createPrivateKey(pem.privateKey) };
}
