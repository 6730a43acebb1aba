import type { KV, Kvm } from '@nats-io/kv';
import { isNatsUnavailable } from './errors.js';

/** Largest value: a user's record with its connection marks (ended marks are kept 10 minutes). */
export const MAX_VALUE_BYTES = 64 * 1024;

/** Records must outlive any connected period between two writes; a bucket that drops them sooner is refused. */
const MIN_TTL_MS = 3_600_000;

/**
 * Opens the bucket in the hub domain, creating it when missing (history 1,
 * file storage, the retention as its `ttl`). An existing bucket is bound as
 * it is (nats.js never changes an existing stream); {@link checkBucket}
 * then refuses settings the store cannot work with.
 */
export async function openBucket(kvm: Kvm, bucket: string, o: { retentionMs: number; replicas: number; where: string }): Promise<KV> {
  if (!/^[-\w]+$/.test(bucket)) throw new Error(`NATS_BUCKET "${bucket}" is not a valid bucket name (letters, digits, '-' and '_')`);
  try {
    return await kvm.create(bucket, { history: 1, ttl: o.retentionMs, replicas: o.replicas, maxValueSize: MAX_VALUE_BYTES, storage: 'file' });
  } catch (err) {
    if (isNatsUnavailable(err)) {
      throw new Error(`no JetStream answers in ${o.where}: check NATS_HUB_DOMAIN (the hub's jetstream { domain }) and that this server is linked to the hub (${(err as Error).message})`, { cause: err });
    }
    throw new Error(`cannot open or create the NATS KV bucket "${bucket}" (NATS_BUCKET) in ${o.where}: ${(err as Error).message}`, { cause: err });
  }
}

/** Refuses a bucket whose settings would lose or misroute records (a mirror, too short a ttl, too small values). */
export async function checkBucket(kv: KV, bucket: string, retentionMs: number): Promise<void> {
  const info = (await kv.status()).streamInfo;
  const c = info.config;
  const problems: string[] = [];
  if (c.mirror) problems.push(`it is a mirror of "${c.mirror.name}" (writes must reach the bucket itself on the hub)`);
  if (c.sources?.length) problems.push('it has sources (records would be overwritten from elsewhere)');
  const ttl = Math.round((c.max_age ?? 0) / 1e6);
  if (ttl > 0 && ttl < Math.min(MIN_TTL_MS, retentionMs)) problems.push(`its ttl is ${ttl} ms (records of connected users would vanish; at least ${Math.min(MIN_TTL_MS, retentionMs)} ms)`);
  if (c.max_msg_size !== undefined && c.max_msg_size > 0 && c.max_msg_size < 4096) problems.push(`its largest value is ${c.max_msg_size} bytes (at least 4096)`);
  if ((c.max_msgs_per_subject ?? 0) < 1 && c.max_msgs_per_subject !== -1) problems.push(`its history is ${String(c.max_msgs_per_subject)}`);
  if (problems.length > 0) throw new Error(`the NATS KV bucket "${bucket}" (NATS_BUCKET) exists with other settings than this server needs: ${problems.join('; ')}. Use another bucket name or recreate it.`);
}
