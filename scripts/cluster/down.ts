/** `npm run cluster:down`: stops the local control plane started by cluster:up and deletes its state. */
import { stopControlPlane, defaultStateDir } from '../../test/support/control-plane.ts';

const stateDir = defaultStateDir();
await stopControlPlane(stateDir);
console.log(`[cluster:down] stopped; removed ${stateDir}`);
