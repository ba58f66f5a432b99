/** The API group every kind of this operator belongs to. */
export const GROUP = 'agentrun.dev';
/** The one served version of every kind in the group. */
export const VERSION = 'v1alpha1';
/** The apiVersion every object of the group carries. */
export const API_VERSION = `${GROUP}/${VERSION}`;

/** Label put on every object the operator manages, and on its CRDs. */
export const PART_OF_LABEL = { 'app.kubernetes.io/part-of': 'agentrun-operator' } as const;
