/** The API group and version every kind of this operator belongs to. */
export const GROUP = 'agentrun.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;

/** Label put on every object the operator manages, and on its CRDs. */
export const PART_OF_LABEL = { 'app.kubernetes.io/part-of': 'agentrun-operator' } as const;
