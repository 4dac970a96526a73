/*
 * test/types/usage-esm.mts: the ESM side of the type check. An .mts file is
 * an ES module under NodeNext, so this resolves 'vecvault' through the
 * "import" condition of package.json exports, as `import` in Node does.
 */
import { VectorDB, VecvaultError } from 'vecvault';
import type { SearchResult } from 'vecvault';

const db = new VectorDB({ dimension: 3, metric: 'l2' });
db.add('a', [1, 2, 3], { any: 'thing' });
const hits: SearchResult[] = await db.searchAsync([1, 2, 3], 1);
const first: unknown = hits[0]?.metadata;
void first;
try {
  db.search([1, 2], 1);
} catch (e) {
  if (e instanceof VecvaultError && e.code === 'ERR_DIMENSION_MISMATCH') db.close();
}

export {};
