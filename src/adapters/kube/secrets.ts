/** Reads the model API key from the run's Secret. The value never leaves this call's result. */
import type { CoreV1Api } from '@kubernetes/client-node';
import type { SecretReader } from '../../ports.ts';
import { ApiError, describeError, isNotFound } from '../../port-errors.ts';
import { kubeCall } from './errors.ts';

/** The Secret or its key is missing or unreadable; the message says which and what to do. */
export class SecretUnavailableError extends Error {
  override name = 'SecretUnavailableError';
}

/** Reads one key of a Secret, saying what to fix when it cannot. */
export class KubeSecretReader implements SecretReader {
  private readonly core: CoreV1Api;
  constructor(core: CoreV1Api) {
    this.core = core;
  }

  async read(namespace: string, name: string, key: string): Promise<string> {
    let data: Record<string, string> | undefined;
    try {
      data = (await kubeCall(() => this.core.readNamespacedSecret({ namespace, name }))).data;
    } catch (error) {
      const secret = `Secret ${namespace}/${name}`;
      if (isNotFound(error)) {
        throw new SecretUnavailableError(`${secret} does not exist: create it with the API key under key ${key}`);
      }
      if (error instanceof ApiError && error.status === 403) {
        throw new SecretUnavailableError(`the operator may not read ${secret} (RBAC): grant it get on that Secret`);
      }
      throw new SecretUnavailableError(`reading Secret ${namespace}/${name} failed: ${describeError(error)}`);
    }
    const encoded = data?.[key];
    if (!encoded) {
      throw new SecretUnavailableError(`Secret ${namespace}/${name} has no key ${key}: add the API key under that key`);
    }
    return Buffer.from(encoded, 'base64').toString('utf8').trim();
  }
}
