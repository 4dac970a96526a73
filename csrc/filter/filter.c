/*
 * filter/filter.c: filter programs (filter.h). A program is decoded into a
 * tree (kept for the planner: estimates and posting-list paths) and
 * compiled into a flat *branch program* for matching: one entry per leaf,
 * each with the leaf to go to when it holds and when it does not, ending
 * at TRUE or FALSE. AND, OR and NOT leave no nodes behind: NOT swaps its
 * child's targets, AND chains its children through their true targets, OR
 * through their false ones. So vv_filter_match is a loop without a stack
 * that short-circuits exactly as the tree would.
 *
 * Leaves are bound to the store's codes at compile time: EQ is one code
 * compare, IN a few codes or a bitmap over the field's codes, a range
 * clause a bitmap over the codes when the field has few of them (else the
 * code's value is compared), and a clause no stored value can satisfy is
 * folded to FALSE.
 */
#include "filter.h"

#include <stdlib.h>
#include <string.h>

#include "../common/util.h"
#include "attr_impl.h"

enum { N_TRUE = 0, N_AND = 1, N_OR = 2, N_NOT = 3, N_EQ = 4, N_IN = 5, N_CMP = 6, N_EXISTS = 7 };
enum { OP_GT = 0, OP_GE = 1, OP_LT = 2, OP_LE = 3 };
enum { L_EQ, L_SET, L_BITS, L_CMPVAL, L_EXISTS };

#define T_FALSE (-1)
#define T_TRUE (-2)
#define SET_MAX 8              /* IN with more codes than this uses a bitmap */
#define CMP_BITMAP_CODES 65536u /* range clauses over fields with more codes compare values */

typedef struct node {
  uint8_t kind, op, has_null; /* has_null: EQ/IN with a null operand (matches a missing path) */
  uint32_t field;
  uint32_t end;              /* preorder index just past this subtree */
  uint32_t codes_off, ncodes; /* EQ/IN: the operands' codes, sorted, distinct; CMP: see range */
  vv_value operand;          /* CMP */
  /* the plan (vv_filter_estimate) */
  double sel;
  int has_path;
  uint64_t cost;
  uint32_t pick;   /* AND: the child whose path it takes, or PICK_INTERVAL */
  uint32_t *range; /* CMP: the ncodes codes in range (sorted when few), or NULL when
                      its leaf compares values: then snap->codes[slo, shi) and newer */
  uint64_t count;  /* CMP: about how many slots hold them */
  /* CMP: where its range lies in the snapshot (held until the filter is
   * freed), and its codes newer than the snapshot */
  const vv_attr_sorted *snap;
  uint32_t slo, shi;
  uint32_t *newer;
  uint32_t nnewer;
  /* AND whose path is one interval of two range clauses on one field:
   * snap->codes[ivl_lo, ivl_hi) of `ivl_snap`, and the newer codes in both */
  const vv_attr_sorted *ivl_snap;
  uint32_t ivl_lo, ivl_hi, ivl_field;
  uint32_t *ivl;
  uint32_t nivl;
} node;

#define PICK_INTERVAL UINT32_MAX

typedef struct leaf {
  uint8_t kind, on_missing, op;
  int32_t t, f; /* next leaf when it holds / does not; or T_TRUE, T_FALSE */
  uint32_t code;
  uint32_t n;   /* L_SET: codes; L_BITS: bits */
  uint32_t *set;
  uint64_t *bits;
  vv_attr_col col;
  vv_value operand;
} leaf;

struct vv_filter {
  vv_attrs *a;
  unsigned char *prog; /* a copy: CMP operands borrow it */
  node *nodes;
  uint32_t nnodes, ncap;
  uint32_t *codes;
  size_t ncodes, ccap;
  leaf *leaves;
  uint32_t nleaves;
  uint32_t *scratch; /* children of AND/OR while compiling */
  uint32_t nscratch;
  int32_t entry;
  int planned;
};

/* ---- decoding ---- */

typedef struct dec {
  vv_filter *f;
  const unsigned char *p, *end;
} dec;

static int push_code(vv_filter *f, uint32_t c) {
  if (f->ncodes == f->ccap) {
    size_t cap = f->ccap ? f->ccap * 2 : 16;
    uint32_t *v = realloc(f->codes, cap * sizeof *v);
    if (!v) return VV_E_NOMEM;
    f->codes = v;
    f->ccap = cap;
  }
  f->codes[f->ncodes++] = c;
  return VV_OK;
}

static int cmp_u32(const void *x, const void *y) {
  uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
  return a < b ? -1 : a > b;
}

/* n operand values of an EQ (n 1) or IN node, bound to codes. */
static int decode_operands(dec *d, node *nd, uint64_t n) {
  vv_filter *f = d->f;
  nd->codes_off = (uint32_t)f->ncodes;
  for (uint64_t i = 0; i < n; i++) {
    vv_value v;
    if (vv_wire_value(&d->p, d->end, &v)) return VV_E_BAD_FILTER;
    if (v.type == VV_VAL_NULL) nd->has_null = 1;
    uint32_t c = vv_attrs_lookup(f->a, nd->field, &v);
    if (c != VV_CODE_NONE) {
      int rc = push_code(f, c);
      if (rc) return rc;
    }
  }
  uint32_t *c = f->codes + nd->codes_off;
  size_t k = f->ncodes - nd->codes_off, u = 0;
  if (k > 1) qsort(c, k, sizeof *c, cmp_u32);
  for (size_t i = 0; i < k; i++)
    if (!u || c[u - 1] != c[i]) c[u++] = c[i];
  f->ncodes = nd->codes_off + u;
  nd->ncodes = (uint32_t)u;
  return VV_OK;
}

static int decode_node(dec *d, uint32_t depth) {
  vv_filter *f = d->f;
  if (depth > VV_FILTER_MAX_DEPTH || f->nnodes >= VV_FILTER_MAX_NODES || d->p == d->end) return VV_E_BAD_FILTER;
  if (f->nnodes == f->ncap) {
    uint32_t cap = f->ncap ? f->ncap * 2 : 16;
    node *v = realloc(f->nodes, (size_t)cap * sizeof *v);
    if (!v) return VV_E_NOMEM;
    f->nodes = v;
    f->ncap = cap;
  }
  uint32_t me = f->nnodes++;
  node nd = {0};
  f->nodes[me] = nd; /* vv_filter_free reads it if decoding stops early */
  nd.kind = *d->p++;
  uint64_t n, field = 0;
  int rc = VV_OK;
  if (nd.kind >= N_EQ && nd.kind <= N_EXISTS) {
    if (vv_wire_varint(&d->p, d->end, UINT32_MAX, &field) || field >= vv_attrs_nfields(f->a)) return VV_E_BAD_FILTER;
    nd.field = (uint32_t)field;
  }
  switch (nd.kind) {
  case N_TRUE:
    break;
  case N_AND:
  case N_OR:
    if (vv_wire_varint(&d->p, d->end, VV_FILTER_MAX_NODES, &n) || n == 0) return VV_E_BAD_FILTER;
    for (uint64_t i = 0; i < n && !rc; i++) rc = decode_node(d, depth + 1);
    break;
  case N_NOT:
    rc = decode_node(d, depth + 1);
    break;
  case N_EQ:
    rc = decode_operands(d, &nd, 1);
    break;
  case N_IN:
    if (vv_wire_varint(&d->p, d->end, VV_FILTER_MAX_IN, &n) || n == 0) return VV_E_BAD_FILTER;
    rc = decode_operands(d, &nd, n);
    break;
  case N_CMP:
    if (d->p == d->end || *d->p > OP_LE) return VV_E_BAD_FILTER;
    nd.op = *d->p++;
    if (vv_wire_value(&d->p, d->end, &nd.operand)) return VV_E_BAD_FILTER;
    if (nd.operand.type != VV_VAL_NUMBER && nd.operand.type != VV_VAL_STRING) return VV_E_BAD_FILTER;
    break;
  case N_EXISTS:
    break;
  default:
    return VV_E_BAD_FILTER;
  }
  if (rc) return rc;
  nd.end = f->nnodes;
  f->nodes[me] = nd;
  return VV_OK;
}

/* ---- compiling into a branch program ---- */

static int cmp_holds(int op, int c) {
  switch (op) {
  case OP_GT: return c > 0;
  case OP_GE: return c >= 0;
  case OP_LT: return c < 0;
  default: return c <= 0;
  }
}

static int dent_cmp_holds(const vv_dent *e, const vv_value *x, int op) {
  if ((int)e->type != x->type) return 0;
  vv_value v;
  vv_dent_value(e, &v);
  return cmp_holds(op, vv_value_cmp(&v, x));
}

static uint64_t *bitmap_new(uint32_t nbits) {
  return calloc(((size_t)nbits + 63) / 64 + 1, sizeof(uint64_t));
}

static void bit_set(uint64_t *b, uint32_t i) { b[i >> 6] |= 1ull << (i & 63); }

/* First index in codes[lo, hi) of s whose value is above x (strict) or
 * at least x. */
static uint32_t bound(const vv_attrs *a, uint32_t field, const vv_attr_sorted *s, uint32_t lo, uint32_t hi,
                      const vv_value *x, int strict) {
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    vv_value v;
    vv_attrs_value(a, field, s->codes[mid], &v);
    int c = vv_value_cmp(&v, x);
    if (strict ? c > 0 : c >= 0) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/* A range clause's codes (into nd->range), from the sorted snapshot and
 * the codes newer than it, and about how many slots hold them. The node
 * keeps its snapshot and its place in it, so an AND can intersect two
 * ranges on one field (plan). */
static int bind_range(vv_filter *f, node *nd, uint64_t *count) {
  const vv_attr_sorted *s;
  int rc = vv_attrs_sorted(f->a, nd->field, &s);
  if (rc) return rc;
  nd->snap = s;
  uint32_t lo = nd->operand.type == VV_VAL_NUMBER ? 0 : s->nnum;
  uint32_t hi = nd->operand.type == VV_VAL_NUMBER ? s->nnum : s->n;
  if (nd->op == OP_GT || nd->op == OP_GE) lo = bound(f->a, nd->field, s, lo, hi, &nd->operand, nd->op == OP_GT);
  else hi = bound(f->a, nd->field, s, lo, hi, &nd->operand, nd->op == OP_LE);
  uint32_t nc = vv_attrs_ncodes(f->a, nd->field);
  nd->newer = malloc(((size_t)(nc - s->ncodes) + 1) * sizeof *nd->newer);
  if (!nd->newer) return VV_E_NOMEM; /* the snapshot goes with the filter */
  nd->slo = lo;
  nd->shi = hi;
  *count = s->prefix[hi] - s->prefix[lo];
  vv_attr_col col;
  vv_attrs_col(f->a, nd->field, &col);
  for (uint32_t c = s->ncodes; c < nc; c++) /* newer than the snapshot */
    if (dent_cmp_holds(&col.dict[c], &nd->operand, nd->op)) {
      nd->newer[nd->nnewer++] = c;
      *count += vv_attrs_count(f->a, nd->field, c);
    }
  uint32_t k = hi - lo + nd->nnewer;
  nd->ncodes = k;
  /* The codes themselves only for a leaf that tests codes (emit_leaf): a
   * wide range on a field of many codes compares values, and copying tens
   * of thousands of codes per call cost more than the search. */
  if (k > SET_MAX && nc > CMP_BITMAP_CODES) return VV_OK;
  free(nd->range);
  nd->range = malloc(((size_t)k + 1) * sizeof *nd->range);
  if (!nd->range) return VV_E_NOMEM;
  memcpy(nd->range, s->codes + lo, (size_t)(hi - lo) * sizeof *nd->range);
  memcpy(nd->range + (hi - lo), nd->newer, (size_t)nd->nnewer * sizeof *nd->range);
  /* Code order only for a short list (a leaf's set); a bitmap takes any
   * order, and sorting a wide range on every call cost milliseconds. */
  if (k > 1 && k <= SET_MAX) qsort(nd->range, k, sizeof *nd->range, cmp_u32);
  return VV_OK;
}

/* A leaf for node i going to t or f, or the terminal it folds to. */
static int32_t emit_leaf(vv_filter *fl, const node *nd, int32_t t, int32_t f, int *rc) {
  leaf l = {0};
  l.on_missing = nd->has_null;
  l.op = nd->op;
  l.t = t;
  l.f = f;
  vv_attrs_col(fl->a, nd->field, &l.col);
  const uint32_t *codes = nd->kind == N_CMP ? nd->range : fl->codes + nd->codes_off;
  if (nd->kind == N_EXISTS) {
    l.kind = L_EXISTS;
  } else if (nd->kind == N_CMP && nd->ncodes > SET_MAX && vv_attrs_ncodes(fl->a, nd->field) > CMP_BITMAP_CODES) {
    l.kind = L_CMPVAL; /* a bitmap would cost more than comparing values */
    l.operand = nd->operand;
  } else if (nd->ncodes == 0) { /* no stored value equals an operand, or is in range */
    if (!nd->has_null) return f;
    l.kind = L_EXISTS; /* null: exactly the missing paths */
    l.t = f;
    l.f = t;
    l.on_missing = 0;
  } else if (nd->ncodes == 1) {
    l.kind = L_EQ;
    l.code = codes[0];
  } else if (nd->ncodes <= SET_MAX) {
    l.kind = L_SET;
    l.n = nd->ncodes;
    if (!(l.set = malloc(nd->ncodes * sizeof *l.set))) goto nomem;
    memcpy(l.set, codes, nd->ncodes * sizeof *l.set);
  } else {
    l.kind = L_BITS;
    uint32_t top = 0;
    for (uint32_t i = 0; i < nd->ncodes; i++) top = VV_MAX(top, codes[i]);
    l.n = top + 1;
    if (!(l.bits = bitmap_new(l.n))) goto nomem;
    for (uint32_t i = 0; i < nd->ncodes; i++) bit_set(l.bits, codes[i]);
  }
  fl->leaves[fl->nleaves] = l;
  return (int32_t)fl->nleaves++;
nomem:
  *rc = VV_E_NOMEM;
  return f;
}

static int32_t emit(vv_filter *fl, uint32_t i, int32_t t, int32_t f, int *rc) {
  const node *nd = &fl->nodes[i];
  switch (nd->kind) {
  case N_TRUE:
    return t;
  case N_NOT:
    return emit(fl, i + 1, f, t, rc);
  case N_AND:
  case N_OR: {
    /* The last child goes straight to t and f; each earlier one goes on
     * to the next child (AND when it holds, OR when it does not). */
    uint32_t base = fl->nscratch;
    for (uint32_t c = i + 1; c < nd->end; c = fl->nodes[c].end) fl->scratch[fl->nscratch++] = c;
    int32_t e = emit(fl, fl->scratch[fl->nscratch - 1], t, f, rc);
    for (uint32_t k = fl->nscratch - 1; k-- > base;)
      e = nd->kind == N_AND ? emit(fl, fl->scratch[k], e, f, rc) : emit(fl, fl->scratch[k], t, e, rc);
    fl->nscratch = base;
    return e;
  }
  default:
    return emit_leaf(fl, nd, t, f, rc);
  }
}

int vv_filter_compile(vv_attrs *a, const unsigned char *prog, size_t len, vv_filter **out) {
  *out = NULL;
  if (!prog || len < 4 || len > VV_FILTER_MAX_BYTES || prog[0] != 'V' || prog[1] != 'F' || prog[2] != 1)
    return VV_E_BAD_FILTER;
  vv_filter *f = calloc(1, sizeof *f);
  if (!f) return VV_E_NOMEM;
  f->a = a;
  int rc = VV_E_NOMEM;
  /* codes is never NULL: nodes point into it even with no code found */
  if (!(f->prog = malloc(len)) || !(f->codes = malloc(16 * sizeof *f->codes))) goto fail;
  f->ccap = 16;
  memcpy(f->prog, prog, len);
  dec d = {f, f->prog + 3, f->prog + len};
  rc = decode_node(&d, 1);
  if (!rc && d.p != d.end) rc = VV_E_BAD_FILTER;
  for (uint32_t i = 0; !rc && i < f->nnodes; i++)
    if (f->nodes[i].kind == N_CMP) rc = bind_range(f, &f->nodes[i], &f->nodes[i].count);
  if (rc) goto fail;
  rc = VV_E_NOMEM;
  if (!(f->leaves = malloc((size_t)f->nnodes * sizeof *f->leaves))) goto fail;
  if (!(f->scratch = malloc((size_t)f->nnodes * sizeof *f->scratch))) goto fail;
  rc = VV_OK;
  f->entry = emit(f, 0, T_TRUE, T_FALSE, &rc);
  if (rc) goto fail;
  *out = f;
  return VV_OK;
fail:
  vv_filter_free(f);
  return rc;
}

void vv_filter_free(vv_filter *f) {
  if (!f) return;
  for (uint32_t i = 0; i < f->nleaves; i++) {
    free(f->leaves[i].set);
    free(f->leaves[i].bits);
  }
  for (uint32_t i = 0; i < f->nnodes; i++) {
    free(f->nodes[i].range);
    free(f->nodes[i].newer);
    free(f->nodes[i].ivl);
    if (f->nodes[i].snap) vv_attrs_sorted_release(f->a, f->nodes[i].snap);
  }
  free(f->leaves);
  free(f->scratch);
  free(f->nodes);
  free(f->codes);
  free(f->prog);
  free(f);
}

int vv_filter_is_true(const vv_filter *f) { return f->entry == T_TRUE; }

/* ---- matching ---- */

static inline int code_holds(const leaf *l, uint32_t c) {
  switch (l->kind) {
  case L_EQ:
    return c == l->code;
  case L_SET:
    for (uint32_t i = 0; i < l->n; i++)
      if (l->set[i] == c) return 1;
    return 0;
  case L_BITS:
    return c < l->n && (l->bits[c >> 6] >> (c & 63) & 1);
  default:
    return dent_cmp_holds(&l->col.dict[c], &l->operand, l->op);
  }
}

static inline int leaf_holds(const leaf *l, uint32_t slot) {
  uint32_t w = vv_col_word(&l->col, slot);
  if (l->kind == L_EXISTS) return w != COL_MISSING;
  if (VV_LIKELY(w < COL_MARK)) return code_holds(l, w);
  if (w == COL_MISSING) return l->on_missing;
  if (w == COL_EMPTY) return 0;
  const uint32_t *list = l->col.lists[w & ~COL_MARK];
  for (uint32_t i = 1; i <= list[0]; i++)
    if (code_holds(l, list[i])) return 1;
  return 0;
}

int vv_filter_match(const vv_filter *f, uint32_t slot) {
  int32_t i = f->entry;
  while (i >= 0) {
    const leaf *l = &f->leaves[i];
    i = leaf_holds(l, slot) ? l->t : l->f;
  }
  return i == T_TRUE;
}

/* ---- planning ---- */

static uint64_t postings_len(const vv_attrs *a, uint32_t field, const uint32_t *codes, uint32_t n) {
  uint64_t sum = 0;
  for (uint32_t i = 0; i < n; i++) {
    const uint32_t *slots;
    size_t k;
    vv_attrs_postings(a, field, codes[i], &slots, &k);
    sum += k;
  }
  return sum;
}

static int is_lower(const node *n) { return n->kind == N_CMP && (n->op == OP_GT || n->op == OP_GE); }
static int is_upper(const node *n) { return n->kind == N_CMP && (n->op == OP_LT || n->op == OP_LE); }

/* AND of a lower and an upper range clause on one field, both bound to the
 * same snapshot: the slots holding a value in both, counted from the prefix
 * sums (exact when the snapshot is fresh), instead of the product of two
 * broad shares. Into *count; the interval (snapshot positions and newer
 * codes) into nd, usable as a path when the field has no array values
 * (then it enumerates every match). */
static int intersect(vv_filter *f, node *nd, const node *a, const node *b, uint64_t *count) {
  const vv_attr_sorted *s = a->snap;
  uint32_t lo = VV_MAX(a->slo, b->slo), hi = VV_MIN(a->shi, b->shi);
  if (hi < lo) hi = lo;
  *count = s->prefix[hi] - s->prefix[lo];
  vv_attr_col col;
  vv_attrs_col(f->a, a->field, &col);
  free(nd->ivl);
  nd->ivl = malloc(((size_t)a->nnewer + 1) * sizeof *nd->ivl);
  if (!nd->ivl) return VV_E_NOMEM;
  nd->nivl = 0;
  for (uint32_t i = 0; i < a->nnewer; i++) {
    uint32_t c = a->newer[i];
    if (!dent_cmp_holds(&col.dict[c], &b->operand, b->op)) continue;
    *count += vv_attrs_count(f->a, a->field, c);
    nd->ivl[nd->nivl++] = c;
  }
  nd->ivl_snap = s;
  nd->ivl_lo = lo;
  nd->ivl_hi = hi;
  nd->ivl_field = a->field;
  return VV_OK;
}

/* An AND with a lower and an upper range clause on one field (the first
 * such pair): its share is the interval's, times the other children's, and
 * the interval is its path when that reads fewer postings. */
static int plan_interval(vv_filter *f, uint32_t i, double nlive, double *x) {
  node *nd = &f->nodes[i];
  uint32_t lo = UINT32_MAX, hi = UINT32_MAX;
  for (uint32_t c = i + 1; c < nd->end && (lo == UINT32_MAX || hi == UINT32_MAX); c = f->nodes[c].end) {
    const node *ch = &f->nodes[c];
    for (uint32_t d = i + 1; lo == UINT32_MAX && is_lower(ch) && d < nd->end; d = f->nodes[d].end) {
      const node *o = &f->nodes[d];
      if (is_upper(o) && o->field == ch->field && o->operand.type == ch->operand.type && o->snap == ch->snap) {
        lo = c;
        hi = d;
      }
    }
  }
  if (lo == UINT32_MAX || nlive <= 0) return VV_OK;
  uint64_t count;
  int rc = intersect(f, nd, &f->nodes[lo], &f->nodes[hi], &count);
  if (rc) return rc;
  double share = (double)count / nlive;
  for (uint32_t c = i + 1; c < nd->end; c = f->nodes[c].end)
    if (c != lo && c != hi) share *= f->nodes[c].sel / nlive;
  *x = nlive * share;
  if (vv_attrs_multi(f->a, nd->ivl_field) == 0) {
    /* postings hold about one entry per slot holding the code (stale ones
     * are cleaned once they outnumber the live) */
    uint64_t cost = count;
    if (!nd->has_path || cost < nd->cost) {
      nd->has_path = 1;
      nd->cost = cost;
      nd->pick = PICK_INTERVAL;
    }
  }
  return VV_OK;
}

static int plan(vv_filter *f, uint32_t i, double nlive) {
  node *nd = &f->nodes[i];
  double x = 0;
  int rc = VV_OK;
  nd->has_path = 0;
  nd->cost = 0;
  switch (nd->kind) {
  case N_TRUE:
    x = nlive;
    break;
  case N_NOT:
    if ((rc = plan(f, i + 1, nlive))) return rc;
    x = nlive - f->nodes[i + 1].sel;
    break;
  case N_AND:
  case N_OR:
    x = nd->kind == N_AND ? nlive : 0;
    nd->has_path = nd->kind == N_OR;
    for (uint32_t c = i + 1; c < nd->end; c = f->nodes[c].end) {
      if ((rc = plan(f, c, nlive))) return rc;
      node *ch = &f->nodes[c];
      if (nd->kind == N_OR) {
        x += ch->sel;
        nd->has_path &= ch->has_path;
        nd->cost += ch->cost;
      } else {
        x = nlive > 0 ? x * (ch->sel / nlive) : 0;
        if (ch->has_path && (!nd->has_path || ch->cost < nd->cost)) {
          nd->has_path = 1;
          nd->cost = ch->cost;
          nd->pick = c;
        }
      }
    }
    if (nd->kind == N_AND && (rc = plan_interval(f, i, nlive, &x))) return rc;
    if (!nd->has_path) nd->cost = 0;
    break;
  case N_EQ:
  case N_IN: {
    const uint32_t *codes = f->codes + nd->codes_off;
    for (uint32_t k = 0; k < nd->ncodes; k++) x += (double)vv_attrs_count(f->a, nd->field, codes[k]);
    if (nd->has_null) x += VV_MAX(nlive - (double)vv_attrs_present(f->a, nd->field), 0);
    nd->has_path = !nd->has_null;
    nd->cost = nd->has_path ? postings_len(f->a, nd->field, codes, nd->ncodes) : 0;
    break;
  }
  case N_CMP: {
    x = (double)nd->count;
    nd->has_path = 1;
    /* exact when the codes are at hand, else the slots holding them (an
     * estimate: the enumeration counts exactly before it allocates) */
    nd->cost = nd->range ? postings_len(f->a, nd->field, nd->range, nd->ncodes) : nd->count;
    break;
  }
  default: /* N_EXISTS */
    x = (double)vv_attrs_present(f->a, nd->field);
    break;
  }
  /* sel holds a count of slots while planning; the caller divides */
  nd->sel = x < 0 ? 0 : x > nlive ? nlive : x;
  return VV_OK;
}

int vv_filter_estimate(vv_filter *f, uint64_t nlive, vv_filter_plan *out) {
  int rc = plan(f, 0, (double)nlive);
  if (rc) return rc;
  f->planned = 1;
  const node *root = &f->nodes[0];
  out->selectivity = nlive ? root->sel / (double)nlive : 0;
  if (!(out->selectivity >= 0)) out->selectivity = 0;
  if (out->selectivity > 1) out->selectivity = 1;
  out->has_path = root->has_path;
  out->path_cost = root->has_path ? root->cost : 0;
  return VV_OK;
}

/* ---- enumeration ---- */

typedef struct gather {
  uint64_t nslots;
  uint64_t *bits; /* when the path reads many entries */
  uint32_t *v;    /* else every entry, sorted at the end */
  size_t n;
  uint64_t entries; /* counting only (bits and v NULL): posting entries the path reads */
} gather;

static void gather_code(const vv_filter *f, gather *g, uint32_t field, uint32_t code) {
  const uint32_t *slots;
  size_t k;
  vv_attrs_postings(f->a, field, code, &slots, &k);
  if (!g->bits && !g->v) {
    g->entries += k;
    return;
  }
  for (size_t j = 0; j < k; j++) {
    if (slots[j] >= g->nslots) continue;
    if (g->bits) bit_set(g->bits, slots[j]);
    else g->v[g->n++] = slots[j];
  }
}

static void gather_codes(const vv_filter *f, gather *g, uint32_t field, const uint32_t *codes, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) gather_code(f, g, field, codes[i]);
}

/* The codes of a snapshot's positions [lo, hi), then `newer`. */
static void gather_span(const vv_filter *f, gather *g, uint32_t field, const vv_attr_sorted *s, uint32_t lo,
                        uint32_t hi, const uint32_t *newer, uint32_t nnewer) {
  gather_codes(f, g, field, s->codes + lo, hi - lo);
  gather_codes(f, g, field, newer, nnewer);
}

static void gather_node(const vv_filter *f, gather *g, uint32_t i) {
  const node *nd = &f->nodes[i];
  if (nd->kind == N_AND && nd->pick == PICK_INTERVAL) {
    gather_span(f, g, nd->ivl_field, nd->ivl_snap, nd->ivl_lo, nd->ivl_hi, nd->ivl, nd->nivl);
  } else if (nd->kind == N_AND) {
    gather_node(f, g, nd->pick);
  } else if (nd->kind == N_OR) {
    for (uint32_t c = i + 1; c < nd->end; c = f->nodes[c].end) gather_node(f, g, c);
  } else if (nd->kind == N_CMP && nd->range) {
    gather_codes(f, g, nd->field, nd->range, nd->ncodes);
  } else if (nd->kind == N_CMP) {
    gather_span(f, g, nd->field, nd->snap, nd->slo, nd->shi, nd->newer, nd->nnewer);
  } else { /* EQ, IN: the plan said they have a path */
    gather_codes(f, g, nd->field, f->codes + nd->codes_off, nd->ncodes);
  }
}

int vv_filter_candidates(vv_filter *f, uint64_t nslots, uint32_t **slots, size_t *n) {
  *slots = NULL;
  *n = 0;
  if (!f->planned) {
    int rc = plan(f, 0, 0);
    if (rc) return rc;
    f->planned = 1;
  }
  const node *root = &f->nodes[0];
  if (!root->has_path) return VV_E_INVALID;
  if (nslots > (uint64_t)UINT32_MAX + 1) nslots = (uint64_t)UINT32_MAX + 1;
  gather g = {nslots, NULL, NULL, 0, 0};
  /* The plan's cost may be an estimate: count the entries exactly first. */
  gather_node(f, &g, 0);
  uint64_t cost = g.entries;
  if (cost == 0 || nslots == 0) return VV_OK;
  int use_bits = cost > nslots / 32;
  if (use_bits ? !(g.bits = bitmap_new((uint32_t)VV_MIN(nslots, UINT32_MAX))) : !(g.v = malloc(cost * sizeof *g.v)))
    return VV_E_NOMEM;
  gather_node(f, &g, 0);
  if (use_bits) {
    size_t count = 0, words = (size_t)((nslots + 63) / 64);
    for (size_t w = 0; w < words; w++) count += (size_t)__builtin_popcountll(g.bits[w]);
    uint32_t *out = count ? malloc(count * sizeof *out) : NULL;
    if (count && !out) {
      free(g.bits);
      return VV_E_NOMEM;
    }
    size_t k = 0;
    for (size_t w = 0; w < words; w++)
      for (uint64_t b = g.bits[w]; b; b &= b - 1) out[k++] = (uint32_t)(w * 64 + (unsigned)__builtin_ctzll(b));
    free(g.bits);
    *slots = out;
    *n = k;
    return VV_OK;
  }
  qsort(g.v, g.n, sizeof *g.v, cmp_u32);
  size_t u = 0;
  for (size_t i = 0; i < g.n; i++)
    if (!u || g.v[u - 1] != g.v[i]) g.v[u++] = g.v[i];
  if (!u) {
    free(g.v);
    return VV_OK;
  }
  *slots = g.v;
  *n = u;
  return VV_OK;
}
