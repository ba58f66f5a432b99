/**
 * Human decisions on pending steps, made with annotations and authorised by the apiserver.
 *
 *   kubectl annotate agentrun NAME approve.agentrun.dev/step-N="looks safe"
 *   kubectl annotate agentrun NAME reject.agentrun.dev/step-N="do not touch prod"
 *
 * An annotation records no author and anyone who may patch the run could set it, so two
 * admission policies shipped with the CRDs close that gap:
 * - a MutatingAdmissionPolicy writes `decided-by.agentrun.dev/step-N` = the authenticated user
 *   of the request that set or changed the decision (GA in Kubernetes 1.36);
 * - a ValidatingAdmissionPolicy refuses the request unless that user may `approve` the virtual
 *   subresource `agentruns/approval` (ordinary RBAC: bind the `agentrun-approver` ClusterRole),
 *   unless every step it decides on is awaiting approval in the stored status (a decision made
 *   in advance would approve input nobody has seen), and refuses any `decided-by` value other
 *   than the requester's own name.
 */
import { mutatingPolicy, validatingPolicy } from './admission.ts';
import { GROUP, PART_OF_LABEL } from './group.ts';

/** Prefix of the annotation that approves a step: `approve.agentrun.dev/step-<id>`. */
export const APPROVE_PREFIX = `approve.${GROUP}/`;
/** Prefix of the annotation that rejects a step: `reject.agentrun.dev/step-<id>`. */
export const REJECT_PREFIX = `reject.${GROUP}/`;
/** Prefix of the annotation in which the apiserver records who decided on a step. */
export const DECIDED_BY_PREFIX = `decided-by.${GROUP}/`;
/** The RBAC verb and virtual subresource that allow deciding on a run's pending steps. */
export const APPROVAL_VERB = 'approve';
/** Virtual subresource of agentruns whose `approve` verb lets a person decide (never served). */
export const APPROVAL_SUBRESOURCE = 'approval';
/** ClusterRole granting the approve verb; bind it per namespace to the people who decide. */
export const APPROVER_CLUSTER_ROLE = 'agentrun-approver';

/** Annotation key that approves step `stepId`. */
export function approveKey(stepId: number): string {
  return `${APPROVE_PREFIX}step-${stepId}`;
}
/** Annotation key that rejects step `stepId`. */
export function rejectKey(stepId: number): string {
  return `${REJECT_PREFIX}step-${stepId}`;
}
/** Annotation key in which the apiserver records who decided on step `stepId`. */
export function decidedByKey(stepId: number): string {
  return `${DECIDED_BY_PREFIX}step-${stepId}`;
}

/** A decision found on a run. */
export interface AnnotatedDecision {
  readonly stepId: number;
  readonly decision: 'Approved' | 'Rejected';
  /** The annotation that carries it, e.g. approve.agentrun.dev/step-3. */
  readonly annotation: string;
  readonly comment: string;
  /** The authenticated user recorded by the mutating policy, if it ran. */
  readonly by?: string;
}

const DECISION_KEY = /^(approve|reject)\.agentrun\.dev\/step-([1-9][0-9]*)$/;

/** Decisions on a run's annotations; a step with both approve and reject counts as rejected. */
export function decisionsFrom(
  annotations: Readonly<Record<string, string>> | undefined,
): Map<number, AnnotatedDecision> {
  const out = new Map<number, AnnotatedDecision>();
  for (const [key, value] of Object.entries(annotations ?? {})) {
    const match = DECISION_KEY.exec(key);
    if (!match) continue;
    const stepId = Number(match[2]);
    const decision = match[1] === 'approve' ? 'Approved' : 'Rejected';
    if (out.get(stepId)?.decision === 'Rejected') continue;
    const by = annotations?.[decidedByKey(stepId)];
    out.set(stepId, { stepId, decision, annotation: key, comment: value, ...(by ? { by } : {}) });
  }
  return out;
}

/** CEL: the decision annotations this request adds or changes. */
const CHANGED_DECISIONS = `has(object.metadata.annotations) ? object.metadata.annotations.filter(k,
  (k.startsWith('${APPROVE_PREFIX}') || k.startsWith('${REJECT_PREFIX}')) &&
  (oldObject == null || !has(oldObject.metadata.annotations) || !(k in oldObject.metadata.annotations) ||
   oldObject.metadata.annotations[k] != object.metadata.annotations[k])) : []`;

const CHANGED_DECIDED_BY = `has(object.metadata.annotations) ? object.metadata.annotations.filter(k,
  k.startsWith('${DECIDED_BY_PREFIX}') &&
  (oldObject == null || !has(oldObject.metadata.annotations) || !(k in oldObject.metadata.annotations) ||
   oldObject.metadata.annotations[k] != object.metadata.annotations[k])) : []`;

const matchAgentRuns = {
  resourceRules: [{ apiGroups: [GROUP], apiVersions: ['*'], operations: ['CREATE', 'UPDATE'],
    resources: ['agentruns'] }],
};

/** The admission policies, their bindings and the approver ClusterRole, as shipped in crds/. */
export function approvalPolicyManifests(): Record<string, unknown>[] {
  const labels = { ...PART_OF_LABEL };
  return [
    ...mutatingPolicy('agentrun-record-approver', {
      matchConstraints: matchAgentRuns,
      variables: [{ name: 'changed', expression: CHANGED_DECISIONS }],
      mutations: [{
        patchType: 'JSONPatch',
        jsonPatch: {
          // Record who decided, as the apiserver authenticated them; nobody types this.
          expression: `variables.changed.map(k, JSONPatch{op: 'add',
  path: '/metadata/annotations/' + jsonpatch.escapeKey('${DECIDED_BY_PREFIX}' + k.substring(k.indexOf('/') + 1)),
  value: request.userInfo.username})`,
        },
      }],
    }),
    ...validatingPolicy('agentrun-approvals', {
      matchConstraints: matchAgentRuns,
      variables: [
        { name: 'changed', expression: CHANGED_DECISIONS },
        { name: 'changedBy', expression: CHANGED_DECIDED_BY },
        // The steps awaiting a decision before this request, as the operator last wrote them.
        { name: 'pending',
          expression: 'oldObject != null && has(oldObject.status) && has(oldObject.status.pendingApprovals)'
            + " ? oldObject.status.pendingApprovals.map(p, 'step-' + string(p.step)) : []" },
      ],
      validations: [
        {
          expression: `size(variables.changed) == 0 || authorizer.group('${GROUP}').resource('agentruns')`
            + `.subresource('${APPROVAL_SUBRESOURCE}').namespace(object.metadata.namespace).name(object.metadata.name)`
            + `.check('${APPROVAL_VERB}').allowed()`,
          messageExpression: "'user ' + request.userInfo.username + ' may not decide on AgentRun steps ('"
            + ` + variables.changed.join(', ') + '): it needs the verb ${APPROVAL_VERB} on agentruns/`
            + `${APPROVAL_SUBRESOURCE} in namespace ' + object.metadata.namespace + ', e.g. a RoleBinding to the `
            + `ClusterRole ${APPROVER_CLUSTER_ROLE}'`,
          reason: 'Forbidden',
        },
        {
          // A decision made before its step waits would approve input nobody has seen.
          expression: `variables.changed.all(k, k.substring(k.indexOf('/') + 1) in variables.pending)`,
          messageExpression: "'a decision counts only for a step awaiting approval: ' + variables.changed"
            + ".filter(k, !(k.substring(k.indexOf('/') + 1) in variables.pending)).join(', ')"
            + " + ' names a step that is not waiting; awaiting approval now: '"
            + " + (size(variables.pending) == 0 ? 'none' : variables.pending.join(', '))",
          reason: 'Forbidden',
        },
        {
          expression: `variables.changedBy.all(k, object.metadata.annotations[k] == request.userInfo.username)`,
          messageExpression: `'${DECIDED_BY_PREFIX}* annotations record who decided and are set by the apiserver; `
            + "they cannot be set to anyone but the requester (' + request.userInfo.username + ')'",
          reason: 'Forbidden',
        },
      ],
    }),
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: APPROVER_CLUSTER_ROLE, labels },
      rules: [
        { apiGroups: [GROUP], resources: ['agentruns'], verbs: ['get', 'list', 'watch', 'patch'] },
        { apiGroups: [GROUP], resources: [`agentruns/${APPROVAL_SUBRESOURCE}`], verbs: [APPROVAL_VERB] },
        // To see the whole input of what they approve (kubectl agentrun describe --show-input).
        { apiGroups: [GROUP], resources: ['agentrunjournals'], verbs: ['get', 'list', 'watch'] },
      ],
    },
  ];
}
