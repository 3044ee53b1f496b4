/* JSON payloads' rows read straight into Arrow column buffers, no Python value per cell.

Built only with MODELTAP_COMPILE=1 (setup.py); analyzer/jsonrows.py wraps it and falls back to
the pure-Python path (orjson rows, then PayloadParser._json) where it is not built.

read_rows(offsets, data, offset, length, key) reads the payloads of an Arrow string array (its
offsets and data buffers) of the shapes {"<key>": [row, ...]} (the object's only key) and
[row, ...] / [v1, ..., vn], where a row is a list of scalars or a scalar (a row of one value),
and returns (rows, columns): per column a type code and its Arrow buffers. The result is what
analyzer.payloads.PayloadParser._json builds from the rows orjson decodes: a column of ints is
int64, ints and floats float64, bools bool, strings string, only nulls the null type; short rows
are padded with nulls. Anything else returns None and the caller takes the Python path, so
only what this reads exactly alike is read here: a nested value, a column of mixed kinds (the
Python path turns it into text), an integer beyond int64 (orjson makes it uint64 or a float), an
integer beyond 2^53 beside floats (Arrow refuses it), a float that overflows or underflows
(orjson refuses or rounds those), a lone surrogate escape, ill-formed UTF-8, or any text that
is not JSON (the Python path counts the failure).

Numbers: an integer literal is read exactly; a float is correctly rounded as orjson's: exact
when its digits and power of ten are exact doubles (Clinger's fast path), else the Eisel-Lemire
algorithm (a 128-bit product with the power of ten from _jsonrows_pow10.h, giving up where the
product cannot decide the rounding), else CPython's correctly rounded PyOS_string_to_double. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "_utf8seq.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "_jsonrows_pow10.h"

enum { K_NULL = 1, K_BOOL = 2, K_INT = 4, K_FLOAT = 8, K_STR = 16 };
enum { OK = 0, UNREAD = -1, NO_MEMORY = -2 };

typedef struct {
    uint8_t *kind;    /* per row: one of K_* */
    uint64_t *val;    /* per row: an int64, a double's bits, or 0/1 */
    int64_t *end;     /* per row: the end of its text in str (strings) */
    char *str;
    size_t str_len, str_cap;
    unsigned seen;    /* the kinds seen, K_* or'ed */
    int wide_int;     /* an int beyond +-2^53 (no exact double) */
} Col;

typedef struct {
    Col *cols;
    Py_ssize_t ncols, cap_cols;
    Py_ssize_t rows, cap_rows;  /* rows done; room in every column */
    Py_ssize_t width;           /* values in the current row */
} Grid;

typedef struct {
    const unsigned char *p, *e;
} Cur;

static void grid_free(Grid *g)
{
    for (Py_ssize_t j = 0; j < g->ncols; j++) {
        PyMem_Free(g->cols[j].kind);
        PyMem_Free(g->cols[j].val);
        PyMem_Free(g->cols[j].end);
        PyMem_Free(g->cols[j].str);
    }
    PyMem_Free(g->cols);
}

static int col_room(Col *c, Py_ssize_t cap)
{
    uint8_t *k = PyMem_Realloc(c->kind, (size_t)cap);
    if (k == NULL) return NO_MEMORY;
    c->kind = k;
    uint64_t *v = PyMem_Realloc(c->val, (size_t)cap * sizeof(uint64_t));
    if (v == NULL) return NO_MEMORY;
    c->val = v;
    int64_t *e = PyMem_Realloc(c->end, (size_t)cap * sizeof(int64_t));
    if (e == NULL) return NO_MEMORY;
    c->end = e;
    return OK;
}

/* Room for one more row in every column. */
static int grid_row_room(Grid *g)
{
    if (g->rows < g->cap_rows) return OK;
    Py_ssize_t cap = g->cap_rows * 2 + 64;
    for (Py_ssize_t j = 0; j < g->ncols; j++) {
        if (col_room(&g->cols[j], cap) != OK) return NO_MEMORY;
    }
    g->cap_rows = cap;
    return OK;
}

static inline void put_null(Col *c, Py_ssize_t r)
{
    c->kind[r] = K_NULL;
    c->val[r] = 0;
    c->end[r] = (int64_t)c->str_len;
    c->seen |= K_NULL;
}

/* Column j for the current row, made (null in the rows before) when the row is the first this
   wide. Rows are filled left to right, so columns are made in order. */
static Col *grid_col(Grid *g, Py_ssize_t j)
{
    if (j < g->ncols) return &g->cols[j];
    if (g->ncols == g->cap_cols) {
        Py_ssize_t cap = g->cap_cols * 2 + 8;
        Col *cols = PyMem_Realloc(g->cols, (size_t)cap * sizeof(Col));
        if (cols == NULL) return NULL;
        g->cols = cols;
        g->cap_cols = cap;
    }
    Col *c = &g->cols[g->ncols];
    memset(c, 0, sizeof(Col));
    g->ncols++;
    if (col_room(c, g->cap_rows) != OK) return NULL;
    for (Py_ssize_t r = 0; r < g->rows; r++) put_null(c, r);
    return c;
}

/* The current row is done: the columns it did not reach are null in it. */
static int end_row(Grid *g)
{
    for (Py_ssize_t j = g->width; j < g->ncols; j++) put_null(&g->cols[j], g->rows);
    g->rows++;
    g->width = 0;
    return grid_row_room(g);
}

static inline void skip_ws(Cur *s)
{
    while (s->p < s->e && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
        s->p++;
}

static inline int peek(Cur *s) { return s->p < s->e ? *s->p : -1; }

/* ---------------------------------------------------------------------------------- numbers */

static const double EXACT10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                 1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* man * 10^e10 (man > 0) correctly rounded, or 0 when the 128-bit product cannot tell (the
   caller then asks the slow exact parse). Normal doubles only: subnormal and infinite results
   give 0 too. After Lemire, "Number parsing at a gigabyte per second" (2021). */
static int eisel_lemire(uint64_t man, int e10, int neg, double *out)
{
    if (e10 < POW10_MIN || e10 > POW10_MAX) return 0;
    int lz = __builtin_clzll(man);
    man <<= lz;
    /* the binary exponent: floor(e10 * log2(10)) + 64 + bias, less the normalising shift */
    uint64_t exp2 = (uint64_t)(((217706 * e10) >> 16) + 64 + 1023) - (uint64_t)lz;
    const uint64_t *pow = POW10[e10 - POW10_MIN];
    __uint128_t x = (__uint128_t)man * pow[1];
    uint64_t hi = (uint64_t)(x >> 64), lo = (uint64_t)x;
    if ((hi & 0x1FF) == 0x1FF && lo + man < man) {
        /* the low 9 bits may carry into the mantissa: add the table's low word's product */
        __uint128_t y = (__uint128_t)man * pow[0];
        uint64_t yhi = (uint64_t)(y >> 64), ylo = (uint64_t)y;
        uint64_t mhi = hi, mlo = lo + yhi;
        if (mlo < lo) mhi++;
        if ((mhi & 0x1FF) == 0x1FF && mlo + 1 == 0 && ylo + man < man) return 0;
        hi = mhi;
        lo = mlo;
    }
    uint64_t top = hi >> 63;
    uint64_t mant = hi >> (top + 9); /* 54 bits */
    exp2 -= 1 ^ top;
    if (lo == 0 && (hi & 0x1FF) == 0 && (mant & 3) == 1) return 0; /* maybe a tie */
    mant += mant & 1;                                                /* round half up ... */
    mant >>= 1;                                                      /* ... to 53 bits */
    if (mant >> 53) {
        mant >>= 1;
        exp2++;
    }
    if (exp2 - 1 >= 0x7FF - 1) return 0; /* subnormal or infinite */
    uint64_t bits = exp2 << 52 | (mant & 0x000FFFFFFFFFFFFFull);
    if (neg) bits |= 0x8000000000000000ull;
    memcpy(out, &bits, sizeof bits);
    return 1;
}

/* Whether the 8 bytes (little-endian load) are all ASCII digits, and their value. */
static inline int eight_digits(const unsigned char *p, uint64_t *value)
{
    uint64_t v;
    memcpy(&v, p, 8);
    if ((((v & 0xF0F0F0F0F0F0F0F0ull) | (((v + 0x0606060606060606ull) & 0xF0F0F0F0F0F0F0F0ull) >> 4)) !=
         0x3333333333333333ull))
        return 0;
    v -= 0x3030303030303030ull;
    v = v * 10 + (v >> 8); /* pairs */
    v = (((v & 0x000000FF000000FFull) * (100 + (1000000ull << 32))) +
         (((v >> 16) & 0x000000FF000000FFull) * (1 + (10000ull << 32)))) >>
        32;
    *value = v;
    return 1;
}

/* The number at s->p into column c, row r. */
static int read_number(Col *c, Py_ssize_t r, Cur *s)
{
    const unsigned char *start = s->p, *p = s->p, *e = s->e;
    int neg = 0, is_float = 0, many = 0, nd = 0, frac = 0;
    uint64_t w = 0;
    if (p < e && *p == '-') {
        neg = 1;
        p++;
    }
    if (p >= e) return UNREAD;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        w = (uint64_t)(*p++ - '0');
        nd = 1;
        uint64_t eight;
        while (nd <= 11 && e - p >= 8 && eight_digits(p, &eight)) { /* 8 at a time */
            w = w * 100000000u + eight;
            nd += 8;
            p += 8;
        }
        while (p < e && *p >= '0' && *p <= '9') {
            if (nd < 19) {
                w = w * 10 + (uint64_t)(*p - '0');
                nd++;
            } else {
                many = 1; /* 20 digits or more: the slow parse, or no int64 */
            }
            p++;
        }
    } else {
        return UNREAD;
    }
    if (p < e && *p == '.') {
        is_float = 1;
        p++;
        if (p >= e || *p < '0' || *p > '9') return UNREAD;
        uint64_t eight;
        while (nd > 0 && nd <= 11 && e - p >= 8 && eight_digits(p, &eight)) { /* 8 at a time */
            w = w * 100000000u + eight;
            nd += 8;
            frac += 8;
            p += 8;
        }
        while (p < e && *p >= '0' && *p <= '9') {
            unsigned d = (unsigned)(*p - '0');
            if (nd == 0 && d == 0) {
                frac++; /* a leading zero: w stays 0, the point moves */
            } else if (nd < 19) {
                w = w * 10 + d;
                nd++;
                frac++;
            } else {
                many = 1;
            }
            p++;
        }
    }
    int exp10 = 0;
    if (p < e && (*p == 'e' || *p == 'E')) {
        is_float = 1;
        p++;
        int eneg = 0;
        if (p < e && (*p == '+' || *p == '-')) {
            eneg = *p == '-';
            p++;
        }
        if (p >= e || *p < '0' || *p > '9') return UNREAD;
        while (p < e && *p >= '0' && *p <= '9') {
            if (exp10 < 100000) exp10 = exp10 * 10 + (*p - '0');
            p++;
        }
        if (eneg) exp10 = -exp10;
    }
    s->p = p;
    if (!is_float) {
        if (many) return UNREAD; /* 20 digits or more: beyond int64 */
        int64_t v;
        if (neg) {
            if (w > (uint64_t)1 << 63) return UNREAD;
            v = (int64_t)(0 - w);
        } else {
            if (w > (uint64_t)INT64_MAX) return UNREAD;
            v = (int64_t)w;
        }
        if (w > (uint64_t)1 << 53) c->wide_int = 1;
        c->kind[r] = K_INT;
        memcpy(&c->val[r], &v, sizeof v);
        c->seen |= K_INT;
        return OK;
    }
    double d;
    int e10 = exp10 - frac;
    if (w == 0) {
        d = neg ? -0.0 : 0.0;
    } else if (!many && w <= (uint64_t)1 << 53 && e10 >= -22 && e10 <= 22) {
        d = (double)w;
        d = e10 < 0 ? d / EXACT10[-e10] : d * EXACT10[e10];
        if (neg) d = -d;
    } else if (many || !eisel_lemire(w, e10, neg, &d)) {
        char buf[512];
        size_t len = (size_t)(p - start);
        if (len >= sizeof buf) return UNREAD;
        memcpy(buf, start, len);
        buf[len] = '\0';
        char *stop = NULL;
        d = PyOS_string_to_double(buf, &stop, NULL);
        if (d == -1.0 && PyErr_Occurred()) {
            PyErr_Clear();
            return UNREAD;
        }
        if (stop != buf + len) return UNREAD;
    }
    if (isinf(d) || (w != 0 && fabs(d) < DBL_MIN)) return UNREAD; /* orjson's own rules */
    c->kind[r] = K_FLOAT;
    memcpy(&c->val[r], &d, sizeof d);
    c->seen |= K_FLOAT;
    return OK;
}

/* ---------------------------------------------------------------------------------- strings */

static inline int hex4(const unsigned char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char h = p[i];
        v <<= 4;
        if (h >= '0' && h <= '9') v |= (unsigned)(h - '0');
        else if (h >= 'a' && h <= 'f') v |= (unsigned)(h - 'a' + 10);
        else if (h >= 'A' && h <= 'F') v |= (unsigned)(h - 'A' + 10);
        else return 0;
    }
    *out = v;
    return 1;
}

static inline size_t put_utf8(unsigned cp, char *d)
{
    if (cp < 0x80) {
        d[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        d[0] = (char)(0xC0 | (cp >> 6));
        d[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        d[0] = (char)(0xE0 | (cp >> 12));
        d[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        d[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    d[0] = (char)(0xF0 | (cp >> 18));
    d[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    d[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    d[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* The string at s->p (its opening quote) decoded into column c, row r. */
static int read_string(Col *c, Py_ssize_t r, Cur *s)
{
    const unsigned char *p = s->p + 1, *e = s->e;
    size_t used = c->str_len;
    for (;;) {
        /* room for a 16-byte block store or one decoded character (4 bytes at most), grown
           as the string is decoded (not by the rest of the text: a large payload's many
           strings would each reserve it) */
        if (c->str_cap - used < 64) {
            size_t cap = c->str_cap * 2 + 256;
            char *str = PyMem_Realloc(c->str, cap);
            if (str == NULL) return NO_MEMORY;
            c->str = str;
            c->str_cap = cap;
        }
        char *d = c->str + used, *lim = c->str + c->str_cap;
#if defined(__SSE2__)
        /* 16 plain bytes at a time: stored, then kept up to the first that is not */
        const __m128i quote = _mm_set1_epi8('"'), slash = _mm_set1_epi8('\\');
        const __m128i space = _mm_set1_epi8(0x20);
        while (e - p >= 16 && lim - d >= 32) { /* leaves 16 bytes for a character */
            __m128i v = _mm_loadu_si128((const __m128i *)p);
            _mm_storeu_si128((__m128i *)d, v);
            /* signed: below 0x20, and 0x80 and above */
            __m128i odd = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, slash)),
                                       _mm_cmplt_epi8(v, space));
            int m = _mm_movemask_epi8(odd);
            if (m == 0) {
                p += 16;
                d += 16;
                continue;
            }
            int k = __builtin_ctz((unsigned)m);
            p += k;
            d += k;
            break;
        }
        if (lim - d < 32 && e - p >= 16) { /* out of room for blocks: grow first */
            used = (size_t)(d - c->str);
            continue;
        }
#endif
        (void)lim;
        if (p >= e) return UNREAD; /* no closing quote */
        unsigned char b = *p;
        if (b == '"') {
            used = (size_t)(d - c->str);
            break;
        }
        if (b == '\\') {
            if (e - p < 2) return UNREAD;
            unsigned char t = p[1];
            p += 2;
            switch (t) {
            case '"': *d++ = '"'; break;
            case '\\': *d++ = '\\'; break;
            case '/': *d++ = '/'; break;
            case 'b': *d++ = '\b'; break;
            case 'f': *d++ = '\f'; break;
            case 'n': *d++ = '\n'; break;
            case 'r': *d++ = '\r'; break;
            case 't': *d++ = '\t'; break;
            case 'u': {
                unsigned cp, lo;
                if (e - p < 4 || !hex4(p, &cp)) return UNREAD;
                p += 4;
                if (cp >= 0xDC00 && cp <= 0xDFFF) return UNREAD; /* a lone low surrogate */
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (e - p < 6 || p[0] != '\\' || p[1] != 'u' || !hex4(p + 2, &lo) ||
                        lo < 0xDC00 || lo > 0xDFFF)
                        return UNREAD; /* a high surrogate without its low one */
                    p += 6;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                }
                d += put_utf8(cp, d);
                break;
            }
            default:
                return UNREAD;
            }
        } else if (b < 0x20) {
            return UNREAD; /* a control character must be escaped */
        } else if (b < 0x80) {
            *d++ = (char)b;
            p++;
        } else {
            int n = utf8_seq(p, e - p);
            if (n == 0) return UNREAD;
            memcpy(d, p, (size_t)n);
            d += n;
            p += n;
        }
        used = (size_t)(d - c->str);
    }
    c->str_len = used;
    c->kind[r] = K_STR;
    c->val[r] = 0;
    c->end[r] = (int64_t)c->str_len;
    c->seen |= K_STR;
    s->p = p + 1;
    return OK;
}

/* ------------------------------------------------------------------------------------ rows */

static int lit(Cur *s, const char *word, size_t n)
{
    if ((size_t)(s->e - s->p) < n || memcmp(s->p, word, n) != 0) return 0;
    s->p += n;
    return 1;
}

/* One scalar into the current row's next column. */
static int read_value(Grid *g, Cur *s)
{
    Col *c = grid_col(g, g->width);
    if (c == NULL) return NO_MEMORY;
    Py_ssize_t r = g->rows;
    int rc = OK;
    switch (peek(s)) {
    case '"':
        rc = read_string(c, r, s);
        break;
    case 't':
    case 'f': {
        int yes = peek(s) == 't';
        if (!(yes ? lit(s, "true", 4) : lit(s, "false", 5))) return UNREAD;
        c->kind[r] = K_BOOL;
        c->val[r] = (uint64_t)yes;
        c->seen |= K_BOOL;
        break;
    }
    case 'n':
        if (!lit(s, "null", 4)) return UNREAD;
        put_null(c, r);
        break;
    default:
        if (peek(s) == '-' || (peek(s) >= '0' && peek(s) <= '9')) rc = read_number(c, r, s);
        else rc = UNREAD; /* a nested list or object, or not JSON */
    }
    if (rc != OK) return rc;
    if (c->kind[r] != K_STR) c->end[r] = (int64_t)c->str_len;
    g->width++;
    return OK;
}

/* The values of a row whose '[' was read, through its ']'. */
static int read_row(Grid *g, Cur *s)
{
    skip_ws(s);
    if (peek(s) == ']') {
        s->p++;
        return end_row(g);
    }
    for (;;) {
        skip_ws(s);
        int rc = read_value(g, s);
        if (rc != OK) return rc;
        skip_ws(s);
        int t = peek(s);
        s->p++;
        if (t == ']') return end_row(g);
        if (t != ',') return UNREAD;
    }
}

/* The rows of a list whose '[' was read, through its ']': each a list of values or a scalar
   (a row of one value, as PayloadParser._json_mixed reads it). */
static int read_rows_list(Grid *g, Cur *s)
{
    skip_ws(s);
    if (peek(s) == ']') {
        s->p++;
        return OK;
    }
    for (;;) {
        skip_ws(s);
        int rc;
        if (peek(s) == '[') {
            s->p++;
            rc = read_row(g, s);
        } else {
            rc = read_value(g, s);
            if (rc == OK) rc = end_row(g);
        }
        if (rc != OK) return rc;
        skip_ws(s);
        int t = peek(s);
        s->p++;
        if (t == ']') return OK;
        if (t != ',') return UNREAD;
    }
}

/* One payload: {"<key>": [rows]} (its only key), [[...], ...] (rows) or [v, ...] (one row);
   what analyzer.capture_payload.rows_from_json returns for these. */
static int read_payload(Grid *g, Cur *s, const char *key, Py_ssize_t key_len)
{
    skip_ws(s);
    int t = peek(s);
    s->p++;
    int rc;
    if (t == '{') {
        skip_ws(s);
        if (peek(s) != '"') return UNREAD;
        s->p++;
        if (s->e - s->p < key_len + 1 || memcmp(s->p, key, (size_t)key_len) != 0 ||
            s->p[key_len] != '"')
            return UNREAD;
        s->p += key_len + 1;
        skip_ws(s);
        if (peek(s) != ':') return UNREAD;
        s->p++;
        skip_ws(s);
        if (peek(s) != '[') return UNREAD;
        s->p++;
        rc = read_rows_list(g, s);
        if (rc != OK) return rc;
        skip_ws(s);
        if (peek(s) != '}') return UNREAD;
        s->p++;
    } else if (t == '[') {
        skip_ws(s);
        if (peek(s) == ']') {
            s->p++;
        } else if (peek(s) == '[') {
            rc = read_rows_list(g, s); /* its first row's '[' is read there */
            if (rc != OK) return rc;
        } else {
            rc = read_row(g, s);
            if (rc != OK) return rc;
        }
    } else {
        return UNREAD;
    }
    skip_ws(s);
    return s->p == s->e ? OK : UNREAD;
}

/* ---------------------------------------------------------------------------------- columns */

/* A writable buffer of `size` bytes from `alloc` (pyarrow.allocate_buffer: Arrow's memory
   pool, as Arrow's own readers allocate; its memory stays put while the buffer lives), its
   memory in *data. */
static PyObject *out_buffer(PyObject *alloc, Py_ssize_t size, char **data)
{
    PyObject *buf = PyObject_CallFunction(alloc, "n", size);
    if (buf == NULL) return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(buf, &view, PyBUF_WRITABLE) != 0) {
        Py_DECREF(buf);
        return NULL;
    }
    *data = view.buf;
    int short_ = view.len < size;
    PyBuffer_Release(&view);
    if (short_) {
        Py_DECREF(buf);
        PyErr_SetString(PyExc_ValueError, "allocated buffer too small");
        return NULL;
    }
    return buf;
}

static PyObject *out_copy(PyObject *alloc, const void *src, Py_ssize_t size)
{
    char *data;
    PyObject *buf = out_buffer(alloc, size, &data);
    if (buf != NULL && size > 0) memcpy(data, src, (size_t)size);
    return buf;
}

static PyObject *validity(PyObject *alloc, Col *c, Py_ssize_t n, Py_ssize_t *nulls)
{
    Py_ssize_t k = 0;
    for (Py_ssize_t r = 0; r < n; r++) k += c->kind[r] == K_NULL;
    *nulls = k;
    if (k == 0) Py_RETURN_NONE;
    char *mem;
    PyObject *out = out_buffer(alloc, (n + 7) / 8, &mem);
    if (out == NULL) return NULL;
    unsigned char *bits = (unsigned char *)mem;
    memset(bits, 0, (size_t)(n + 7) / 8);
    for (Py_ssize_t r = 0; r < n; r++)
        if (c->kind[r] != K_NULL) bits[r >> 3] |= (unsigned char)(1u << (r & 7));
    return out;
}

/* (code, null count, validity or None, values, offsets or None) for one column; None when
   its kinds mix (the Python path makes such a column text). */
static PyObject *column(PyObject *alloc, Col *c, Py_ssize_t n)
{
    char *mem;
    unsigned kinds = c->seen & ~(unsigned)K_NULL;
    const char *code;
    PyObject *values = NULL, *offsets = NULL;
    if (kinds == 0) {
        code = "n";
        values = out_buffer(alloc, 0, &mem);
    } else if (kinds == K_BOOL) {
        code = "b";
        values = out_buffer(alloc, (n + 7) / 8, &mem);
        if (values != NULL) {
            unsigned char *bits = (unsigned char *)mem;
            memset(bits, 0, (size_t)(n + 7) / 8);
            for (Py_ssize_t r = 0; r < n; r++)
                if (c->val[r]) bits[r >> 3] |= (unsigned char)(1u << (r & 7));
        }
    } else if (kinds == K_INT) {
        code = "i";
        values = out_copy(alloc, c->val, n * 8);
    } else if (kinds == K_FLOAT || (kinds == (K_FLOAT | K_INT) && !c->wide_int)) {
        code = "f";
        values = out_buffer(alloc, n * 8, &mem);
        if (values != NULL) memcpy(mem, c->val, (size_t)n * 8);
        if (values != NULL && (kinds & K_INT)) {
            char *v = mem;
            for (Py_ssize_t r = 0; r < n; r++) {
                if (c->kind[r] == K_INT) {
                    int64_t i;
                    memcpy(&i, v + r * 8, 8);
                    double d = (double)i; /* exact: |i| <= 2^53 */
                    memcpy(v + r * 8, &d, 8);
                }
            }
        }
    } else if (kinds == K_STR) {
        if (c->str_len > INT32_MAX) Py_RETURN_NONE;
        code = "s";
        values = out_copy(alloc, c->str, (Py_ssize_t)c->str_len);
        offsets = out_buffer(alloc, (n + 1) * 4, &mem);
        if (offsets != NULL) {
            int32_t *o = (int32_t *)mem;
            o[0] = 0;
            for (Py_ssize_t r = 0; r < n; r++) o[r + 1] = (int32_t)c->end[r];
        }
    } else {
        Py_RETURN_NONE;
    }
    Py_ssize_t nulls = 0;
    PyObject *valid = values == NULL ? NULL : validity(alloc, c, n, &nulls);
    if (values == NULL || valid == NULL || (kinds == K_STR && offsets == NULL)) {
        Py_XDECREF(values);
        Py_XDECREF(offsets);
        Py_XDECREF(valid);
        return NULL;
    }
    if (offsets == NULL) offsets = Py_NewRef(Py_None);
    return Py_BuildValue("(snNNN)", code, nulls, valid, values, offsets);
}

static PyObject *read_rows(PyObject *self, PyObject *args)
{
    Py_buffer off_buf, data_buf;
    Py_ssize_t offset, length;
    const char *key;
    Py_ssize_t key_len;
    PyObject *alloc;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*nny#O:read_rows", &off_buf, &data_buf, &offset, &length,
                          &key, &key_len, &alloc))
        return NULL;
    PyObject *result = NULL;
    Grid g;
    memset(&g, 0, sizeof g);
    const int32_t *offs = (const int32_t *)off_buf.buf;
    const unsigned char *data = (const unsigned char *)data_buf.buf;
    if (offset < 0 || length < 0 || (offset + length + 1) * 4 > off_buf.len) {
        PyErr_SetString(PyExc_ValueError, "offsets buffer too short");
        goto done;
    }
    g.cap_rows = length + 64;
    int rc = OK;
    for (Py_ssize_t i = offset; i < offset + length && rc == OK; i++) {
        int32_t a = offs[i], b = offs[i + 1];
        if (a < 0 || b < a || b > data_buf.len) {
            PyErr_SetString(PyExc_ValueError, "offsets out of the data buffer");
            goto done;
        }
        Cur s = {data + a, data + b};
        rc = read_payload(&g, &s, key, key_len);
    }
    if (rc == NO_MEMORY) {
        PyErr_NoMemory();
        goto done;
    }
    if (rc == UNREAD) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    PyObject *cols = PyList_New(g.ncols);
    if (cols == NULL) goto done;
    for (Py_ssize_t j = 0; j < g.ncols; j++) {
        PyObject *col = column(alloc, &g.cols[j], g.rows);
        if (col == NULL) {
            Py_DECREF(cols);
            goto done;
        }
        if (col == Py_None) { /* mixed kinds: the Python path */
            Py_DECREF(cols);
            result = col;
            goto done;
        }
        PyList_SET_ITEM(cols, j, col);
    }
    result = Py_BuildValue("(nN)", g.rows, cols);
done:
    grid_free(&g);
    PyBuffer_Release(&off_buf);
    PyBuffer_Release(&data_buf);
    return result;
}

/* ------------------------------------------------------------------------------- envelopes */

/* The capture records' fields the analyzer reads (analyzer/capture_columns.py _SCHEMA), as
   Arrow's JSON reader gives them with that schema: 8 string leaves under 5 structs. */
enum { L_IN_DATA, L_IN_ENC, L_IN_TYPE, L_OUT_DATA, L_OUT_ENC, L_OUT_TYPE, L_TIME, L_MODEL, LEAVES };
enum { S_CAPTURE, S_IN, S_OUT, S_EVENT, S_MODELTAP, STRUCTS };

typedef struct {
    Col leaf[LEAVES];
    uint8_t *valid[STRUCTS]; /* per row */
} Env;

/* A JSON value skipped, but checked as strictly as a JSON parser would: a line Arrow's reader
   refuses must not be read here. Numbers Arrow might refuse (an exponent overflowing a double)
   and deep nesting are left to it. */
static int skip_value(Cur *s, int depth);

static int skip_string(Cur *s)
{
    const unsigned char *p = s->p + 1, *e = s->e;
    for (;;) {
#if defined(__SSE2__)
        const __m128i quote = _mm_set1_epi8('"'), slash = _mm_set1_epi8('\\');
        const __m128i space = _mm_set1_epi8(0x20);
        while (e - p >= 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)p);
            __m128i odd = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, slash)),
                                       _mm_cmplt_epi8(v, space));
            int m = _mm_movemask_epi8(odd);
            if (m == 0) {
                p += 16;
                continue;
            }
            p += __builtin_ctz((unsigned)m);
            break;
        }
#endif
        while (p < e && *p != '"' && *p != '\\' && *p >= 0x20) p++;
        if (p >= e || *p < 0x20) return UNREAD;
        if (*p == '"') break;
        /* an escape */
        if (e - p < 2) return UNREAD;
        unsigned char t = p[1];
        if (t == 'u') {
            unsigned cp, lo;
            if (e - p < 6 || !hex4(p + 2, &cp)) return UNREAD;
            p += 6;
            if (cp >= 0xDC00 && cp <= 0xDFFF) return UNREAD;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (e - p < 6 || p[0] != '\\' || p[1] != 'u' || !hex4(p + 2, &lo) || lo < 0xDC00 ||
                    lo > 0xDFFF)
                    return UNREAD;
                p += 6;
            }
        } else if (t == '"' || t == '\\' || t == '/' || t == 'b' || t == 'f' || t == 'n' ||
                   t == 'r' || t == 't') {
            p += 2;
        } else {
            return UNREAD;
        }
    }
    s->p = p + 1;
    return OK;
}

static int skip_number(Cur *s)
{
    const unsigned char *p = s->p, *e = s->e, *start = s->p;
    if (p < e && *p == '-') p++;
    if (p >= e) return UNREAD;
    if (*p == '0') p++;
    else if (*p >= '1' && *p <= '9')
        while (p < e && *p >= '0' && *p <= '9') p++;
    else return UNREAD;
    if (p < e && *p == '.') {
        p++;
        if (p >= e || *p < '0' || *p > '9') return UNREAD;
        while (p < e && *p >= '0' && *p <= '9') p++;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < e && (*p == '+' || *p == '-')) p++;
        if (p >= e || *p < '0' || *p > '9') return UNREAD;
        const unsigned char *digits = p;
        while (p < e && *p >= '0' && *p <= '9') p++;
        if (p - digits > 2) return UNREAD; /* exponents from 100: Arrow's to judge */
    }
    if (p - start > 40) return UNREAD;
    s->p = p;
    return OK;
}

static int skip_value(Cur *s, int depth)
{
    int t = peek(s);
    if (t == '"') return skip_string(s);
    if (t == '-' || (t >= '0' && t <= '9')) return skip_number(s);
    if (t == 't') return lit(s, "true", 4) ? OK : UNREAD;
    if (t == 'f') return lit(s, "false", 5) ? OK : UNREAD;
    if (t == 'n') return lit(s, "null", 4) ? OK : UNREAD;
    if (depth >= 32 || (t != '[' && t != '{')) return UNREAD;
    int close = t == '[' ? ']' : '}';
    s->p++;
    skip_ws(s);
    if (peek(s) == close) {
        s->p++;
        return OK;
    }
    for (;;) {
        skip_ws(s);
        if (close == '}') {
            if (peek(s) != '"' || skip_string(s) != OK) return UNREAD;
            skip_ws(s);
            if (peek(s) != ':') return UNREAD;
            s->p++;
            skip_ws(s);
        }
        if (skip_value(s, depth + 1) != OK) return UNREAD;
        skip_ws(s);
        int c = peek(s);
        s->p++;
        if (c == close) return OK;
        if (c != ',') return UNREAD;
    }
}

/* The key at s->p (its opening quote) as one of names[] (*which, or -1 for another key);
   UNREAD for a key with an escape (Arrow decodes it: left to Arrow). s->p after the ':'. */
static int read_key(Cur *s, const char *const *names, int count, int *which)
{
    const unsigned char *p = s->p + 1, *e = s->e;
    const unsigned char *q = p;
    while (q < e && *q != '"' && *q != '\\') q++;
    if (q >= e || *q == '\\') return UNREAD;
    *which = -1;
    size_t len = (size_t)(q - p);
    for (int i = 0; i < count; i++) {
        if (strlen(names[i]) == len && memcmp(names[i], p, len) == 0) {
            *which = i;
            break;
        }
    }
    if (*which < 0) {
        s->p = p - 1; /* another key: skipped, and checked as any string */
        if (skip_string(s) != OK) return UNREAD;
    } else {
        s->p = q + 1;
    }
    skip_ws(s);
    if (peek(s) != ':') return UNREAD;
    s->p++;
    skip_ws(s);
    return OK;
}

/* An object of tracked keys: for key i, leaf[i] >= 0 is a string leaf, else sub[i] >= 0 a
   nested struct (read by read_struct again); others are skipped. */
typedef struct Shape {
    const char *const *names;
    int count;
    const int *leaf;
    const struct Shape *const *sub;
    const int *sub_struct;
} Shape;

static int read_struct(Env *v, Py_ssize_t r, Cur *s, const Shape *shape, int depth)
{
    /* s->p at '{' */
    unsigned seen = 0;
    s->p++;
    skip_ws(s);
    if (peek(s) == '}') {
        s->p++;
        return OK;
    }
    for (;;) {
        skip_ws(s);
        if (peek(s) != '"') return UNREAD;
        int which;
        if (read_key(s, shape->names, shape->count, &which) != OK) return UNREAD;
        int rc;
        if (which < 0) {
            rc = skip_value(s, depth + 1);
        } else {
            if (seen & (1u << which)) return UNREAD; /* a repeated key: left to Arrow */
            seen |= 1u << which;
            int t = peek(s);
            if (t == 'n') {
                rc = lit(s, "null", 4) ? OK : UNREAD; /* null: as missing */
            } else if (shape->leaf[which] >= 0) {
                rc = t == '"' ? read_string(&v->leaf[shape->leaf[which]], r, s) : UNREAD;
            } else {
                if (t != '{') return UNREAD; /* another type than the schema's: Arrow's error */
                v->valid[shape->sub_struct[which]][r] = 1;
                rc = read_struct(v, r, s, shape->sub[which], depth + 1);
            }
        }
        if (rc != OK) return rc;
        skip_ws(s);
        int c = peek(s);
        s->p++;
        if (c == '}') return OK;
        if (c != ',') return UNREAD;
    }
}

static const char *const SIDE_NAMES[] = {"data", "encoding", "observedContentType"};
static const int IN_LEAVES[] = {L_IN_DATA, L_IN_ENC, L_IN_TYPE};
static const int OUT_LEAVES[] = {L_OUT_DATA, L_OUT_ENC, L_OUT_TYPE};
static const int NO_SUB[] = {-1, -1, -1};
static const Shape IN_SHAPE = {SIDE_NAMES, 3, IN_LEAVES, NULL, NO_SUB};
static const Shape OUT_SHAPE = {SIDE_NAMES, 3, OUT_LEAVES, NULL, NO_SUB};
static const char *const CAPTURE_NAMES[] = {"endpointInput", "endpointOutput"};
static const int NO_LEAVES[] = {-1, -1, -1};
static const Shape *const CAPTURE_SUBS[] = {&IN_SHAPE, &OUT_SHAPE};
static const int CAPTURE_STRUCTS[] = {S_IN, S_OUT};
static const Shape CAPTURE_SHAPE = {CAPTURE_NAMES, 2, NO_LEAVES, CAPTURE_SUBS, CAPTURE_STRUCTS};
static const char *const EVENT_NAMES[] = {"inferenceTime"};
static const int EVENT_LEAVES[] = {L_TIME};
static const Shape EVENT_SHAPE = {EVENT_NAMES, 1, EVENT_LEAVES, NULL, NO_SUB};
static const char *const MODELTAP_NAMES[] = {"targetModel"};
static const int MODELTAP_LEAVES[] = {L_MODEL};
static const Shape MODELTAP_SHAPE = {MODELTAP_NAMES, 1, MODELTAP_LEAVES, NULL, NO_SUB};
static const char *const TOP_NAMES[] = {"captureData", "eventMetadata", "modeltap"};
static const Shape *const TOP_SUBS[] = {&CAPTURE_SHAPE, &EVENT_SHAPE, &MODELTAP_SHAPE};
static const int TOP_STRUCTS[] = {S_CAPTURE, S_EVENT, S_MODELTAP};
static const Shape TOP_SHAPE = {TOP_NAMES, 3, NO_LEAVES, TOP_SUBS, TOP_STRUCTS};

static PyObject *leaf_buffers(PyObject *alloc, Col *c, Py_ssize_t n)
{
    if (c->str_len > INT32_MAX) Py_RETURN_NONE;
    Py_ssize_t nulls = 0;
    char *mem = NULL;
    PyObject *valid = validity(alloc, c, n, &nulls);
    PyObject *values = valid == NULL ? NULL : out_copy(alloc, c->str, (Py_ssize_t)c->str_len);
    PyObject *offsets = values == NULL ? NULL : out_buffer(alloc, (n + 1) * 4, &mem);
    if (valid == NULL || values == NULL || offsets == NULL) {
        Py_XDECREF(valid);
        Py_XDECREF(values);
        Py_XDECREF(offsets);
        return NULL;
    }
    int32_t *o = (int32_t *)mem;
    o[0] = 0;
    for (Py_ssize_t r = 0; r < n; r++) o[r + 1] = (int32_t)c->end[r];
    return Py_BuildValue("(nNNN)", nulls, valid, offsets, values);
}

static PyObject *struct_buffers(PyObject *alloc, const uint8_t *valid, Py_ssize_t n)
{
    Py_ssize_t nulls = 0;
    for (Py_ssize_t r = 0; r < n; r++) nulls += !valid[r];
    if (nulls == 0) return Py_BuildValue("(nO)", (Py_ssize_t)0, Py_None);
    char *mem;
    PyObject *out = out_buffer(alloc, (n + 7) / 8, &mem);
    if (out == NULL) return NULL;
    unsigned char *bits = (unsigned char *)mem;
    memset(bits, 0, (size_t)(n + 7) / 8);
    for (Py_ssize_t r = 0; r < n; r++)
        if (valid[r]) bits[r >> 3] |= (unsigned char)(1u << (r & 7));
    return Py_BuildValue("(nN)", nulls, out);
}

static PyObject *read_envelopes(PyObject *self, PyObject *args)
{
    Py_buffer buf;
    PyObject *alloc;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*O:read_envelopes", &buf, &alloc)) return NULL;
    const unsigned char *data = buf.buf, *end = data + buf.len;
    PyObject *result = NULL, *leaves = NULL, *structs = NULL;
    Env v;
    memset(&v, 0, sizeof v);
    Py_ssize_t lines = 1;
    for (const unsigned char *p = data; (p = memchr(p, '\n', (size_t)(end - p))) != NULL; p++)
        lines++;
    int rc = OK;
    for (int i = 0; i < LEAVES && rc == OK; i++) rc = col_room(&v.leaf[i], lines);
    for (int i = 0; i < STRUCTS && rc == OK; i++) {
        v.valid[i] = PyMem_Calloc((size_t)lines, 1);
        if (v.valid[i] == NULL) rc = NO_MEMORY;
    }
    Py_ssize_t n = 0;
    const unsigned char *p = data;
    while (rc == OK && p < end) {
        const unsigned char *nl = memchr(p, '\n', (size_t)(end - p));
        const unsigned char *stop = nl == NULL ? end : nl;
        Cur s = {p, stop};
        if (peek(&s) != '{') {
            rc = UNREAD; /* an empty line or not an object: left to Arrow's reader */
            break;
        }
        for (int i = 0; i < LEAVES; i++) put_null(&v.leaf[i], n);
        v.valid[S_CAPTURE][n] = 0;
        rc = read_struct(&v, n, &s, &TOP_SHAPE, 0);
        if (rc == OK && s.p != stop) rc = UNREAD; /* anything after the object */
        for (int i = 0; i < LEAVES; i++) /* strings read keep their kind; the rest stay null */
            if (v.leaf[i].kind[n] != K_STR) put_null(&v.leaf[i], n);
        n++;
        p = nl == NULL ? end : nl + 1;
    }
    if (rc == NO_MEMORY) {
        PyErr_NoMemory();
        goto done;
    }
    if (rc == UNREAD) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    /* children of a null struct are null (as Arrow's reader leaves them) */
    for (Py_ssize_t r = 0; r < n; r++) {
        if (!v.valid[S_CAPTURE][r]) v.valid[S_IN][r] = v.valid[S_OUT][r] = 0;
    }
    leaves = PyList_New(LEAVES);
    structs = PyList_New(STRUCTS);
    if (leaves == NULL || structs == NULL) goto done;
    for (int i = 0; i < LEAVES; i++) {
        PyObject *item = leaf_buffers(alloc, &v.leaf[i], n);
        if (item == NULL) goto done;
        if (item == Py_None) {
            result = item;
            goto done;
        }
        PyList_SET_ITEM(leaves, i, item);
    }
    for (int i = 0; i < STRUCTS; i++) {
        PyObject *item = struct_buffers(alloc, v.valid[i], n);
        if (item == NULL) goto done;
        PyList_SET_ITEM(structs, i, item);
    }
    result = Py_BuildValue("(nOO)", n, leaves, structs);
done:
    Py_XDECREF(leaves);
    Py_XDECREF(structs);
    for (int i = 0; i < LEAVES; i++) {
        PyMem_Free(v.leaf[i].kind);
        PyMem_Free(v.leaf[i].val);
        PyMem_Free(v.leaf[i].end);
        PyMem_Free(v.leaf[i].str);
    }
    for (int i = 0; i < STRUCTS; i++) PyMem_Free(v.valid[i]);
    PyBuffer_Release(&buf);
    return result;
}

static PyMethodDef methods[] = {
    {"read_rows", read_rows, METH_VARARGS,
     "read_rows(offsets, data, offset, length, key, alloc, /) -> (rows, columns) | None"},
    {"read_envelopes", read_envelopes, METH_VARARGS,
     "read_envelopes(chunk, alloc, /) -> (rows, leaves, structs) | None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "analyzer._jsonrows",
    "JSON payloads' rows read into Arrow column buffers (see analyzer/jsonrows.py).", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__jsonrows(void) { return PyModule_Create(&module); }
