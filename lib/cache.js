'use strict';
// VectorDB.Cache: one byte budget shared by the sessions loaded with it
// (README, "Many sessions, one cache budget"). Options are validated here;
// the budget, its eviction order and its bound live in the engine
// (csrc/cache/). Each session loaded with a Cache holds the budget too, so
// dropping the last JS reference to a Cache never pulls it from under them.
const native = require('./native');
const { parseCacheOptions, parseMaxMb, cacheBytes, invalid, describe } = require('./options');

let unwrap;

class Cache {
  #native;
  #maxMb;

  /** @param {{maxMb: number}} options the budget in MiB, over every session loaded with this cache */
  constructor(options) {
    const { maxMb } = parseCacheOptions(options);
    this.#native = new native.Cache(cacheBytes(maxMb));
    this.#maxMb = maxMb;
  }

  /** The budget in MiB. */
  get maxMb() {
    return Cache.#check(this).#maxMb;
  }

  /**
   * The whole budget: bytes cached now over every session (never above
   * capacityBytes), counts summed over its sessions, and how many sessions
   * use it now. A session's own share is its db.cacheStats().
   * @returns {{bytes, capacityBytes, hits, misses, evictions, bypasses, entries, sessions}}
   */
  stats() {
    const s = Cache.#check(this).#native.stats();
    return {
      bytes: s.bytes,
      capacityBytes: s.capacityBytes,
      hits: s.hits,
      misses: s.misses,
      evictions: s.evictions,
      bypasses: s.bypasses,
      entries: s.entries,
      sessions: s.sessions,
    };
  }

  /** Changes the budget (MiB, the cacheSizeMb rule); evicts at once if needed. */
  setMaxMb(mb) {
    const n = Cache.#check(this).#native;
    const v = parseMaxMb(mb);
    n.setSize(cacheBytes(v));
    this.#maxMb = v;
  }

  /* A typed error, not V8's TypeError, for a method called on something else. */
  static #check(self) {
    if (!unwrap(self)) throw invalid(`not a VectorDB.Cache: ${describe(self)}`);
    return self;
  }

  static {
    unwrap = (c) => (c !== null && typeof c === 'object' && #native in c ? c.#native : undefined);
  }
}

/** load()'s `cache` option: the native cache behind a Cache, or undefined when left out. */
function sharedCache(v) {
  if (v === undefined) return undefined;
  const n = unwrap(v);
  if (!n) throw invalid(`cache must be a VectorDB.Cache, got ${describe(v)}`);
  return n;
}

module.exports = { Cache, sharedCache };
