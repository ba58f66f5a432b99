/**
 * Builds the Pod that runs one attempt of one tool call. Secure by default: no service-account
 * token, non-root, read-only root filesystem, no capabilities, seccomp RuntimeDefault, resource
 * limits, and the tool timeout as activeDeadlineSeconds.
 */
import type { V1Pod, V1EnvVar, V1ResourceRequirements } from '@kubernetes/client-node';
import type { AgentRunSpec } from '../api/agent-run.ts';
import { API_VERSION } from '../api/group.ts';
import { Label, MANAGED_BY, TOOL_POD_FINALIZER } from '../api/conditions.ts';
import type { PodTool } from '../api/journal-entry.ts';
import { runLabelValue } from './naming.ts';
import { DEFAULT_RESOURCES, hardenedContainerSecurityContext, hardenedPodSecurityContext } from './pod-hardening.ts';

/** The pod annotation that carries the tool input (mounted as a file in the container). */
export const INPUT_ANNOTATION = 'agentrun.dev/input';
/** Where the tool finds its input file in the container. */
export const INPUT_DIR = '/agentrun/input';

/** What a tool pod is built from: the run, the step, the attempt and the resolved tool. */
export interface ToolPodRequest {
  readonly run: { name: string; namespace: string; uid: string; spec: AgentRunSpec };
  readonly stepId: number;
  readonly attempt: number;
  readonly podName: string;
  readonly tool: PodTool;
  readonly input: unknown;
}

/** The Pod for one tool attempt, owned by the run, named deterministically. */
export function buildToolPod(req: ToolPodRequest): V1Pod {
  const { run, tool } = req;
  const defaults = run.spec.toolPodDefaults;
  const inputJson = JSON.stringify(req.input ?? {});
  const env: V1EnvVar[] = [
    ...(tool.container.env ?? []) as V1EnvVar[],
    // The kubelet expands $(VAR) and turns $$ into $ in env values: escape, or a model could read
    // the tool's other variables (secrets included) by putting "$(NAME)" into its input.
    { name: 'AGENTRUN_INPUT', value: inputJson.replaceAll('$', () => '$$') },
    { name: 'AGENTRUN_INPUT_FILE', value: `${INPUT_DIR}/input.json` },
    // Stable across attempts of one step, so a tool can de-duplicate its own side effects.
    { name: 'AGENTRUN_IDEMPOTENCY_KEY', value: `${run.uid}/${req.stepId}` },
    { name: 'AGENTRUN_RUN', value: run.name },
    { name: 'AGENTRUN_STEP', value: String(req.stepId) },
    { name: 'AGENTRUN_ATTEMPT', value: String(req.attempt) },
    { name: 'AGENTRUN_TOOL', value: tool.name },
  ];
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: req.podName,
      namespace: run.namespace,
      labels: {
        [Label.managedBy]: MANAGED_BY,
        [Label.component]: 'tool',
        [Label.run]: runLabelValue(run.name),
        [Label.runUid]: run.uid,
        [Label.step]: String(req.stepId),
        [Label.attempt]: String(req.attempt),
      },
      annotations: { [INPUT_ANNOTATION]: inputJson, 'agentrun.dev/tool': tool.name },
      finalizers: [TOOL_POD_FINALIZER],
      ownerReferences: [{ apiVersion: API_VERSION, kind: 'AgentRun', name: run.name, uid: run.uid, controller: true,
        blockOwnerDeletion: true }],
    },
    spec: {
      restartPolicy: 'Never',
      activeDeadlineSeconds: tool.timeoutSeconds,
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      terminationGracePeriodSeconds: 10,
      ...(defaults?.serviceAccountName ? { serviceAccountName: defaults.serviceAccountName } : {}),
      ...(defaults?.nodeSelector ? { nodeSelector: defaults.nodeSelector } : {}),
      ...(defaults?.tolerations ? { tolerations: defaults.tolerations } : {}),
      securityContext: hardenedPodSecurityContext(),
      containers: [{
        name: 'tool',
        image: tool.container.image,
        ...(tool.container.command ? { command: tool.container.command } : {}),
        ...(tool.container.args ? { args: tool.container.args } : {}),
        ...(tool.container.workingDir ? { workingDir: tool.container.workingDir } : {}),
        env,
        resources: (tool.container.resources ?? defaults?.resources ?? DEFAULT_RESOURCES) as V1ResourceRequirements,
        terminationMessagePolicy: 'FallbackToLogsOnError',
        securityContext: hardenedContainerSecurityContext(),
        volumeMounts: [
          { name: 'input', mountPath: INPUT_DIR, readOnly: true },
          { name: 'tmp', mountPath: '/tmp' },
        ],
      }],
      volumes: [
        { name: 'input',
          downwardAPI: {
            items: [{ path: 'input.json', fieldRef: { fieldPath: `metadata.annotations['${INPUT_ANNOTATION}']` } }],
          } },
        { name: 'tmp', emptyDir: { sizeLimit: '64Mi' } },
      ],
    },
  };
}
