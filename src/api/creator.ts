/**
 * Who created a run, recorded by the apiserver: a MutatingAdmissionPolicy writes the
 * authenticated user and groups of the CREATE request into two annotations, and a
 * ValidatingAdmissionPolicy refuses any other value and any later change. The operator asks the
 * apiserver (SubjectAccessReview) whether that identity may use each Secret, ConfigMap,
 * ServiceAccount and ModelEndpoint the run references before it uses them: a run can do nothing
 * its creator could not.
 */
import { mutatingPolicy, validatingPolicy } from './admission.ts';
import { GROUP } from './group.ts';

/** Annotation in which the apiserver records the user who created a run; nobody can set or change it. */
export const CREATED_BY_USER = `created-by.${GROUP}/user`;
/** The creator's groups, joined with ", " (group names have no comma in practice; documented). */
export const CREATED_BY_GROUPS = `created-by.${GROUP}/groups`;
const GROUP_SEPARATOR = ', ';

/** The creator recorded on a run, or undefined when no admission policy recorded one. */
export function creatorOf(
  annotations: Readonly<Record<string, string>> | undefined,
): { user: string; groups: string[] } | undefined {
  const user = annotations?.[CREATED_BY_USER];
  if (user === undefined || user === '') return undefined;
  const groups = annotations?.[CREATED_BY_GROUPS];
  return { user, groups: groups ? groups.split(GROUP_SEPARATOR).filter(Boolean) : [] };
}

const onRuns = (operations: string[]) => ({
  resourceRules: [{ apiGroups: [GROUP], apiVersions: ['*'], operations, resources: ['agentruns'] }],
});
const GROUPS = `request.userInfo.groups.join('${GROUP_SEPARATOR}')`;

/** The admission policies that record and protect a run's creator, as shipped in crds/. */
export function creatorPolicyManifests(): Record<string, unknown>[] {
  return [
    ...mutatingPolicy('agentrun-record-creator', {
      matchConstraints: onRuns(['CREATE']),
      mutations: [{
        patchType: 'ApplyConfiguration',
        applyConfiguration: {
          // Spaces between the closing braces: a Helm template of this file must not read "}}".
          expression: `Object{metadata: Object.metadata{annotations: {'${CREATED_BY_USER}': request.userInfo.username, `
            + `'${CREATED_BY_GROUPS}': ${GROUPS}} } }`,
        },
      }],
    }),
    ...validatingPolicy('agentrun-creator', {
      matchConstraints: onRuns(['CREATE', 'UPDATE']),
      variables: [
        { name: 'keys', expression: `['${CREATED_BY_USER}', '${CREATED_BY_GROUPS}']` },
        { name: 'now', expression: 'has(object.metadata.annotations) ? object.metadata.annotations : {}' },
        { name: 'before',
          expression:
            'oldObject != null && has(oldObject.metadata.annotations) ? oldObject.metadata.annotations : {}' },
      ],
      validations: [{
        expression: `request.operation == 'CREATE'`
          + ` ? variables.now[?'${CREATED_BY_USER}'].orValue('') == request.userInfo.username`
          + ` && variables.now[?'${CREATED_BY_GROUPS}'].orValue('') == ${GROUPS}`
          + ` : variables.keys.all(k, variables.now[?k] == variables.before[?k])`,
        message: `${CREATED_BY_USER} and ${CREATED_BY_GROUPS} record who created the run; `
          + 'the apiserver sets them and nobody may change them',
        reason: 'Forbidden',
      }],
    }),
  ];
}
