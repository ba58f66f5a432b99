/**
 * A secret never leaves the operator in a message: `redactSecret` removes it, in every encoding
 * and fragment, from text shown to run creators or written to logs. Pure: used by the adapters
 * and by the reconciler's model-call memory alike.
 */

/** What a removed secret (or credential-like text) is replaced with. */
export const REDACTED = '[redacted]';
/** Fragments of a key shorter than this are too common to redact without mangling the text. */
const MIN_FRAGMENT = 6;

/**
 * `text` with every occurrence of `secret` removed: verbatim, JSON-escaped, percent-encoded, and
 * each piece of it between control characters (an error may print a multi-line key line by line).
 */
export function redactSecret(text: string, secret: string | undefined): string {
  if (!secret) return text;
  const forms = new Set<string>([secret, JSON.stringify(secret).slice(1, -1), encodeURIComponent(secret)]);
  for (const piece of secret.split(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/u)) {
    const trimmed = piece.trim();
    if (trimmed.length >= MIN_FRAGMENT) {
      forms.add(trimmed);
      forms.add(JSON.stringify(trimmed).slice(1, -1));
    }
  }
  let out = text;
  for (const form of [...forms].sort((a, b) => b.length - a.length)) {
    if (form.length >= Math.min(MIN_FRAGMENT, secret.length)) out = out.split(form).join(REDACTED);
  }
  return out;
}
