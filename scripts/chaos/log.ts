/**
 * The chaos suite's logger (one prefix for every module of the suite).
 */
import { log as logger } from '../../test/harness/measure.ts';

/** The chaos suite's logger. */
export const log = logger('chaos');
