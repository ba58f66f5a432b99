/** The key and URL a model call uses, read from the run's ModelEndpoint when the call starts. */
import { modelEndpointSpec } from '../api/model-endpoint.ts';
import type { Caches, SecretReader } from '../ports.ts';

/**
 * Reads the endpoint when the call starts (not when the run started): an admin who rotates the
 * endpoint's key or URL is heard at the next call. Throws with what to do when it is missing.
 */
export function endpointCredentials(caches: Caches, secrets: SecretReader, namespace: string, endpointName: string) {
  return async (): Promise<{ apiKey: string | undefined; baseURL: string }> => {
    const found = modelEndpointSpec.safeParse(caches.modelEndpoint(namespace, endpointName)?.spec);
    if (!found.success)
      throw new Error(
        `ModelEndpoint ${namespace}/${endpointName} does not exist or is invalid: ask an admin to create it`,
      );
    const secretRef = found.data.apiKeySecretRef;
    return {
      apiKey: secretRef ? await secrets.read(namespace, secretRef.name, secretRef.key) : undefined,
      baseURL: found.data.baseURL,
    };
  };
}
