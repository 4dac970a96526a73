'use strict';
/*
 * test/helpers/cli-hold.js: preloaded into a CLI child (`node -r`) by the
 * Ctrl-C tests, so they can interrupt an operation that is certainly still
 * running, without timing. Test-only: nothing in lib/ knows of it.
 *
 * VV_TEST_HOLD=<method>:<n>[:stuck] holds the (n+1)-th call of
 * DirStorage.prototype.<method> for an object (objects/...): it prints
 * "test-hold: <method> held" on stderr and waits until the call's signal
 * aborts, then rejects with an AbortError. With ":stuck" it ignores the abort
 * and keeps the process alive, as a call stuck in the kernel would.
 */
const path = require('node:path');
const { DirStorage } = require(path.join(__dirname, '..', '..', 'lib', 'storage', 'dir'));

const [method, count, mode] = String(process.env.VV_TEST_HOLD || '').split(':');
const original = DirStorage.prototype[method];
if (typeof original !== 'function') throw new Error(`VV_TEST_HOLD: no DirStorage method ${JSON.stringify(method)}`);
let calls = 0;
DirStorage.prototype[method] = function held(name, ...rest) {
  if (!String(name).startsWith('objects/') || calls++ < Number(count)) return original.call(this, name, ...rest);
  process.stderr.write(`test-hold: ${method} held\n`);
  const options = rest[rest.length - 1];
  const signal = options && options.signal;
  return new Promise((resolve, reject) => {
    if (mode === 'stuck') {
      setInterval(() => {}, 1 << 30);
      return;
    }
    const abort = () => reject(Object.assign(new Error('held call aborted'), { name: 'AbortError' }));
    if (!signal) throw new Error('VV_TEST_HOLD: the held call has no signal');
    if (signal.aborted) abort();
    else signal.addEventListener('abort', abort, { once: true });
  });
};
