/**
 * Admission policies as this project ships them: every policy comes with its binding of the same
 * name, fails closed, and carries the part-of label. The policies' rules live with the contract
 * they enforce (approval.ts, creator.ts, agent-run-journal.ts); this file only shapes the objects.
 */
import { PART_OF_LABEL } from './group.ts';

const API = 'admissionregistration.k8s.io/v1';

/** A ValidatingAdmissionPolicy that denies what fails `spec`'s validations, and its binding. */
export function validatingPolicy(name: string, spec: Record<string, unknown>): Record<string, unknown>[] {
  const labels = { ...PART_OF_LABEL };
  return [
    { apiVersion: API, kind: 'ValidatingAdmissionPolicy', metadata: { name, labels },
      spec: { failurePolicy: 'Fail', ...spec } },
    { apiVersion: API, kind: 'ValidatingAdmissionPolicyBinding', metadata: { name, labels },
      spec: { policyName: name, validationActions: ['Deny'] } },
  ];
}

/** A MutatingAdmissionPolicy that runs once per request, and its binding. */
export function mutatingPolicy(name: string, spec: Record<string, unknown>): Record<string, unknown>[] {
  const labels = { ...PART_OF_LABEL };
  return [
    { apiVersion: API, kind: 'MutatingAdmissionPolicy', metadata: { name, labels },
      spec: { failurePolicy: 'Fail', reinvocationPolicy: 'Never', ...spec } },
    { apiVersion: API, kind: 'MutatingAdmissionPolicyBinding', metadata: { name, labels }, spec: { policyName: name } },
  ];
}
