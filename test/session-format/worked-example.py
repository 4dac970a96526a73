#!/usr/bin/python3
"""
test/session-format/worked-example.py: prints the worked example of
docs/FORMAT.md section 10 (one sealed page of a paged chunk object), built
with only hashlib, cbor2 and libsodium from the rules of section 4.2, and
checks that it opens again. Fixed nonces make the output reproducible;
real writers draw fresh random nonces.
"""
import hashlib, struct, cbor2, nacl.bindings as nb
K = bytes(range(32))
sid = bytes(range(0xa0, 0xb0))
def sub(i): return hashlib.blake2b(b"", digest_size=32, key=K, salt=struct.pack('<Q', i) + bytes(8), person=b"vvsessn1" + bytes(8)).digest()
k1 = sub(1)
seq, dim = 7, 2
rows = [(0, "a", [1.0, 0.0], '{"x":1}'), (1, "b", [0.0, 1.0], None)]
page = cbor2.dumps({"kind": "chunk", "seq": seq, "dim": dim, "count": 2,
  "slots": b"".join(struct.pack('<I', r[0]) for r in rows),
  "ids": [r[1] for r in rows],
  "vectors": b"".join(struct.pack('<%df' % dim, *r[2]) for r in rows),
  "meta": [r[3] for r in rows]})
nonce_p = bytes(range(0x40, 0x58)); nonce_t = bytes(range(0x60, 0x78))
unit_len = 24 + len(page) + 16
def table(check): return cbor2.dumps({"rows": struct.pack('<I', 2), "bytes": struct.pack('<I', unit_len), "checks": check})
T = len(table(bytes(16)))
header = b"VVOB" + bytes([2, 1, 1, 0]) + struct.pack('<QIIII', seq, 2, dim, 1, T)
ad_p = header + sid + struct.pack('<III', 0, 0, 2)
ct = nb.crypto_aead_xchacha20poly1305_ietf_encrypt(page, ad_p, nonce_p, k1)
unit = nonce_p + ct
tab = table(ct[-16:])
tct = nb.crypto_aead_xchacha20poly1305_ietf_encrypt(tab, header + sid, nonce_t, k1)
tunit = nonce_t + tct
name = hashlib.blake2b(header + tunit, digest_size=32).hexdigest()
f = header + tunit + unit
# round trip
assert nb.crypto_aead_xchacha20poly1305_ietf_decrypt(f[32+24:32+len(tunit)], header + sid, f[32:56], k1) == tab
u = f[32+len(tunit):]
assert nb.crypto_aead_xchacha20poly1305_ietf_decrypt(u[24:], ad_p, u[:24], k1) == page
def h(b): return b.hex()
def wrap(x, n=64): return "\n".join(x[i:i+n] for i in range(0, len(x), n))
print("master key   ", h(K)); print("sessionId    ", h(sid)); print("subkey 1     ", h(k1))
print("page plaintext (%d bytes)\n%s" % (len(page), wrap(h(page))))
print("header       ", h(header))
print("page AD (60) \n" + wrap(h(ad_p)))
print("page unit (%d bytes: nonce, ciphertext, tag)\n%s" % (len(unit), wrap(h(unit))))
print("table plaintext (%d bytes)\n%s" % (len(tab), wrap(h(tab))))
print("table unit (%d bytes)\n%s" % (len(tunit), wrap(h(tunit))))
print("name         ", name); print("file bytes   ", len(f))
