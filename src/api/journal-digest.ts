/** The journal's content hash, shared by the operator (which writes and verifies) and the plugin (which verifies). */
import { createHash } from 'node:crypto';

/** sha256 hex of a string: the journal's content digest (status records it as `sha256:<hex>`). */
export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
