/**
 * `npm run cluster:down`: stops the local cluster started by cluster:up (real nodes first, putting
 * back every change they made to this machine) and deletes its state.
 */
import { defaultStateDir } from '../../test/harness/control-plane.ts';
import { stopLocalCluster } from '../../test/harness/local-cluster.ts';

const stateDir = defaultStateDir();
await stopLocalCluster(stateDir);
console.log(`[cluster:down] stopped; removed ${stateDir}`);
