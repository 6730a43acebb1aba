import type { z } from 'zod';

export type ParseResult<T> =
  | { ok: true; value: T }
  | { ok: false; error: { code: 'invalid_payload' | 'payload_too_large'; message: string } };

/**
 * Validates with a schema and turns the first issue into a coded error whose
 * message names the field. An issue raised with `params: { tooLarge: true }`
 * becomes `payload_too_large`; every other one `invalid_payload`.
 */
export function parsePayload<S extends z.ZodType>(schema: S, input: unknown): ParseResult<z.output<S>> {
  const result = schema.safeParse(input);
  if (result.success) return { ok: true, value: result.data };
  const issue = result.error.issues[0];
  const tooLarge = issue?.code === 'custom' && (issue as { params?: { tooLarge?: boolean } }).params?.tooLarge === true;
  const path = issue && issue.path.length > 0 ? issue.path.join('.') : '';
  let message = issue?.message ?? 'invalid payload';
  if (path && !message.startsWith(String(issue?.path[0]))) message = `${path}: ${message}`;
  if (issue?.code === 'invalid_type' && path === '') message = `payload must be an object (${issue.message})`;
  return { ok: false, error: { code: tooLarge ? 'payload_too_large' : 'invalid_payload', message } };
}
