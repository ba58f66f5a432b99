/**
 * Approve / Reject from the console: the same code as `kubectl agentrun approve|reject`
 * (decisions.ts), run without a terminal (the click is the confirmation), as the kubeconfig user.
 * A refusal by RBAC or the approval admission policy propagates with the apiserver's message.
 */
import { Readable, Writable } from 'node:stream';
import { z } from 'zod';
import { PluginError } from '../errors.ts';
import type { CommandContext } from '../context.ts';
import { decideOnSteps } from '../decisions.ts';
import type { Kube } from '../kube.ts';
import type { Output, Style } from '../render.ts';

/** A request body the console cannot use (HTTP 400). */
export class BodyError extends PluginError {
  override name = 'BodyError';
}

/** An annotation value stays small: it is shown to humans and (for a reason) to the model. */
const MAX_TEXT = 1024;

/** A decision the browser posts: approve or reject one step, with a comment or reason. */
const decisionBody = z.strictObject({
  verb: z.enum(['approve', 'reject']),
  step: z.int().min(1).max(999_999_999),
  text: z.string().max(MAX_TEXT),
});
export type Decision = z.infer<typeof decisionBody>;

/** Checks a decision body: a verb, one step, and a reason when rejecting. */
export function parseDecision(body: unknown): Decision {
  const parsed = decisionBody.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new BodyError(`bad decision: ${issue ? `${issue.path.join('.') || 'body'}: ${issue.message}` : 'invalid'}`);
  }
  if (parsed.data.verb === 'reject' && parsed.data.text.trim() === '') {
    throw new BodyError('a rejection needs a reason (the model reads it)');
  }
  return parsed.data;
}

/** What deciding printed, for the browser to show. */
export interface DecisionResult {
  /** What the plugin would have printed: which steps were decided, and by whom the apiserver recorded. */
  readonly lines: readonly string[];
  readonly notes: readonly string[];
}

const plain = (s: string): string => s;
const PLAIN: Style = { bold: plain, dim: plain, red: plain, yellow: plain, green: plain, cyan: plain };

/** Sets the decision annotation on one pending step as the kubeconfig user. */
export async function decide(kube: Kube, namespace: string, name: string, d: Decision): Promise<DecisionResult> {
  const lines: string[] = [];
  const notes: string[] = [];
  const out: Output = {
    print: (t = '') => {
      lines.push(t);
    },
    note: (t) => {
      notes.push(t);
    },
    tty: false,
    width: 100,
    style: PLAIN,
  };
  const sink = new Writable({ write: (_c, _e, cb) => {
    cb();
  } });
  const ctx: CommandContext = {
    command: d.verb,
    // decideOnSteps reads the run in ctx.kube.namespace: a Kube for the run's namespace.
    kube: kube.inNamespace(namespace),
    out,
    input: Readable.from([]),
    prompt: sink,
    global: kube.flags,
    positionals: [],
    flags: {},
  };
  const text = d.text.trim() !== '' ? d.text : 'approved in kubectl agentrun ui';
  await decideOnSteps(ctx, { verb: d.verb, name, steps: [d.step], text, confirm: false });
  return { lines, notes };
}
