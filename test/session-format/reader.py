#!/usr/bin/python3
"""
test/session-format/reader.py: an independent reader of vecvault sessions.

Written only from docs/FORMAT.md (format versions 1 to 4), with Debian's
python3-cbor2 and python3-nacl and nothing of vecvault's own code, so that the
format, not the implementation, is what the tests hold vecvault to. It
verifies everything the spec states (frame, sum, key check, MAC, object size,
hash, header and AEAD tag, the exact CBOR schema of the session's version, the
PQ codebook and codes of version 2, version 3's paged objects with their page
table and per-page checks and associated data (section 4.2), version 4's
filterable field paths and per-node attribute records, the index rules of
section 5.3) and prints

    {"generation": G, "sessionId": "...", "vectors": [{"id", "vector", "metadata"}, ...]}

sorted by id. A version-4 session adds "fields" (the declared paths) at the
top and "attributes" to each vector: {path: [values...]} for every path that
is present (an empty list: present with no scalar value), a missing path
left out; values in the order stored, repeats dropped. On any failure it prints {"error": "ERR_...", "message": "..."}
with the error code vecvault itself would report, and exits with status 2.

Usage: /usr/bin/python3 reader.py DIR [--key HEX | --passphrase TEXT | --passphrase-hex HEX]
"""
import array
import hashlib
import hmac
import json
import math
import os
import re
import struct
import sys

import cbor2
import nacl.bindings as nb

MANIFEST_MAX = 64 * 1024 * 1024
OPSLIMIT_CAP = 16
MEMLIMIT_CAP = 1 << 30
HEX64 = re.compile(r"[0-9a-f]{64}\Z")
ID_MAX = 4096
META_MAX = 16 * 1024 * 1024
VERSIONS = (1, 2, 3, 4)  # the format versions this reader knows
PAGE_UNIT_MAX = 64 * 1024 * 1024  # section 4.2: a page unit is at most 64 MiB


class Fail(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def manifest_corrupt(msg):
    return Fail("ERR_MANIFEST_CORRUPT", "manifest.json: " + msg)


def b2(data, key=b"", salt=b"", person=b""):
    return hashlib.blake2b(data, digest_size=32, key=key, salt=salt, person=person).digest()


def unhex(s, n, what):
    if not isinstance(s, str) or len(s) != 2 * n or not re.fullmatch(r"[0-9a-f]*", s):
        raise manifest_corrupt("%s is not %d lowercase hex digits" % (what, 2 * n))
    return bytes.fromhex(s)


# ---- section 3: manifest.json ------------------------------------------------

def reject_float(s):
    raise manifest_corrupt("a number with a fraction or exponent: " + s)


def reject_constant(s):
    raise manifest_corrupt("not JSON: " + s)


def no_duplicates(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise manifest_corrupt("duplicate key " + k)
        d[k] = v
    return d


def is_int(v):
    return type(v) is int


def need_int(obj, key, lo, hi, what=None):
    v = obj[key]
    if not is_int(v) or v < lo or (hi is not None and v > hi):
        raise manifest_corrupt("%s must be an integer in %s..%s, got %r" % (what or key, lo, hi, v))
    return v


def exact_keys(obj, keys, what):
    if not isinstance(obj, dict) or set(obj.keys()) != set(keys):
        got = sorted(obj.keys()) if isinstance(obj, dict) else type(obj).__name__
        raise manifest_corrupt("%s must have exactly %s, got %s" % (what, sorted(keys), got))


TOP = ["format", "version", "sessionId", "generation", "parent", "createdAt", "dimension", "metric",
       "indexKind", "hnsw", "chunkSize", "totalVectors", "slotCount", "graph", "nextChunkSeq",
       "nextIndexSeq", "encryption", "chunks", "index"]


def read_manifest(d):
    path = os.path.join(d, "manifest.json")
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise Fail("ERR_NOT_FOUND", "no manifest.json in " + d)
    if st.st_size > MANIFEST_MAX:
        raise manifest_corrupt("larger than 64 MiB")
    with open(path, "rb") as f:
        raw = f.read()
    if (len(raw) < 154 + 2 or raw[0:8] != b'{"sum":"' or raw[72:81] != b'","mac":"'
            or raw[145:154] != b'","body":' or raw[-2:] != b"}\n"):
        raise manifest_corrupt("not the frame of section 3")
    sum_hex, mac_hex, body = raw[8:72], raw[81:145], raw[154:-2]
    if not HEX64.match(sum_hex.decode("latin1")):
        raise manifest_corrupt("sum is not 64 lowercase hex digits")
    if not hmac.compare_digest(b2(body), bytes.fromhex(sum_hex.decode())):
        raise manifest_corrupt("sum does not match the body")
    try:
        m = json.loads(body.decode("utf-8"), object_pairs_hook=no_duplicates,
                       parse_float=reject_float, parse_constant=reject_constant)
    except Fail:
        raise
    except (ValueError, UnicodeDecodeError) as e:
        raise manifest_corrupt("body is not JSON: %s" % e)
    if not isinstance(m, dict):
        raise manifest_corrupt("body is not an object")
    # The version decides what the rest means, so it is looked at first.
    if "version" in m and is_int(m["version"]) and m["version"] > VERSIONS[-1]:
        raise Fail("ERR_UNSUPPORTED_VERSION", "format version %d" % m["version"])
    check_schema(m)
    return raw, body, mac_hex.decode("latin1"), m


def check_schema(m):
    exact_keys(m, TOP, "body")
    if m["format"] != "vecvault-session":
        raise manifest_corrupt("format")
    need_int(m, "version", VERSIONS[0], VERSIONS[-1])
    unhex(m["sessionId"], 16, "sessionId")
    need_int(m, "generation", 1, None)
    if m["parent"] is not None:
        unhex(m["parent"], 32, "parent")
    if not isinstance(m["createdAt"], str) or not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", m["createdAt"]):
        raise manifest_corrupt("createdAt")
    need_int(m, "dimension", 1, 65536)
    if m["metric"] not in ("cosine", "l2", "dot"):
        raise manifest_corrupt("metric")
    if m["indexKind"] not in ("hnsw", "flat"):
        raise manifest_corrupt("indexKind")
    exact_keys(m["hnsw"], ["m", "efConstruction", "efSearch"], "hnsw")
    need_int(m["hnsw"], "m", 2, 128, "hnsw.m")
    need_int(m["hnsw"], "efConstruction", 1, None, "hnsw.efConstruction")
    need_int(m["hnsw"], "efSearch", 1, None, "hnsw.efSearch")
    need_int(m, "chunkSize", 1, None)
    slot_count = need_int(m, "slotCount", 0, None)
    need_int(m, "totalVectors", 0, slot_count)
    g = m["graph"]
    exact_keys(g, ["entry", "maxLevel"], "graph")
    need_int(g, "maxLevel", -1, 16, "graph.maxLevel")
    if g["entry"] is None:
        if g["maxLevel"] != -1:
            raise manifest_corrupt("graph.entry is null but maxLevel is not -1")
    else:
        need_int(g, "entry", 0, slot_count - 1, "graph.entry")
        if g["maxLevel"] < 0:
            raise manifest_corrupt("graph.entry set with maxLevel -1")
    if m["indexKind"] == "flat" and (g["entry"] is not None):
        raise manifest_corrupt("a flat index has a graph entry")
    next_chunk = need_int(m, "nextChunkSeq", 0, None)
    next_index = need_int(m, "nextIndexSeq", 0, None)
    e = m["encryption"]
    if e is not None:
        if not isinstance(e, dict) or e.get("kdf") not in ("raw", "argon2id13"):
            raise manifest_corrupt("encryption.kdf")
        if e["kdf"] == "raw":
            exact_keys(e, ["algorithm", "kdf", "keyCheck"], "encryption")
        else:
            exact_keys(e, ["algorithm", "kdf", "salt", "opslimit", "memlimit", "wrappedKey", "keyCheck"], "encryption")
            unhex(e["salt"], 16, "salt")
            unhex(e["wrappedKey"], 72, "wrappedKey")
            need_int(e, "opslimit", 1, None)
            need_int(e, "memlimit", 1, None)
        if e["algorithm"] != "xchacha20poly1305-ietf":
            raise manifest_corrupt("encryption.algorithm")
        unhex(e["keyCheck"], 32, "keyCheck")
    if not isinstance(m["chunks"], list):
        raise manifest_corrupt("chunks")
    seqs = set()
    for c in m["chunks"]:
        exact_keys(c, ["name", "seq", "count", "bytes", "slotMin", "slotMax"], "chunk entry")
        check_ref(c)
        if c["seq"] >= next_chunk or c["seq"] in seqs:
            raise manifest_corrupt("chunk seq %r is duplicated or not below nextChunkSeq" % c["seq"])
        seqs.add(c["seq"])
        need_int(c, "slotMin", 0, None)
        need_int(c, "slotMax", 0, None)
    ix = m["index"]
    exact_keys(ix, ["base", "deltas"], "index")
    seqs = set()
    for part in ("base", "deltas"):
        if not isinstance(ix[part], list):
            raise manifest_corrupt("index." + part)
        for s in ix[part]:
            exact_keys(s, ["name", "seq", "count", "bytes"], "index segment entry")
            check_ref(s)
            if s["seq"] >= next_index or s["seq"] in seqs:
                raise manifest_corrupt("index seq %r is duplicated or not below nextIndexSeq" % s["seq"])
            seqs.add(s["seq"])


def check_ref(o):
    if not isinstance(o["name"], str) or not HEX64.match(o["name"]):
        raise manifest_corrupt("object name %r is not 64 lowercase hex digits" % (o["name"],))
    need_int(o, "seq", 0, None)
    need_int(o, "count", 0, None)
    need_int(o, "bytes", 0, None)


# ---- section 2: keys -----------------------------------------------------------

def subkey(master, i):
    k = b2(b"", key=master, salt=struct.pack("<Q", i) + bytes(8), person=b"vvsessn1" + bytes(8))
    # The same derivation through libsodium's own BLAKE2b, as a cross-check.
    k2 = nb.crypto_generichash_blake2b_salt_personal(b"", digest_size=32, key=master,
                                                     salt=struct.pack("<Q", i) + bytes(8),
                                                     person=b"vvsessn1" + bytes(8))
    assert k == k2
    return k


def master_key(m, secret):
    e = m["encryption"]
    sid = bytes.fromhex(m["sessionId"])
    kind, value = secret
    if e is None:
        if kind is not None:
            raise Fail("ERR_MANIFEST_AUTH", "a key was given for an unencrypted session (possible downgrade)")
        return None
    if kind is None:
        raise Fail("ERR_KEY_REQUIRED", "the session is encrypted")
    if e["kdf"] == "raw":
        if kind != "key":
            raise Fail("ERR_WRONG_KEY", "the session was saved with a raw key")
        master = value
    else:
        if kind != "passphrase":
            raise Fail("ERR_WRONG_KEY", "the session was saved with a passphrase")
        if e["opslimit"] > OPSLIMIT_CAP or e["memlimit"] > MEMLIMIT_CAP:
            raise manifest_corrupt("argon2id limits above the caps of section 2")
        kek = nb.crypto_pwhash_alg(32, value, bytes.fromhex(e["salt"]), e["opslimit"], e["memlimit"],
                                   nb.crypto_pwhash_ALG_ARGON2ID13)
        w = bytes.fromhex(e["wrappedKey"])
        try:
            master = nb.crypto_aead_xchacha20poly1305_ietf_decrypt(w[24:], b"vecvault-key-wrap" + sid, w[:24], kek)
        except Exception:
            raise Fail("ERR_WRONG_KEY", "the passphrase does not unwrap the key")
        if len(master) != 32:
            raise manifest_corrupt("the wrapped key is not 32 bytes")
    check = b2(b"vecvault key check v1" + sid, key=subkey(master, 4))
    if not hmac.compare_digest(check, bytes.fromhex(e["keyCheck"])):
        raise Fail("ERR_WRONG_KEY", "the key check does not match")
    return master


# ---- section 5: strict CBOR ------------------------------------------------------

def cbor_walk(b, i, depth):
    """Checks one item at b[i:] against section 5's rules; returns its end."""
    if depth > 6:
        raise ValueError("nested too deeply")
    if i >= len(b):
        raise ValueError("truncated")
    ib = b[i]
    mt, ai = ib >> 5, ib & 31
    i += 1
    if mt == 7:
        if ai in (20, 21, 22):
            return i
        raise ValueError("simple value or float 0x%02x" % ib)
    if mt in (1, 6):
        raise ValueError("negative integer or tag")
    if ai < 24:
        val = ai
    elif ai in (24, 25, 26, 27):
        n = 1 << (ai - 24)
        if i + n > len(b):
            raise ValueError("truncated argument")
        val = int.from_bytes(b[i:i + n], "big")
        i += n
        if val < (24 if n == 1 else 1 << (8 * n // 2)):
            raise ValueError("integer not in its shortest encoding")
    else:
        raise ValueError("indefinite length or reserved additional info")
    if mt == 0:
        return i
    if mt in (2, 3):
        if val > len(b) - i:
            raise ValueError("string longer than the remaining bytes")
        if mt == 3:
            b[i:i + val].decode("utf-8")
        return i + val
    if val > len(b) - i:
        raise ValueError("more items declared than bytes remain")
    for _ in range(val):
        if mt == 5:
            if i >= len(b) or b[i] >> 5 != 3:
                raise ValueError("map key is not text")
            i = cbor_walk(b, i, depth + 1)
        i = cbor_walk(b, i, depth + 1)
    return i


def cbor_decode(plain, keys):
    end = cbor_walk(plain, 0, 0)
    if end != len(plain):
        raise ValueError("trailing bytes")
    if plain[0] != 0xa0 + len(keys):
        raise ValueError("top level is not a map(%d)" % len(keys))
    return cbor_checked(plain, keys)


def cbor_checked(plain, keys):
    v = cbor2.loads(plain)
    if not isinstance(v, dict) or list(v.keys()) != keys:
        raise ValueError("keys %r, want %r in that order" % (list(v.keys()) if isinstance(v, dict) else v, keys))
    return v


SEGMENT_KEYS = {
    1: ["kind", "seq", "base", "count", "nodes"],
    2: ["kind", "seq", "base", "count", "pq", "nodes"],
}


def decode_segment(plain, version):
    """Section 5.2: the map's size says which version wrote the segment, and
    that must be the manifest's version (version 3 pages use version 2's
    schema, section 4.2)."""
    version = min(version, 2)
    end = cbor_walk(plain, 0, 0)
    if end != len(plain):
        raise ValueError("trailing bytes")
    seen = {0xa0 + len(k): ver for ver, k in SEGMENT_KEYS.items()}.get(plain[0])
    if seen is None:
        raise ValueError("top level is not a map(5) or map(6)")
    if seen != version:
        raise ValueError("a version-%d index segment in a version-%d session" % (seen, version))
    return cbor_checked(plain, SEGMENT_KEYS[version])


# ---- versions 3 and 4: the columnar index page (section 5.2) ---------------------
#
# An index page of a version-3 object is a segment map whose "nodes" are
# replaced by "blocks", each block a map of columns (byte strings) holding
# its nodes column by column. Version 4 adds "fields" to page 0 of the first
# base segment and two columns, "attrlens" and "attrs", to every block.

SEG3_KEYS = ["kind", "seq", "base", "count", "pq", "blocks"]
SEG4_KEYS = ["kind", "seq", "base", "count", "pq", "fields", "blocks"]
BLOCK_KEYS = ["count", "slots", "flags", "idlens", "ids", "locs", "links", "m", "codes"]
BLOCK4_KEYS = BLOCK_KEYS + ["attrlens", "attrs"]
MAX_FIELDS = 64
MAX_PATH = 256
MAX_ATTRS = 16 << 20
MAX_VALUES = 4096
MAX_STRING = 65535
MAX_SLOT = (1 << 31) - 1
MAX_LEVELS = 17
MAX_LINKS = 256
MAX_CODE = 65536


class Column:
    """A cursor over one byte-string column."""

    def __init__(self, data, what):
        self.b, self.i, self.what = data, 0, what

    def varint(self, hi):
        """Unsigned LEB128, shortest form, at most `hi`."""
        v, shift = 0, 0
        while True:
            if self.i >= len(self.b):
                raise ValueError("%s: a varint runs past the column" % self.what)
            c = self.b[self.i]
            self.i += 1
            v |= (c & 0x7F) << shift
            if c < 0x80:
                if c == 0 and shift:
                    raise ValueError("%s: a varint not in its shortest form" % self.what)
                break
            shift += 7
            if shift > 63:
                raise ValueError("%s: a varint past 64 bits" % self.what)
        if v > hi:
            raise ValueError("%s: %d is above %d" % (self.what, v, hi))
        return v

    def take(self, n):
        if n > len(self.b) - self.i:
            raise ValueError("%s: %d bytes past the column" % (self.what, n))
        out = self.b[self.i:self.i + n]
        self.i += n
        return out

    def ended(self):
        return self.i == len(self.b)


def read_links(col):
    """One level: n, the smallest link, the width w, then n - 1 gaps of w bits
    (LSB first) between the sorted links; w is the smallest that holds the
    largest gap and the padding bits are zero."""
    n = col.varint(MAX_LINKS)
    if n == 0:
        return []
    first = col.varint(MAX_SLOT)
    if n == 1:
        return [first]
    w = col.take(1)[0]
    if w > 31:
        raise ValueError("links: width %d" % w)
    bits = (n - 1) * w
    packed = int.from_bytes(col.take((bits + 7) // 8), "little")
    if packed >> bits:
        raise ValueError("links: padding bits are not zero")
    out, v, or_all = [first], first, 0
    for j in range(n - 1):
        gap = (packed >> (j * w)) & ((1 << w) - 1)
        or_all |= gap
        v += gap
        out.append(v)
    if or_all.bit_length() != w:
        raise ValueError("links: width %d is not the smallest for these gaps" % w)
    if v > MAX_SLOT:
        raise ValueError("links: a link above 2^31 - 1")
    return out


def decode_block(blk):
    """The block's nodes as version-2 records [slot, id, chunk, row, links,
    code], plus (version 4) the raw attribute record as a seventh element."""
    n = blk["count"]
    if not is_int(n) or not 1 <= n <= 10000000:
        raise ValueError("block count %r" % (n,))
    v4 = "attrs" in blk
    for k in BLOCK_KEYS[1:7] + ["codes"] + (["attrlens", "attrs"] if v4 else []):
        if not isinstance(blk[k], bytes):
            raise ValueError("block %s is not bytes" % k)
    m = blk["m"]
    if not is_int(m) or m > MAX_CODE:
        raise ValueError("block m %r" % (m,))
    flags = blk["flags"]
    if len(flags) != n:
        raise ValueError("flags: %d bytes for %d nodes" % (len(flags), n))
    coded = 0
    for f in flags:
        if f & 0x60 or (f & 0x1F) > MAX_LEVELS:
            raise ValueError("flags byte 0x%02x" % f)
        coded += f >> 7
    if (m == 0) != (coded == 0) or len(blk["codes"]) != coded * m:
        raise ValueError("codes: %d bytes for %d coded nodes of %d bytes" % (len(blk["codes"]), coded, m))
    try:
        blk["ids"].decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("ids are not UTF-8")
    slots, idlens, ids = Column(blk["slots"], "slots"), Column(blk["idlens"], "idlens"), Column(blk["ids"], "ids")
    locs, links, codes = Column(blk["locs"], "locs"), Column(blk["links"], "links"), Column(blk["codes"], "codes")
    cols = [slots, idlens, ids, locs, links, codes]
    if v4:
        attrlens, attrs = Column(blk["attrlens"], "attrlens"), Column(blk["attrs"], "attrs")
        cols += [attrlens, attrs]
    nodes, prev = [], 0
    for i in range(n):
        zz = slots.varint(0xFFFFFFFF)
        slot = prev + (-(zz >> 1) - 1 if zz & 1 else zz >> 1)
        if not 0 <= slot <= MAX_SLOT:
            raise ValueError("slot %d" % slot)
        prev = slot
        idlen = idlens.varint(ID_MAX)
        nid = None
        if idlen:
            raw = ids.take(idlen)
            if raw[0] & 0xC0 == 0x80:
                raise ValueError("an id starts inside a UTF-8 sequence")
            nid = raw.decode("utf-8")
        chunk = locs.varint((1 << 64) - 1)
        row = locs.varint(0xFFFFFFFF)
        lv = []
        for _ in range(flags[i] & 0x1F):
            lv.append(b"".join(struct.pack("<I", t) for t in read_links(links)))
        code = codes.take(m) if flags[i] & 0x80 else None
        nodes.append([slot, nid, chunk, row, lv, code])
        if v4:
            nodes[-1].append(attrs.take(attrlens.varint(MAX_ATTRS)))
    for c in cols:
        if not c.ended():
            raise ValueError("%s: bytes left after the last node" % c.what)
    return nodes


def check_fields(fields):
    """Section 5.2, version 4: 1..64 distinct paths of 1..256 bytes of UTF-8
    (cbor_walk checked the UTF-8) without NUL."""
    if not isinstance(fields, list) or not 1 <= len(fields) <= MAX_FIELDS:
        raise ValueError("fields is not an array of 1..%d paths" % MAX_FIELDS)
    for f in fields:
        if not isinstance(f, str) or not 1 <= len(f.encode("utf-8")) <= MAX_PATH or "\0" in f:
            raise ValueError("field path %r" % (f,))
    if len(set(fields)) != len(fields):
        raise ValueError("a field path appears twice")


def decode_segment3(plain, version):
    """A version-3 or 4 index page: the segment header, then its blocks.
    The header may have "fields" (version 4 only; where it may appear is
    checked by the caller; the map has the key only then); every block has
    the columns of the session's version."""
    if version >= 4 and plain[:1] == b"\xa7":
        v = cbor_decode(plain, SEG4_KEYS)
        check_fields(v["fields"])
    else:
        v = cbor_decode(plain, SEG3_KEYS)
    keys = BLOCK4_KEYS if version >= 4 else BLOCK_KEYS
    if not isinstance(v["blocks"], list) or not is_int(v["count"]):
        raise ValueError("blocks or count")
    if (v["count"] and not v["blocks"]) or len(v["blocks"]) > v["count"]:
        raise ValueError("%d blocks for %d nodes" % (len(v["blocks"]), v["count"]))
    if not isinstance(v["base"], bool):
        raise ValueError("base is not a bool")
    nodes = []
    for blk in v["blocks"]:
        if not isinstance(blk, dict) or list(blk.keys()) != keys:
            raise ValueError("a block is not a map with keys %r in that order" % keys)
        nodes += decode_block(blk)
    if len(nodes) != v["count"]:
        raise ValueError("the blocks hold %d nodes, count is %d" % (len(nodes), v["count"]))
    del v["blocks"]
    v["nodes"] = nodes
    return v


# ---- section 4: objects ---------------------------------------------------------

CHUNK_KEYS = ["kind", "seq", "dim", "count", "slots", "ids", "vectors", "meta"]


def read_object(d, ref, kind, m, master):
    name = ref["name"]
    where = "%s object %s" % ("chunk" if kind == 1 else "index", name)

    def corrupt(why):
        return Fail("ERR_CHUNK_CORRUPT", "%s: %s" % (where, why))

    path = os.path.join(d, "objects", name)
    try:
        with open(path, "rb") as f:
            data = f.read(ref["bytes"] + 1)
    except FileNotFoundError:
        raise Fail("ERR_CHUNK_MISSING", where + " is missing")
    if len(data) != ref["bytes"]:
        raise corrupt("size %d, manifest says %d" % (len(data), ref["bytes"]))
    if m["version"] >= 3:
        return read_paged_object(data, ref, kind, m, master, corrupt)
    if b2(data).hex() != name:
        raise corrupt("BLAKE2b-256 of the file is not its name")
    enc = m["encryption"] is not None
    if len(data) < 24:
        raise corrupt("shorter than a header")
    hdr = data[:24]
    seq, plen = struct.unpack("<QQ", hdr[8:24])
    if hdr[0:4] != b"VVOB" or hdr[4] != 1 or hdr[5] != kind or hdr[6] != (1 if enc else 0) or hdr[7] != 0:
        raise corrupt("header magic, version, kind, flags or reserved byte")
    if seq != ref["seq"]:
        raise corrupt("header seq %d, manifest says %d" % (seq, ref["seq"]))
    if len(data) != (24 + 24 + plen + 16 if enc else 24 + plen):
        raise corrupt("plaintext length %d does not fit the file size" % plen)
    if enc:
        sid = bytes.fromhex(m["sessionId"])
        try:
            plain = nb.crypto_aead_xchacha20poly1305_ietf_decrypt(data[48:], hdr + sid, data[24:48],
                                                                  subkey(master, 1 if kind == 1 else 2))
        except Exception:
            raise corrupt("AEAD authentication failed")
    else:
        plain = data[24:]
    if len(plain) != plen:
        raise corrupt("plaintext length")
    try:
        if kind == 1:
            v = cbor_decode(plain, CHUNK_KEYS)
        else:
            v = decode_segment(plain, m["version"])
    except (ValueError, cbor2.CBORDecodeError) as e:
        raise corrupt("CBOR: %s" % e)
    if v["kind"] != ("chunk" if kind == 1 else "index") or v["seq"] != seq:
        raise corrupt("kind or seq in the CBOR")
    if v["count"] != ref["count"]:
        raise corrupt("count %r, manifest says %d" % (v["count"], ref["count"]))
    return v, corrupt


def paged_units(data, ref, kind, m, master, corrupt):
    """Section 4.2: checks the header, the name and the page table of a paged
    object; yields (page, first row, rows, plaintext) for each page, each
    checked against the table and (encrypted) opened under its own
    associated data."""
    enc = m["encryption"] is not None
    if len(data) < 32:
        raise corrupt("shorter than a paged header")
    hdr = data[:32]
    seq, rows, dim, npages, tlen = struct.unpack("<QIIII", hdr[8:32])
    if hdr[0:4] != b"VVOB" or hdr[4] != 2 or hdr[5] != kind or hdr[6] != (1 if enc else 0) or hdr[7] != 0:
        raise corrupt("header magic, version, kind, flags or reserved byte")
    if seq != ref["seq"]:
        raise corrupt("header seq %d, manifest says %d" % (seq, ref["seq"]))
    if rows != ref["count"]:
        raise corrupt("header rows %d, manifest says %d" % (rows, ref["count"]))
    if dim != (m["dimension"] if kind == 1 else 0):
        raise corrupt("header dimension %d" % dim)
    if not 1 <= npages <= max(rows, 1):
        raise corrupt("header pages %d for %d rows" % (npages, rows))
    if tlen > 24 * npages + 64:
        raise corrupt("table length %d is too long for %d pages" % (tlen, npages))
    over = 24 + 16 if enc else 0
    tunit = tlen + over
    if 32 + tunit > len(data):
        raise corrupt("the table unit does not fit the file")
    if b2(data[:32 + tunit]).hex() != ref["name"]:
        raise corrupt("BLAKE2b-256 of the header and table unit is not its name")
    sid = bytes.fromhex(m["sessionId"])
    key = subkey(master, 1 if kind == 1 else 2) if enc else None
    if enc:
        try:
            table = nb.crypto_aead_xchacha20poly1305_ietf_decrypt(data[32 + 24:32 + tunit], hdr + sid,
                                                                  data[32:32 + 24], key)
        except Exception:
            raise corrupt("page table: AEAD authentication failed")
    else:
        table = data[32:32 + tunit]
    if len(table) != tlen:
        raise corrupt("table length")
    try:
        t = cbor_decode(table, ["rows", "bytes", "checks"])
    except (ValueError, cbor2.CBORDecodeError) as e:
        raise corrupt("page table CBOR: %s" % e)
    if (not isinstance(t["rows"], bytes) or len(t["rows"]) != 4 * npages or not isinstance(t["bytes"], bytes)
            or len(t["bytes"]) != 4 * npages or not isinstance(t["checks"], bytes) or len(t["checks"]) != 16 * npages):
        raise corrupt("page table: rows, bytes or checks of the wrong size")
    prow = struct.unpack("<%dI" % npages, t["rows"])
    plen = struct.unpack("<%dI" % npages, t["bytes"])
    for i in range(npages):
        if prow[i] == 0 and not (npages == 1 and rows == 0):
            raise corrupt("page %d has no rows" % i)
        if not over < plen[i] <= PAGE_UNIT_MAX:
            raise corrupt("page %d has an impossible length %d" % (i, plen[i]))
    if sum(prow) != rows:
        raise corrupt("page rows add up to %d, the header says %d" % (sum(prow), rows))
    if 32 + tunit + sum(plen) != len(data):
        raise corrupt("page lengths do not add up to the file size")
    off, first = 32 + tunit, 0
    for i in range(npages):
        unit = data[off:off + plen[i]]
        check = t["checks"][16 * i:16 * i + 16]
        if enc:
            if not hmac.compare_digest(unit[-16:], check):
                raise corrupt("page %d: its tag does not match the page table" % i)
            ad = hdr + sid + struct.pack("<III", i, first, prow[i])
            try:
                plain = nb.crypto_aead_xchacha20poly1305_ietf_decrypt(unit[24:], ad, unit[:24], key)
            except Exception:
                raise corrupt("page %d: AEAD authentication failed" % i)
        else:
            if not hmac.compare_digest(hashlib.blake2b(unit, digest_size=16).digest(), check):
                raise corrupt("page %d: its BLAKE2b-128 does not match the page table" % i)
            plain = unit
        yield i, first, prow[i], plain
        off += plen[i]
        first += prow[i]


def read_paged_object(data, ref, kind, m, master, corrupt):
    """A version-3 object as one chunk map or one segment map: the pages'
    rows (nodes) in page order, each page checked on its own."""
    seq = ref["seq"]
    whole = None
    for i, first, rows, plain in paged_units(data, ref, kind, m, master, corrupt):
        try:
            v = cbor_decode(plain, CHUNK_KEYS) if kind == 1 else decode_segment3(plain, m["version"])
        except (ValueError, cbor2.CBORDecodeError, UnicodeDecodeError) as e:
            raise corrupt("page %d: CBOR: %s" % (i, e))
        if v["kind"] != ("chunk" if kind == 1 else "index") or v["seq"] != seq:
            raise corrupt("page %d: kind or seq in the CBOR" % i)
        if v["count"] != rows:
            raise corrupt("page %d: count %r, the page table says %d" % (i, v["count"], rows))
        if kind == 1:
            if v["dim"] != m["dimension"]:
                raise corrupt("page %d: dim %r, manifest says %d" % (i, v["dim"], m["dimension"]))
            for k in ("slots", "vectors"):
                if not isinstance(v[k], bytes):
                    raise corrupt("page %d: %s" % (i, k))
            for k in ("ids", "meta"):
                if not isinstance(v[k], list):
                    raise corrupt("page %d: %s" % (i, k))
        else:
            if i > 0 and v["pq"] is not None:
                raise corrupt("page %d: a PQ codebook outside page 0" % i)
            if i > 0 and v.get("fields") is not None:
                raise corrupt("page %d: field paths outside page 0" % i)
            if not isinstance(v["nodes"], list):
                raise corrupt("page %d: nodes" % i)
            if whole is not None and v["base"] is not whole["base"]:
                raise corrupt("page %d: base flag differs from page 0's" % i)
        if whole is None:
            whole = v
            continue
        whole["count"] += v["count"]
        if kind == 1:
            for k in ("slots", "vectors"):
                whole[k] += v[k]
            for k in ("ids", "meta"):
                whole[k] = whole[k] + v[k]
        else:
            whole["nodes"] = whole["nodes"] + v["nodes"]
    return whole, corrupt


def check_chunk(v, ref, m, corrupt):
    dim, n = m["dimension"], v["count"]
    if v["dim"] != dim:
        raise corrupt("dim %r, manifest says %d" % (v["dim"], dim))
    if not isinstance(v["slots"], bytes) or len(v["slots"]) != 4 * n:
        raise corrupt("slots")
    if not isinstance(v["vectors"], bytes) or len(v["vectors"]) != 4 * n * dim:
        raise corrupt("vectors")
    if not isinstance(v["ids"], list) or len(v["ids"]) != n or not isinstance(v["meta"], list) or len(v["meta"]) != n:
        raise corrupt("ids or meta length")
    slots = struct.unpack("<%dI" % n, v["slots"])
    for s in slots:
        if not ref["slotMin"] <= s <= ref["slotMax"]:
            raise corrupt("slot %d outside slotMin..slotMax" % s)
    for i in v["ids"]:
        if i is not None and (not isinstance(i, str) or not 1 <= len(i.encode("utf-8")) <= ID_MAX):
            raise corrupt("id")
    for t in v["meta"]:
        if t is not None and (not isinstance(t, str) or not 1 <= len(t.encode("utf-8")) <= META_MAX):
            raise corrupt("meta")
    return slots


PQ_KEYS = ["m", "ksub", "dsub", "trained", "centroids"]


def check_codebook(pq, m, corrupt):
    """Section 5.2: the PQ codebook that only base segment 0 may carry."""
    if m["indexKind"] != "hnsw":
        raise corrupt("a PQ codebook in a flat session")
    if not isinstance(pq, dict) or list(pq.keys()) != PQ_KEYS:
        raise corrupt("pq is not a map with keys %r in that order" % PQ_KEYS)
    for k in ("m", "ksub", "dsub", "trained"):
        if not is_int(pq[k]):
            raise corrupt("pq.%s is not an unsigned integer" % k)
    if pq["m"] < 1 or pq["dsub"] < 1 or not 1 <= pq["ksub"] <= 256:
        raise corrupt("pq m %r, ksub %r, dsub %r out of range" % (pq["m"], pq["ksub"], pq["dsub"]))
    if pq["m"] * pq["dsub"] != m["dimension"]:
        raise corrupt("pq m * dsub = %d, the dimension is %d" % (pq["m"] * pq["dsub"], m["dimension"]))
    n = pq["m"] * pq["ksub"] * pq["dsub"]
    if not isinstance(pq["centroids"], bytes) or len(pq["centroids"]) != 4 * n:
        raise corrupt("pq.centroids is not bytes(m * ksub * dsub * 4)")
    if not all_finite(pq["centroids"]):
        raise corrupt("a PQ centroid is not finite")
    return pq


def all_finite(data):
    """Whether the float32 little-endian values in `data` are all finite."""
    a = array.array("f", data)
    if sys.byteorder != "little":
        a.byteswap()
    return all(map(math.isfinite, a))


def decode_record(rec, nfields):
    """Section 5.2, version 4: an attribute record, as one entry per field:
    None when the path is missing, else the list of its values (empty: present
    with no scalar value), repeats dropped. An empty record: all missing."""
    if not rec:
        return [None] * nfields
    col = Column(rec, "attribute record")
    out = []
    for _ in range(nfields):
        n = col.varint(MAX_VALUES + 1)
        if n == 0:
            out.append(None)
            continue
        vals, seen = [], set()
        for _ in range(n - 1):
            t = col.take(1)[0]
            if t == 0:
                val = None
            elif t in (1, 2):
                val = t == 2
            elif t == 3:
                val = struct.unpack("<d", col.take(8))[0]
                if not math.isfinite(val):
                    raise ValueError("a number that is not finite")
                val += 0.0  # -0 is 0
            elif t == 4:
                val = col.take(col.varint(MAX_STRING)).decode("utf-8")
            else:
                raise ValueError("value type 0x%02x" % t)
            key = (type(val).__name__, val)  # 1 is not "1", True is not 1
            if key not in seen:
                seen.add(key)
                vals.append(val)
        out.append(vals)
    if not col.ended():
        raise ValueError("bytes after the last field")
    return out


def check_segment(v, is_base, first, cb, fields, m, corrupt):
    """Checks one segment's records on their own; returns them, the session's
    codebook and its field paths: `cb` and `fields` (those read so far: None
    before index.base[0] or when the session has none), or what this segment
    carries if it is the first base segment. Version 4 records get their
    attribute record decoded in place (node[6])."""
    if v["base"] is not is_base:
        raise corrupt("base flag is %r in the %s list" % (v["base"], "base" if is_base else "deltas"))
    if not isinstance(v["nodes"], list):
        raise corrupt("nodes")
    v2 = m["version"] >= 2
    if v2 and v["pq"] is not None:
        if not first:
            raise corrupt("a PQ codebook in an index segment other than index.base[0]")
        cb = check_codebook(v["pq"], m, corrupt)
    v4 = m["version"] >= 4
    if v4 and first:
        if v.get("fields") is None:
            raise corrupt("a version-4 session without field paths in index.base[0]")
        fields = v["fields"]
    elif v.get("fields") is not None:
        raise corrupt("field paths in an index segment other than index.base[0]")
    if v4 and fields is None and v["nodes"]:
        raise corrupt("attribute records before the field paths are known")
    hnsw = m["indexKind"] == "hnsw"
    mm = m["hnsw"]["m"]
    width = 7 if v4 else 6 if v2 else 5
    for node in v["nodes"]:
        if not isinstance(node, list) or len(node) != width:
            raise corrupt("node is not array(%d)" % width)
        slot, nid, chunk, row, links = node[:5]
        if not is_int(slot) or slot >= 1 << 31 or slot >= m["slotCount"]:
            raise corrupt("node slot %r" % (slot,))
        if nid is not None and (not isinstance(nid, str) or not 1 <= len(nid.encode("utf-8")) <= ID_MAX):
            raise corrupt("node id")
        if not is_int(chunk) or not is_int(row) or not isinstance(links, list):
            raise corrupt("node chunk, row or links")
        if not hnsw and links:
            raise corrupt("links in a flat index")
        if hnsw and nid is not None and not links:
            raise corrupt("a live HNSW node without levels")
        if nid is None and not links and (chunk != 0 or row != 0):
            raise corrupt("a free slot with chunk/row not 0")
        if len(links) > 17:
            raise corrupt("more than 17 levels")
        for lv, l in enumerate(links):
            if not isinstance(l, bytes) or len(l) % 4:
                raise corrupt("links are not bytes(n*4)")
            if len(l) // 4 > (2 * mm if lv == 0 else mm):
                raise corrupt("slot %d level %d has %d links (max %d)" % (slot, lv, len(l) // 4, 2 * mm if lv == 0 else mm))
        if v2:
            check_code(node[5], slot, nid, links, cb, corrupt)
        if v4:
            try:
                node[6] = decode_record(node[6], len(fields))
            except (ValueError, UnicodeDecodeError) as e:
                raise corrupt("slot %d: attribute record: %s" % (slot, e))
    return v["nodes"], cb, fields


def check_code(code, slot, nid, links, cb, corrupt):
    """Section 5.2: a graph node of a session with a codebook has a code of m
    bytes, each naming one of ksub centroids; every other record has null."""
    if code is None:
        if cb is not None and links:
            raise corrupt("slot %d is in the graph but has no PQ code" % slot)
        return
    if not isinstance(code, bytes):
        raise corrupt("slot %d: the PQ code is neither bytes nor null" % slot)
    if cb is None:
        raise corrupt("slot %d has a PQ code but the session has no codebook" % slot)
    if nid is None and not links:
        raise corrupt("free slot %d has a PQ code" % slot)
    if len(code) != cb["m"]:
        raise corrupt("slot %d: a PQ code of %d bytes, the codebook has m = %d" % (slot, len(code), cb["m"]))
    if max(code) >= cb["ksub"]:
        raise corrupt("slot %d: PQ code byte %d, the codebook has ksub = %d" % (slot, max(code), cb["ksub"]))


# ---- section 5.3: the index, and the result ----------------------------------------

def read_session(d, secret):
    raw, body, mac_hex, m = read_manifest(d)
    master = master_key(m, secret)
    if master is None:
        if mac_hex != "0" * 64:
            raise manifest_corrupt("mac of an unencrypted session is not 64 zeros")
    else:
        # A mac that is not even hex fails authentication like any other wrong mac.
        mac = b2(body, key=subkey(master, 3))
        if not HEX64.match(mac_hex) or not hmac.compare_digest(mac, bytes.fromhex(mac_hex)):
            raise Fail("ERR_MANIFEST_AUTH", "manifest MAC does not match")

    # Index first (it says which rows are current), then the chunks.
    nodes = {}
    cb = None  # the PQ codebook (version 2), from index.base[0]
    fields = None  # the filterable field paths (version 4), from index.base[0]
    for part, is_base in (("base", True), ("deltas", False)):
        for i, ref in enumerate(m["index"][part]):
            v, corrupt = read_object(d, ref, 2, m, master)
            first = is_base and i == 0
            records, cb, fields = check_segment(v, is_base, first, cb, fields, m, corrupt)
            for node in records:
                nodes[node[0]] = node

    chunks = {}
    for ref in m["chunks"]:
        v, corrupt = read_object(d, ref, 1, m, master)
        chunks[ref["seq"]] = (v, check_chunk(v, ref, m, corrupt), ref)

    def bad(why):
        return Fail("ERR_CHUNK_CORRUPT", "index: " + why)

    levels = {s: len(n[4]) for s, n in nodes.items() if n[4]}
    ids = {}
    out = []
    for s in sorted(nodes):
        slot, nid, chunk, row, links = nodes[s][:5]
        if nid is None and not links:
            continue  # free
        if nid is not None:
            if nid in ids:
                raise bad("id %r on slots %d and %d" % (nid, ids[nid], slot))
            ids[nid] = slot
        for lv, l in enumerate(links):
            for t in struct.unpack("<%dI" % (len(l) // 4), l):
                if levels.get(t, 0) <= lv:
                    raise bad("slot %d level %d links to %d, which has %d levels" % (slot, lv, t, levels.get(t, 0)))
        if chunk not in chunks or row >= chunks[chunk][0]["count"]:
            raise bad("slot %d lives at chunk %d row %d, which is not listed" % (slot, chunk, row))
        cv, cslots, cref = chunks[chunk]
        if cslots[row] != slot:
            raise bad("slot %d points at chunk %d row %d, which holds slot %d" % (slot, chunk, row, cslots[row]))
        dim = m["dimension"]
        vec = struct.unpack_from("<%df" % dim, cv["vectors"], 4 * dim * row)
        if not all(map(math.isfinite, vec)):
            raise bad("slot %d: its current row (chunk %d row %d) holds a non-finite value" % (slot, chunk, row))
        if nid is None:
            continue  # a waypoint
        if cv["ids"][row] != nid:
            raise bad("slot %d (%r): its current row carries id %r" % (slot, nid, cv["ids"][row]))
        meta = cv["meta"][row]
        try:
            metadata = None if meta is None else json.loads(meta)
        except ValueError:
            raise bad("metadata of %r is not JSON" % nid)
        out.append({"id": nid, "vector": list(vec), "metadata": metadata})
        if fields is not None:
            out[-1]["attributes"] = {f: vals for f, vals in zip(fields, nodes[s][6]) if vals is not None}

    g = m["graph"]
    if g["entry"] is not None:
        if levels.get(g["entry"], 0) != g["maxLevel"] + 1:
            raise bad("graph.entry %d has %d levels, maxLevel is %d" % (g["entry"], levels.get(g["entry"], 0), g["maxLevel"]))
    elif levels:
        raise bad("graph nodes exist but graph.entry is null")
    if len(out) != m["totalVectors"]:
        raise bad("%d live vectors, totalVectors is %d" % (len(out), m["totalVectors"]))
    out.sort(key=lambda r: r["id"])
    result = {"generation": m["generation"], "sessionId": m["sessionId"], "vectors": out}
    if fields is not None:
        result["fields"] = fields
    return result


def main(argv):
    if len(argv) < 2:
        sys.stderr.write(__doc__)
        return 64
    d = argv[1]
    secret = (None, None)
    if len(argv) == 4 and argv[2] == "--key":
        key = bytes.fromhex(argv[3])
        if len(key) != 32:
            sys.stderr.write("a key is 32 bytes\n")
            return 64
        secret = ("key", key)
    elif len(argv) == 4 and argv[2] == "--passphrase":
        secret = ("passphrase", argv[3].encode("utf-8"))
    elif len(argv) == 4 and argv[2] == "--passphrase-hex":
        secret = ("passphrase", bytes.fromhex(argv[3]))
    elif len(argv) != 2:
        sys.stderr.write(__doc__)
        return 64
    try:
        result = read_session(d, secret)
    except Fail as e:
        sys.stdout.write(json.dumps({"error": e.code, "message": str(e)}) + "\n")
        return 2
    # ASCII escapes: metadata may hold a lone surrogate ("\ud800" in its JSON),
    # which has no UTF-8 form but round-trips as an escape.
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
