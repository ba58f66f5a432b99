/**
 * The adapters' one mapping from client-node errors to the ports' typed errors: the reconciler
 * tells cases apart by class, so every status it treats differently must map to its own class.
 */
import { ApiException } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { kubeCall, toPortError } from '../../src/adapters/kube/errors.ts';
import {
  AlreadyExistsError, ApiError, NotFoundError, StaleWriteError, WriteRejectedError,
  describeError, isAlreadyExists, isConflict, isNotFound, writeRejection,
} from '../../src/port-errors.ts';

const status = (code: number, body: object | string) =>
  new ApiException(code, `HTTP-Code: ${code}\nBody: secret request body`, typeof body === 'string' ? body : JSON.stringify(body), {});

describe('toPortError', () => {
  it.each([
    [404, { reason: 'NotFound', message: 'agentruns "x" not found' }, NotFoundError, '404: agentruns "x" not found'],
    [409, { reason: 'AlreadyExists', message: 'pods "p" already exists' }, AlreadyExistsError, '409: pods "p" already exists'],
    [409, { reason: 'Conflict', message: 'the object has been modified' }, StaleWriteError, '409: the object has been modified'],
    [413, { message: 'request entity too large' }, WriteRejectedError, '413: request entity too large'],
    [422, { reason: 'Invalid', message: 'spec.x: Invalid value' }, WriteRejectedError, '422: spec.x: Invalid value'],
    [500, 'not json', ApiError, 'HTTP 500'],
  ])('HTTP %i maps to its class, with the apiserver\'s message and never the request body', (code, body, type, message) => {
    const mapped = toPortError(status(code, body));
    expect(mapped).toBeInstanceOf(type);
    expect((mapped as ApiError).status).toBe(code);
    expect(describeError(mapped)).toBe(message);
    expect(describeError(mapped)).not.toContain('secret request body');
  });

  it('the predicates the reconciler uses see only the typed errors, each its own case', () => {
    const notFound = toPortError(status(404, {}));
    const exists = toPortError(status(409, { reason: 'AlreadyExists' }));
    const stale = toPortError(status(409, { reason: 'Conflict' }));
    const refused = toPortError(status(422, { message: 'x'.repeat(2000) }));
    expect([isNotFound(notFound), isAlreadyExists(exists), isConflict(stale)]).toEqual([true, true, true]);
    expect([isConflict(exists), isAlreadyExists(stale), isNotFound(stale)]).toEqual([false, false, false]);
    expect(writeRejection(refused)?.message.length).toBe(512);
    expect(writeRejection(stale)).toBeUndefined();
    // The raw client error is not what the ports speak: unmapped, nothing matches.
    expect(isNotFound(status(404, {}))).toBe(false);
  });

  it('kubeCall passes results through and maps failures; other errors are unchanged', async () => {
    expect(await kubeCall(() => Promise.resolve(7))).toBe(7);
    await expect(kubeCall(() => Promise.reject(status(404, {})))).rejects.toBeInstanceOf(NotFoundError);
    const plain = new Error('socket hang up');
    await expect(kubeCall(() => Promise.reject(plain))).rejects.toBe(plain);
  });
});
