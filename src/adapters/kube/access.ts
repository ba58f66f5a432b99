/**
 * Asks the apiserver, with SubjectAccessReviews, whether a run's creator may do what the run
 * asks the operator to do on their behalf. The apiserver's authorizer decides (RBAC, webhooks):
 * the operator never evaluates permissions itself.
 */
import type { AuthorizationV1Api } from '@kubernetes/client-node';
import type { AccessRequirement } from '../../core/access.ts';
import type { AccessReviewer } from '../../ports.ts';
import { kubeCall } from './errors.ts';

/** Asks the apiserver (SubjectAccessReview) what a run's creator may do. */
export class KubeAccessReviewer implements AccessReviewer {
  private readonly api: AuthorizationV1Api;
  constructor(api: AuthorizationV1Api) {
    this.api = api;
  }

  async denied(
    namespace: string,
    user: string,
    groups: readonly string[],
    requirements: readonly AccessRequirement[],
  ): Promise<AccessRequirement[]> {
    const verdicts = await Promise.all(requirements.map(async (r) => {
      const review = await kubeCall(() => this.api.createSubjectAccessReview({
        body: {
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SubjectAccessReview',
          spec: {
            user,
            groups: [...groups],
            resourceAttributes: { namespace, verb: r.verb, group: r.group, resource: r.resource, name: r.name },
          },
        },
      }));
      return review.status?.allowed === true;
    }));
    return requirements.filter((_r, i) => !verdicts[i]);
  }
}
