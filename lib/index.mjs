// ES module entry: the same classes as the CommonJS entry (one instance).
import cjs from './index.js';

export const { VectorDB, VecvaultError, ERROR_CODES, MemoryStorage, DirStorage, FaultStorage, simd } = cjs;
export default cjs;
