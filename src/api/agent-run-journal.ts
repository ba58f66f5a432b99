/**
 * The `AgentRunJournal` kind: one immutable journal entry of one run (a model response, a tool
 * result, or the run's resolved tools), written only by the operator.
 *
 * Why a kind of our own and not ConfigMaps: anyone who may edit ConfigMaps in a namespace could
 * plant or replace an entry at its predictable name. This kind is aggregated into no role with
 * write verbs, its spec is immutable (a CEL rule every writer meets, cluster admins included),
 * and the admission policy in journalPolicyManifests() lets only holders of the verb
 * `write` on the virtual subresource `agentruns/journal` (the operator) create one, or write a
 * run's status, which indexes the journal. The operator still verifies every entry it reads
 * (controller owner, run UID, step, digest): see api/journal-entry.ts verifyJournalObject.
 */
import { z } from 'zod';
import { validatingPolicy } from './admission.ts';
import { GROUP, PART_OF_LABEL } from './group.ts';
import { objectName } from './primitives.ts';

/** Kind of the journal objects; one object per journaled step. */
export const JOURNAL_KIND = 'AgentRunJournal';
/** Resource name of the journal kind, as RBAC rules and the REST path spell it. */
export const JOURNAL_PLURAL = 'agentrunjournals';
/** The RBAC verb and virtual subresource that allow writing a run's journal and its status. */
export const JOURNAL_WRITE_VERB = 'write';
/** Virtual subresource of agentruns whose `write` verb marks the operator (never served). */
export const JOURNAL_SUBRESOURCE = 'journal';
/** ClusterRole that lets people read journals (transcripts, the plugin); aggregated into view. */
export const JOURNAL_READER_CLUSTER_ROLE = 'agentrun-journal-reader';
/** Largest entry text: etcd's object limit is 1.5 MiB; keep room for metadata. */
export const MAX_JOURNAL_ENTRY_BYTES = 1_048_576;

/**
 * What a journal entry can hold: a model response, a tool result, the run's resolved tools, or
 * the handle of an MCP task a tool step's attempt started (polled again after a restart).
 */
export const JOURNAL_ENTRY_KINDS = ['ModelResponse', 'ToolResult', 'Tools', 'MCPTask'] as const;

/** Spec of an AgentRunJournal: which run and step it records, and the entry as the exact bytes its digest covers. */
export const agentRunJournalSpec = z.object({
  run: z.object({
    name: objectName('The AgentRun this entry belongs to.'),
    uid: z.string().min(1).max(64).describe('Its UID: an entry of an earlier run with the same name never counts.'),
  }),
  step: z.int().min(0).describe("The step id the entry records; 0 for the run's resolved tools."),
  kind: z.enum(JOURNAL_ENTRY_KINDS).describe('What the entry holds.'),
  entry: z.string().max(MAX_JOURNAL_ENTRY_BYTES)
    .describe("The entry as JSON text: exactly the bytes the digest in the run's status covers."),
});
export type AgentRunJournalSpec = z.infer<typeof agentRunJournalSpec>;

/** An AgentRunJournal as read from the apiserver (its spec not yet validated). */
export interface AgentRunJournalObject {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    labels?: Record<string, string>;
    ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string; controller?: boolean }[];
  };
  spec?: unknown;
}

/** The admission policy that keeps the journal and the run status the operator's alone, and its reader role. */
export function journalPolicyManifests(): Record<string, unknown>[] {
  const labels = { ...PART_OF_LABEL };
  const isOperator = `authorizer.group('${GROUP}').resource('agentruns').subresource('${JOURNAL_SUBRESOURCE}')`
    + `.namespace(request.namespace).check('${JOURNAL_WRITE_VERB}').allowed()`;
  // The garbage collector and the namespace controller remove entries of deleted runs and namespaces.
  const isCleanup =
    `request.operation == 'DELETE' && (request.userInfo.username.startsWith('system:serviceaccount:kube-system:')`
    + ` || request.userInfo.username == 'system:kube-controller-manager')`;
  return [
    ...validatingPolicy('agentrun-journal', {
      matchConstraints: {
        resourceRules: [
          { apiGroups: [GROUP], apiVersions: ['*'], operations: ['CREATE', 'UPDATE', 'DELETE'],
            resources: [JOURNAL_PLURAL] },
          { apiGroups: [GROUP], apiVersions: ['*'], operations: ['UPDATE'], resources: ['agentruns/status'] },
        ],
      },
      validations: [{
        expression: `${isOperator} || ${isCleanup}`,
        messageExpression: "'only the agentrun operator writes '"
          + ` + (request.resource.resource == '${JOURNAL_PLURAL}' ? 'AgentRun journals' : 'AgentRun status')`
          + " + ': user ' + request.userInfo.username"
          + ` + ' lacks the verb ${JOURNAL_WRITE_VERB} on agentruns/${JOURNAL_SUBRESOURCE}`
          + " in namespace ' + request.namespace"
          + " + ' (granted to the operator\\'s ServiceAccount only; see docs/security.md)'",
        reason: 'Forbidden',
      }],
    }),
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: {
        name: JOURNAL_READER_CLUSTER_ROLE,
        labels: {
          ...labels,
          // Reading is aggregated into the built-in roles; writing is aggregated nowhere.
          'rbac.authorization.k8s.io/aggregate-to-view': 'true',
          'rbac.authorization.k8s.io/aggregate-to-edit': 'true',
          'rbac.authorization.k8s.io/aggregate-to-admin': 'true',
        },
      },
      rules: [{ apiGroups: [GROUP], resources: [JOURNAL_PLURAL], verbs: ['get', 'list', 'watch'] }],
    },
  ];
}
