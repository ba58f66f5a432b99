/**
 * The `ModelEndpoint` kind: a model API an admin configures for a namespace — where it is, the
 * Secret that holds its key, which models runs may use and their limits. Runs reference it by
 * name (`spec.model.endpointRef`) and never name a URL or a key themselves, so "may create an
 * AgentRun" never means "may send the namespace's key anywhere". Using one needs the verb `use`
 * on it (`modelendpoints`, by name): the operator checks it for the run's creator.
 */
import { z } from 'zod';
import { API_VERSION } from './group.ts';
import { objectName } from './primitives.ts';

/** Kind of the model endpoints admins configure. */
export const MODEL_ENDPOINT_KIND = 'ModelEndpoint';
/** Resource name of ModelEndpoints, as RBAC rules (the verb `use`) spell it. */
export const MODEL_ENDPOINT_PLURAL = 'modelendpoints';
/** The RBAC verb that lets a run's creator use an endpoint (and a ServiceAccount for tool pods). */
export const USE_VERB = 'use';
/** Where an endpoint without baseURL sends model calls: Anthropic's public API. */
export const DEFAULT_BASE_URL = 'https://api.anthropic.com';
/** Allows every model of the endpoint. */
export const ANY_MODEL = '*';

/**
 * What an admin configures for a model API: its URL, the Secret with its key, the models runs may
 * use, a maxTokens cap.
 */
export const modelEndpointSpec = z.object({
  provider: z.enum(['anthropic']).default('anthropic').describe(
    'The API the endpoint speaks: the Anthropic Messages API.',
  ),
  baseURL: z.string().max(2048).regex(/^https?:\/\/[^\s]+$/, { error: 'must be an http(s) URL' })
    .default(DEFAULT_BASE_URL)
    .describe('Where the API is. Default https://api.anthropic.com.'),
  apiKeySecretRef: z.object({
    name: objectName("Secret in the endpoint's namespace."),
    key: z.string().min(1).max(253).default('api-key').describe('Key in the Secret. Default api-key.'),
  }).optional().describe(
    'Secret holding the API key. Runs never see it; it is never copied into status, Events or logs.',
  ),
  models: z.array(z.string().min(1).max(128)).min(1).max(64)
    .describe('Model ids runs may use through this endpoint, or "*" for any.'),
  maxTokens: z.int().min(1).max(128_000).optional().describe("Upper bound for a run's spec.model.maxTokens."),
}).describe('ModelEndpointSpec is a model API admins configure: URL, key, allowed models and limits.');
export type ModelEndpointSpec = z.infer<typeof modelEndpointSpec>;

/** A ModelEndpoint as read from the apiserver: metadata kept loose, spec validated. */
export const modelEndpoint = z.object({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal(MODEL_ENDPOINT_KIND),
  metadata: z.object({ name: z.string(), namespace: z.string().optional() }).loose(),
  spec: modelEndpointSpec,
});
export type ModelEndpoint = z.infer<typeof modelEndpoint>;

/** Why a run may not use an endpoint's model, or undefined when it may. */
export function endpointRefusal(endpoint: ModelEndpointSpec, model: string, maxTokens: number): string | undefined {
  if (!endpoint.models.includes(ANY_MODEL) && !endpoint.models.includes(model)) {
    return `model ${model} is not allowed by the endpoint (allowed: ${endpoint.models.join(', ')})`;
  }
  if (endpoint.maxTokens !== undefined && maxTokens > endpoint.maxTokens) {
    return `spec.model.maxTokens ${maxTokens} is above the endpoint's maxTokens ${endpoint.maxTokens}`;
  }
  return undefined;
}
