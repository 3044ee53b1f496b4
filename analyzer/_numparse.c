/* An Arrow string column classified and converted to float64 in one pass over its buffers.

Built only with MODELTAP_COMPILE=1 (setup.py); analyzer/numparse.py is the Python side, and
analyzer/inference.py keeps its Arrow-compute path where this is not built. The result is the one
that path gives, value for value:

* a value is a number when its whole text matches ^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$
  (the regular expression inference.py's strict path applies with RE2: no space, no "nan"/"inf",
  no hexadecimal, no trailing newline), Integral when it holds no '.', 'e' or 'E', else
  Fractional; anything else non-null is a String, a null is Missing;
* a number's float64 is the correctly rounded value of its text, as Arrow's cast gives it (1e400
  is inf, 1e-400 is 0.0, "-0" is -0.0): exactly m * 10^k or m / 10^k when the significant digits
  m are below 2^53 and |k| <= 22 (both operands exact, so one correctly rounded operation); for
  up to 19 significant digits and |k| <= 27, the same operation in long double (see wide_value);
  glibc's strtod in the C locale (correctly rounded) otherwise. Missing values and Strings are
  NaN.

Why: per 100,000 rows of 25 text columns, Arrow's text-to-float cast, the 64-value sample cast,
the integer cast and the regular expressions that count integral literals (Arrow's cast cannot
tell "2" from "2.0") were about half of a profile update's classification. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

enum { K_MISSING = 0, K_INTEGRAL = 1, K_FRACTIONAL = 2, K_STRING = 3 };

static locale_t C_LOCALE;

static const double POW10[23] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

#define MAX_EXACT_MANTISSA (UINT64_C(1) << 53)

/* The slow path: glibc's correctly rounded strtod on a NUL-terminated copy of the text (already
   checked against the grammar, so strtod reads all of it). */
static double slow_value(const char *p, Py_ssize_t len, int *nomem)
{
    char stack[128];
    char *buf = stack;
    if (len >= (Py_ssize_t)sizeof(stack)) {
        buf = malloc((size_t)len + 1);
        if (buf == NULL) {
            *nomem = 1;
            return NAN;
        }
    }
    memcpy(buf, p, (size_t)len);
    buf[len] = '\0';
    double v = strtod_l(buf, NULL, C_LOCALE);
    if (buf != stack)
        free(buf);
    return v;
}

#if LDBL_MANT_DIG == 64 && (defined(__x86_64__) || defined(__i386__))
static const long double POW10_WIDE[28] = {
    1e0L,  1e1L,  1e2L,  1e3L,  1e4L,  1e5L,  1e6L,  1e7L,  1e8L,  1e9L,
    1e10L, 1e11L, 1e12L, 1e13L, 1e14L, 1e15L, 1e16L, 1e17L, 1e18L, 1e19L,
    1e20L, 1e21L, 1e22L, 1e23L, 1e24L, 1e25L, 1e26L, 1e27L,
};
#endif

/* m * 10^scale (|scale| <= 27, m < 10^19) correctly rounded, through one long double operation
   with x87 long double (a 64-bit significand): m and 10^|scale| (5^27 < 2^64) are exact there,
   so r is m * 10^scale rounded to 64 bits, and rounding r to double gives the correctly rounded
   double unless r is itself halfway between two doubles (the only case double rounding can
   err: a halfway point between x and r would be a 64-bit number strictly between them).
   Returns 0 for that case and on other machines: strtod then. */
static inline int wide_value(uint64_t m, int64_t scale, double *out)
{
#if LDBL_MANT_DIG == 64 && (defined(__x86_64__) || defined(__i386__))
    /* x87 extended precision: the significand is the low 64 bits, explicit leading bit. The
       value is a normal double here (1e-27 <= |r| < 1e46), so r is halfway between two doubles
       exactly when its 11 bits below the double's 53 are 10000000000. */
    union {
        long double x;
        uint64_t bits[2];
    } r;
    r.x = scale < 0 ? (long double)m / POW10_WIDE[-scale] : (long double)m * POW10_WIDE[scale];
    if ((r.bits[0] & 0x7FF) == 0x400)
        return 0;
    *out = (double)r.x;
    return 1;
#else
    (void)m;
    (void)scale;
    (void)out;
    return 0;
#endif
}

/* Eight ASCII digits at once (little-endian loads), for the digits of long numbers. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define SWAR_DIGITS 1
static inline int eight_digits(uint64_t w)
{
    return !(((w + 0x4646464646464646u) | (w - 0x3030303030303030u)) & 0x8080808080808080u);
}

static inline uint64_t eight_digits_value(uint64_t w)
{
    w -= 0x3030303030303030u;
    w = w * 10 + (w >> 8);
    w = (((w & 0x000000FF000000FFu) * (100 + (UINT64_C(1000000) << 32))) +
         (((w >> 16) & 0x000000FF000000FFu) * (1 + (UINT64_C(10000) << 32)))) >>
        32;
    return w & 0xFFFFFFFFu;
}
#else
#define SWAR_DIGITS 0
#endif

/* The digits at p[*i:len] into the significand *m (up to 19 significant digits; leading zeros
   not counted, more set *overflow), *i moved past them; returns how many digits were read. */
static inline Py_ssize_t read_digits(const char *p, Py_ssize_t len, Py_ssize_t *pi, uint64_t *pm,
                                     int *pdigits, int *overflow)
{
    Py_ssize_t i = *pi, n = 0;
    uint64_t m = *pm;
    int digits = *pdigits;
    for (;;) {
#if SWAR_DIGITS
        /* eight more significant digits at once while they fit m exactly */
        if (m && digits <= 11 && i + 8 <= len) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if (eight_digits(w)) {
                m = m * 100000000u + eight_digits_value(w);
                digits += 8;
                n += 8;
                i += 8;
                continue;
            }
        }
#endif
        if (i >= len || (unsigned char)(p[i] - '0') >= 10)
            break;
        unsigned d = (unsigned)(p[i] - '0');
        if (m || d) {
            if (digits < 19)
                m = m * 10 + d;
            else
                *overflow = 1;
            digits++;
        }
        n++;
        i++;
    }
    *pi = i;
    *pm = m;
    *pdigits = digits;
    return n;
}

/* Kind of the text p[0:len], and its value in *out when it is a number. */
static inline int classify_one(const char *p, Py_ssize_t len, double *out, int *nomem)
{
    Py_ssize_t i = 0;
    int negative = 0;
    if (len == 0)
        return K_STRING;
    if (p[0] == '+' || p[0] == '-') {
        negative = p[0] == '-';
        i = 1;
    }
    uint64_t m = 0;
    int digits = 0;      /* significant digits in m (leading zeros not counted) */
    int overflow = 0;    /* more significant digits than m can hold exactly */
    Py_ssize_t int_digits = read_digits(p, len, &i, &m, &digits, &overflow), frac_digits = 0;
    int dot = 0;
    if (i < len && p[i] == '.') {
        dot = 1;
        i++;
        frac_digits = read_digits(p, len, &i, &m, &digits, &overflow);
    }
    if (int_digits == 0 && frac_digits == 0)
        return K_STRING; /* "", "+", ".", "e5", ".e5" */
    int has_exp = 0;
    int64_t exp = 0;
    if (i < len && (p[i] == 'e' || p[i] == 'E')) {
        has_exp = 1;
        i++;
        int exp_negative = 0;
        if (i < len && (p[i] == '+' || p[i] == '-')) {
            exp_negative = p[i] == '-';
            i++;
        }
        Py_ssize_t exp_digits = 0;
        while (i < len && (unsigned char)(p[i] - '0') < 10) {
            if (exp < 1000000)
                exp = exp * 10 + (p[i] - '0');
            exp_digits++;
            i++;
        }
        if (exp_digits == 0)
            return K_STRING; /* "1e", "1e+" */
        if (exp_negative)
            exp = -exp;
    }
    if (i != len)
        return K_STRING; /* anything after the number: a space, a letter, a second '.' */
    double v;
    int64_t scale = exp - (int64_t)frac_digits;
    if (m == 0 && !overflow) {
        v = 0.0;
    } else if (!overflow && m <= MAX_EXACT_MANTISSA && scale >= -22 && scale <= 22) {
        v = scale < 0 ? (double)m / POW10[-scale] : (double)m * POW10[scale];
    } else if (!overflow && scale >= -27 && scale <= 27 && wide_value(m, scale, &v)) {
        /* v set */
    } else {
        *out = slow_value(p, len, nomem);
        return dot || has_exp ? K_FRACTIONAL : K_INTEGRAL;
    }
    *out = negative ? -v : v;
    return dot || has_exp ? K_FRACTIONAL : K_INTEGRAL;
}

/* classify_text(validity, offsets, data, offset, length, wide, values, kinds)
   -> (missing, integral, fractional, string)

   The buffers of an Arrow string (wide=0: int32 offsets) or large_string (wide=1) array of
   `length` values starting at `offset`; validity None when there are no nulls. `values` (a
   writable buffer of `length` float64) receives each value's number or NaN; `kinds` (None, or a
   writable buffer of `length` bytes) each value's kind, 0 missing .. 3 String. */
static PyObject *classify_text(PyObject *self, PyObject *args)
{
    PyObject *validity_obj, *data_obj, *kinds_obj;
    Py_buffer offsets, values, validity = {0}, data = {0}, kinds = {0};
    Py_ssize_t offset, length;
    int wide;
    (void)self;
    if (!PyArg_ParseTuple(args, "Oy*Onnpw*O", &validity_obj, &offsets, &data_obj, &offset,
                          &length, &wide, &values, &kinds_obj))
        return NULL;
    PyObject *result = NULL;
    int have_validity = validity_obj != Py_None, have_data = data_obj != Py_None;
    int have_kinds = kinds_obj != Py_None;
    if (have_validity && PyObject_GetBuffer(validity_obj, &validity, PyBUF_SIMPLE) < 0) {
        have_validity = 0;
        goto done;
    }
    if (have_data && PyObject_GetBuffer(data_obj, &data, PyBUF_SIMPLE) < 0) {
        have_data = 0;
        goto done;
    }
    if (have_kinds && PyObject_GetBuffer(kinds_obj, &kinds, PyBUF_WRITABLE) < 0) {
        have_kinds = 0;
        goto done;
    }
    Py_ssize_t width = wide ? 8 : 4;
    if (offset < 0 || length < 0 || offsets.len / width < offset + length + 1 ||
        values.len < length * (Py_ssize_t)sizeof(double) || (have_kinds && kinds.len < length) ||
        (have_validity && validity.len * 8 < offset + length)) {
        PyErr_SetString(PyExc_ValueError, "buffers too small for the array");
        goto done;
    }
    const unsigned char *bits = have_validity ? validity.buf : NULL;
    const char *text = have_data ? data.buf : "";
    Py_ssize_t text_len = have_data ? data.len : 0;
    double *out = values.buf;
    unsigned char *kind_out = have_kinds ? kinds.buf : NULL;
    Py_ssize_t counts[4] = {0, 0, 0, 0};
    int bad = 0, nomem = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < length; i++) {
        Py_ssize_t at = offset + i;
        int kind;
        double v = NAN;
        if (bits && !((bits[at >> 3] >> (at & 7)) & 1)) {
            kind = K_MISSING;
        } else {
            int64_t start, stop;
            if (wide) {
                start = ((const int64_t *)offsets.buf)[at];
                stop = ((const int64_t *)offsets.buf)[at + 1];
            } else {
                start = ((const int32_t *)offsets.buf)[at];
                stop = ((const int32_t *)offsets.buf)[at + 1];
            }
            if (start < 0 || stop < start || stop > text_len) {
                bad = 1;
                break;
            }
            kind = classify_one(text + start, (Py_ssize_t)(stop - start), &v, &nomem);
            if (kind == K_STRING)
                v = NAN;
        }
        counts[kind]++;
        out[i] = v;
        if (kind_out)
            kind_out[i] = (unsigned char)kind;
    }
    Py_END_ALLOW_THREADS
    if (nomem) {
        PyErr_NoMemory();
        goto done;
    }
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "offsets outside the data buffer");
        goto done;
    }
    result = Py_BuildValue("(nnnn)", counts[0], counts[1], counts[2], counts[3]);
done:
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&values);
    if (have_validity)
        PyBuffer_Release(&validity);
    if (have_data)
        PyBuffer_Release(&data);
    if (have_kinds)
        PyBuffer_Release(&kinds);
    return result;
}


/* ------------------------------------------------------------------------------------------
   A chunk of capture lines of one layout, split at commas (analyzer/capture_template.py): what
   Arrow's CSV reader gives for it with no quoting and every column text (a line of another
   width or an empty line: no result), without its per-column builders. */

/* split_fields(chunk, width, lines, starts) -> bool

   Fills `starts` (int32, lines x (width + 1)): field j of line i is
   chunk[starts[i, j] : starts[i, j + 1] - 1]. False when a line has another number of fields,
   a line is empty, or the chunk has another number of lines. */
static PyObject *split_fields(PyObject *self, PyObject *args)
{
    Py_buffer chunk, starts;
    Py_ssize_t width, lines;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nnw*", &chunk, &width, &lines, &starts))
        return NULL;
    PyObject *result = NULL;
    if (width < 1 || lines < 0 || chunk.len >= INT32_MAX ||
        starts.len < lines * (width + 1) * (Py_ssize_t)sizeof(int32_t)) {
        PyErr_SetString(PyExc_ValueError, "bad split_fields arguments");
        goto done;
    }
    const unsigned char *buf = chunk.buf;
    Py_ssize_t n = chunk.len;
    int32_t *row = starts.buf;
    Py_ssize_t line = 0, field = 0;
    int ok = 1;
    Py_BEGIN_ALLOW_THREADS
    if (lines > 0)
        row[0] = 0;
    Py_ssize_t i = 0;
#define ON_BYTE(pos)                                                                               \
    do {                                                                                           \
        Py_ssize_t at_ = (pos);                                                                    \
        if (buf[at_] == ',') {                                                                     \
            if (++field >= width) {                                                                \
                ok = 0;                                                                            \
                goto split_end;                                                                    \
            }                                                                                      \
            row[field] = (int32_t)(at_ + 1);                                                       \
        } else {                                                                                   \
            if (field != width - 1 || at_ == row[0]) {                                             \
                ok = 0;                                                                            \
                goto split_end;                                                                    \
            }                                                                                      \
            row[width] = (int32_t)(at_ + 1);                                                       \
            row += width + 1;                                                                      \
            field = 0;                                                                             \
            if (++line < lines)                                                                    \
                row[0] = (int32_t)(at_ + 1);                                                       \
            else if (at_ + 1 < n) {                                                                \
                ok = 0;                                                                            \
                goto split_end;                                                                    \
            }                                                                                      \
        }                                                                                          \
    } while (0)
    if (lines == 0) {
        ok = n == 0;
        goto split_end;
    }
#if defined(__SSE2__)
    {
        const __m128i comma = _mm_set1_epi8(','), newline = _mm_set1_epi8('\n');
        for (; i + 16 <= n; i += 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(buf + i));
            unsigned mask = (unsigned)_mm_movemask_epi8(
                _mm_or_si128(_mm_cmpeq_epi8(v, comma), _mm_cmpeq_epi8(v, newline)));
            while (mask) {
                ON_BYTE(i + __builtin_ctz(mask));
                mask &= mask - 1;
            }
        }
    }
#endif
    for (; i < n; i++)
        if (buf[i] == ',' || buf[i] == '\n')
            ON_BYTE(i);
#undef ON_BYTE
    if (line < lines) { /* the last line, without its newline */
        if (line != lines - 1 || field != width - 1 || n == row[0]) {
            ok = 0;
            goto split_end;
        }
        row[width] = (int32_t)(n + 1);
        line++;
    }
split_end:;
    Py_END_ALLOW_THREADS
    result = PyBool_FromLong(ok && line == lines);
done:
    PyBuffer_Release(&chunk);
    PyBuffer_Release(&starts);
    return result;
}

/* Arrow's CSV null values (pyarrow.csv.ConvertOptions().null_values), given once by the Python
   side: a field whose whole text is one of them is null. */
#define MAX_NULLS 64
static char *NULL_TEXT[MAX_NULLS];
static Py_ssize_t NULL_LEN[MAX_NULLS];
static int NULL_COUNT = 0;
static unsigned char NULL_FIRST[256]; /* first bytes of the non-empty ones */
static Py_ssize_t NULL_MAX_LEN = 0;
static int EMPTY_IS_NULL = 0;

static PyObject *set_null_values(PyObject *self, PyObject *arg)
{
    (void)self;
    PyObject *seq = PySequence_Fast(arg, "null values: a sequence of bytes");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n > MAX_NULLS) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "too many null values");
        return NULL;
    }
    for (int k = 0; k < NULL_COUNT; k++)
        PyMem_Free(NULL_TEXT[k]);
    NULL_COUNT = 0;
    NULL_MAX_LEN = 0;
    EMPTY_IS_NULL = 0;
    memset(NULL_FIRST, 0, sizeof(NULL_FIRST));
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, k);
        char *text;
        Py_ssize_t len;
        if (PyBytes_AsStringAndSize(item, &text, &len) < 0) {
            Py_DECREF(seq);
            return NULL;
        }
        if (len == 0) {
            EMPTY_IS_NULL = 1;
            continue;
        }
        char *copy = PyMem_Malloc((size_t)len);
        if (copy == NULL) {
            Py_DECREF(seq);
            return PyErr_NoMemory();
        }
        memcpy(copy, text, (size_t)len);
        NULL_TEXT[NULL_COUNT] = copy;
        NULL_LEN[NULL_COUNT++] = len;
        NULL_FIRST[(unsigned char)text[0]] = 1;
        if (len > NULL_MAX_LEN)
            NULL_MAX_LEN = len;
    }
    Py_DECREF(seq);
    Py_RETURN_NONE;
}

static inline int is_null_text(const unsigned char *p, Py_ssize_t len)
{
    if (len == 0)
        return EMPTY_IS_NULL;
    if (len > NULL_MAX_LEN || !NULL_FIRST[p[0]])
        return 0;
    for (int k = 0; k < NULL_COUNT; k++)
        if (NULL_LEN[k] == len && memcmp(NULL_TEXT[k], p, (size_t)len) == 0)
            return 1;
    return 0;
}

/* field_is(chunk, starts, width, lines, j, text) -> bool: field j of every line is `text`. */
static PyObject *field_is(PyObject *self, PyObject *args)
{
    Py_buffer chunk, starts, text;
    Py_ssize_t width, lines, j;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*nnny*", &chunk, &starts, &width, &lines, &j, &text))
        return NULL;
    PyObject *result = NULL;
    if (j < 0 || j >= width || starts.len < lines * (width + 1) * (Py_ssize_t)sizeof(int32_t)) {
        PyErr_SetString(PyExc_ValueError, "bad field_is arguments");
        goto done;
    }
    const int32_t *row = starts.buf;
    const char *buf = chunk.buf;
    int same = 1;
    for (Py_ssize_t i = 0; i < lines && same; i++, row += width + 1) {
        Py_ssize_t len = (Py_ssize_t)row[j + 1] - 1 - row[j];
        same = len == text.len && memcmp(buf + row[j], text.buf, (size_t)len) == 0;
    }
    result = PyBool_FromLong(same);
done:
    PyBuffer_Release(&chunk);
    PyBuffer_Release(&starts);
    PyBuffer_Release(&text);
    return result;
}

/* field_is_string(chunk, starts, width, lines, j, prefix, suffix) -> bool: field j of every
   line is prefix, any text without '"', suffix (the regular expression ^prefix[^"]*suffix$ that
   capture_template checks such a field with), and none is a null value (which the CSV reader
   would have made null, failing that check). */
static PyObject *field_is_string(PyObject *self, PyObject *args)
{
    Py_buffer chunk, starts, prefix, suffix;
    Py_ssize_t width, lines, j;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*nnny*y*", &chunk, &starts, &width, &lines, &j, &prefix,
                          &suffix))
        return NULL;
    PyObject *result = NULL;
    if (j < 0 || j >= width || starts.len < lines * (width + 1) * (Py_ssize_t)sizeof(int32_t)) {
        PyErr_SetString(PyExc_ValueError, "bad field_is_string arguments");
        goto done;
    }
    const int32_t *row = starts.buf;
    const unsigned char *buf = chunk.buf;
    int good = 1;
    for (Py_ssize_t i = 0; i < lines && good; i++, row += width + 1) {
        const unsigned char *p = buf + row[j];
        Py_ssize_t len = (Py_ssize_t)row[j + 1] - 1 - row[j];
        good = len >= prefix.len + suffix.len && !is_null_text(p, len) &&
               memcmp(p, prefix.buf, (size_t)prefix.len) == 0 &&
               memcmp(p + len - suffix.len, suffix.buf, (size_t)suffix.len) == 0 &&
               memchr(p + prefix.len, '"', (size_t)(len - prefix.len - suffix.len)) == NULL;
    }
    result = PyBool_FromLong(good);
done:
    PyBuffer_Release(&chunk);
    PyBuffer_Release(&starts);
    PyBuffer_Release(&prefix);
    PyBuffer_Release(&suffix);
    return result;
}

/* field_columns(chunk, starts, width, lines, lo, hi, head, tail, nulls)
   -> [(offsets, data, validity or None, null count)] or None

   Fields lo..hi of every line as Arrow string buffers (int32 offsets), `head` cut off the start
   of field lo and `tail` off the end of field hi (None when a line's field lacks them). A field
   whose text (after the cut) is a null value is: with nulls 1 null, with nulls 0 the end (None),
   with nulls 2 text like any other. */
static PyObject *field_columns(PyObject *self, PyObject *args)
{
    Py_buffer chunk, starts, head, tail;
    Py_ssize_t width, lines, lo, hi;
    int nulls_mode;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*nnnny*y*i", &chunk, &starts, &width, &lines, &lo, &hi, &head,
                          &tail, &nulls_mode))
        return NULL;
    PyObject *result = NULL, *list = NULL;
    if (lo < 0 || hi < lo || hi >= width ||
        starts.len < lines * (width + 1) * (Py_ssize_t)sizeof(int32_t)) {
        PyErr_SetString(PyExc_ValueError, "bad field_columns arguments");
        goto done;
    }
    list = PyList_New(0);
    if (list == NULL)
        goto done;
    const unsigned char *buf = chunk.buf;
    for (Py_ssize_t j = lo; j <= hi; j++) {
        Py_ssize_t cut_head = j == lo ? head.len : 0, cut_tail = j == hi ? tail.len : 0;
        const int32_t *row = starts.buf;
        Py_ssize_t total = 0;
        for (Py_ssize_t i = 0; i < lines; i++, row += width + 1) {
            Py_ssize_t start = row[j], len = (Py_ssize_t)row[j + 1] - 1 - start;
            if (len < cut_head + cut_tail ||
                (cut_head && memcmp(buf + start, head.buf, (size_t)cut_head) != 0) ||
                (cut_tail &&
                 memcmp(buf + start + len - cut_tail, tail.buf, (size_t)cut_tail) != 0)) {
                Py_CLEAR(list);
                result = Py_None;
                Py_INCREF(result);
                goto done;
            }
            total += len - cut_head - cut_tail;
        }
        PyObject *offsets = PyBytes_FromStringAndSize(NULL, (lines + 1) * 4);
        PyObject *data = PyBytes_FromStringAndSize(NULL, total);
        PyObject *validity = NULL;
        if (offsets == NULL || data == NULL) {
            Py_XDECREF(offsets);
            Py_XDECREF(data);
            goto done;
        }
        int32_t *off = (int32_t *)PyBytes_AS_STRING(offsets);
        unsigned char *out = (unsigned char *)PyBytes_AS_STRING(data);
        unsigned char *bits = NULL;
        Py_ssize_t nulls = 0, at = 0;
        int refused = 0;
        row = starts.buf;
        off[0] = 0;
        for (Py_ssize_t i = 0; i < lines; i++, row += width + 1) {
            Py_ssize_t start = row[j] + cut_head;
            Py_ssize_t len = (Py_ssize_t)row[j + 1] - 1 - row[j] - cut_head - cut_tail;
            if (nulls_mode != 2 && is_null_text(buf + start, len)) {
                if (nulls_mode == 0) {
                    refused = 1;
                    break;
                }
                if (bits == NULL) {
                    validity = PyBytes_FromStringAndSize(NULL, (lines + 7) / 8);
                    if (validity == NULL)
                        break;
                    bits = (unsigned char *)PyBytes_AS_STRING(validity);
                    memset(bits, 0xFF, (size_t)((lines + 7) / 8));
                }
                bits[i >> 3] &= (unsigned char)~(1u << (i & 7));
                nulls++;
            } else {
                memcpy(out + at, buf + start, (size_t)len);
                at += len;
            }
            off[i + 1] = (int32_t)at;
        }
        if (refused || (nulls && validity == NULL)) {
            Py_DECREF(offsets);
            Py_DECREF(data);
            Py_XDECREF(validity);
            if (refused) {
                Py_CLEAR(list);
                result = Py_None;
                Py_INCREF(result);
            }
            goto done;
        }
        if (at != total && _PyBytes_Resize(&data, at) < 0) {
            Py_DECREF(offsets);
            Py_XDECREF(validity);
            goto done;
        }
        PyObject *item = Py_BuildValue("(NNNn)", offsets, data,
                                       validity ? validity : (Py_INCREF(Py_None), Py_None), nulls);
        if (item == NULL || PyList_Append(list, item) < 0) {
            Py_XDECREF(item);
            goto done;
        }
        Py_DECREF(item);
    }
    result = list;
    list = NULL;
done:
    Py_XDECREF(list);
    PyBuffer_Release(&chunk);
    PyBuffer_Release(&starts);
    PyBuffer_Release(&head);
    PyBuffer_Release(&tail);
    return result;
}


/* byte_counts(chunk) -> (line ends, control bytes, backslashes, quotes): the counts of '\n',
   bytes below 0x20, '\\' and '"' that canonical_chunk checks, in one pass. */
static PyObject *byte_counts(PyObject *self, PyObject *arg)
{
    Py_buffer chunk;
    (void)self;
    if (PyObject_GetBuffer(arg, &chunk, PyBUF_SIMPLE) < 0)
        return NULL;
    const unsigned char *buf = chunk.buf;
    Py_ssize_t n = chunk.len, i = 0;
    Py_ssize_t ends = 0, controls = 0, backslashes = 0, quotes = 0;
    Py_BEGIN_ALLOW_THREADS
#if defined(__SSE2__)
    /* per-byte counters (a match is 0xFF: subtracting it adds one), summed every 255 blocks */
    const __m128i nl = _mm_set1_epi8('\n'), bs = _mm_set1_epi8('\\'), qt = _mm_set1_epi8('"');
    const __m128i ctl = _mm_set1_epi8(0x1F), zero = _mm_setzero_si128();
    while (i + 16 <= n) {
        __m128i a_nl = zero, a_bs = zero, a_qt = zero, a_ctl = zero;
        for (int k = 0; k < 255 && i + 16 <= n; k++, i += 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(buf + i));
            a_nl = _mm_sub_epi8(a_nl, _mm_cmpeq_epi8(v, nl));
            a_bs = _mm_sub_epi8(a_bs, _mm_cmpeq_epi8(v, bs));
            a_qt = _mm_sub_epi8(a_qt, _mm_cmpeq_epi8(v, qt));
            /* v <= 0x1F unsigned: min(v, 0x1F) == v */
            a_ctl = _mm_sub_epi8(a_ctl, _mm_cmpeq_epi8(_mm_min_epu8(v, ctl), v));
        }
#define SUM16(acc) ((Py_ssize_t)_mm_cvtsi128_si32(_mm_sad_epu8(acc, zero)) + \
                    (Py_ssize_t)_mm_cvtsi128_si32(_mm_srli_si128(_mm_sad_epu8(acc, zero), 8)))
        ends += SUM16(a_nl);
        backslashes += SUM16(a_bs);
        quotes += SUM16(a_qt);
        controls += SUM16(a_ctl);
#undef SUM16
    }
#endif
    for (; i < n; i++) {
        unsigned char c = buf[i];
        ends += c == '\n';
        backslashes += c == '\\';
        quotes += c == '"';
        controls += c < 0x20;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&chunk);
    return Py_BuildValue("(nnnn)", ends, controls, backslashes, quotes);
}

/* plain_times(validity, offsets, data, offset, length, out, done) -> None

   analyzer/capture_columns.py _plain_us in one pass: each value of the form
   YYYY-MM-DDTHH:MM:SSZ (exactly 20 bytes, a real date from 1970 on, hours 0-23, minutes and
   seconds 0-59) as microseconds since the epoch in `out` (int64) with done[i] = 1; others are
   left as they are in `out`, done[i] = 0. */
static const int MONTH_DAYS[13] = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

static PyObject *plain_times(PyObject *self, PyObject *args)
{
    PyObject *validity_obj, *data_obj;
    Py_buffer offsets, out, done, validity = {0}, data = {0};
    Py_ssize_t offset, length;
    (void)self;
    if (!PyArg_ParseTuple(args, "Oy*Onnw*w*", &validity_obj, &offsets, &data_obj, &offset,
                          &length, &out, &done))
        return NULL;
    PyObject *result = NULL;
    int have_validity = validity_obj != Py_None, have_data = data_obj != Py_None;
    if (have_validity && PyObject_GetBuffer(validity_obj, &validity, PyBUF_SIMPLE) < 0) {
        have_validity = 0;
        goto done;
    }
    if (have_data && PyObject_GetBuffer(data_obj, &data, PyBUF_SIMPLE) < 0) {
        have_data = 0;
        goto done;
    }
    if (offset < 0 || length < 0 || offsets.len / 4 < offset + length + 1 ||
        out.len < length * 8 || done.len < length ||
        (have_validity && validity.len * 8 < offset + length)) {
        PyErr_SetString(PyExc_ValueError, "buffers too small for the array");
        goto done;
    }
    const int32_t *off = offsets.buf;
    const unsigned char *bits = have_validity ? validity.buf : NULL;
    const unsigned char *text = have_data ? data.buf : NULL;
    Py_ssize_t text_len = have_data ? data.len : 0;
    int64_t *us = out.buf;
    unsigned char *ok = done.buf;
    for (Py_ssize_t i = 0; i < length; i++) {
        Py_ssize_t at = offset + i;
        ok[i] = 0;
        if (bits && !((bits[at >> 3] >> (at & 7)) & 1))
            continue;
        int64_t start = off[at], stop = off[at + 1];
        if (stop - start != 20 || start < 0 || stop > text_len)
            continue;
        const unsigned char *p = text + start;
        static const int DIGIT_AT[14] = {0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18};
        int d[14], good = 1;
        for (int k = 0; k < 14; k++) {
            d[k] = (int)p[DIGIT_AT[k]] - '0';
            good &= d[k] >= 0 && d[k] <= 9;
        }
        if (!good || p[4] != '-' || p[7] != '-' || p[10] != 'T' || p[13] != ':' ||
            p[16] != ':' || p[19] != 'Z')
            continue;
        int64_t year = d[0] * 1000 + d[1] * 100 + d[2] * 10 + d[3];
        int64_t month = d[4] * 10 + d[5], day = d[6] * 10 + d[7];
        int64_t hour = d[8] * 10 + d[9], minute = d[10] * 10 + d[11], second = d[12] * 10 + d[13];
        int leap = (year % 4 == 0) && ((year % 100 != 0) || (year % 400 == 0));
        if (year < 1970 || month < 1 || month > 12 || day < 1 ||
            day > MONTH_DAYS[month] + (leap && month == 2) || hour > 23 || minute > 59 ||
            second > 59)
            continue;
        /* days since 1970-01-01 (H. Hinnant's days_from_civil), as _plain_us computes them */
        int64_t y = year - (month <= 2);
        int64_t era = y / 400; /* y >= 1969: no negative division */
        int64_t yoe = y - era * 400;
        int64_t doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
        int64_t days = era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
        us[i] = (((days * 24 + hour) * 60 + minute) * 60 + second) * 1000000;
        ok[i] = 1;
    }
    result = Py_None;
    Py_INCREF(result);
done:
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&out);
    PyBuffer_Release(&done);
    if (have_validity)
        PyBuffer_Release(&validity);
    if (have_data)
        PyBuffer_Release(&data);
    return result;
}

static PyMethodDef METHODS[] = {
    {"classify_text", classify_text, METH_VARARGS,
     "Classify an Arrow string array's values and convert its numbers to float64."},
    {"split_fields", split_fields, METH_VARARGS, "A chunk's lines split at commas."},
    {"set_null_values", set_null_values, METH_O, "The texts read as null."},
    {"field_is", field_is, METH_VARARGS, "Whether a field of every line is one text."},
    {"field_is_string", field_is_string, METH_VARARGS, "A field is a free JSON string's."},
    {"field_columns", field_columns, METH_VARARGS, "Fields of every line as string buffers."},
    {"byte_counts", byte_counts, METH_O, "Counts of line ends, controls, '\\\\' and '\"'."},
    {"plain_times", plain_times, METH_VARARGS, "The sidecar's inferenceTime form to us."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef MODULE = {
    PyModuleDef_HEAD_INIT, "_numparse", "Arrow text columns to float64 and kinds, one pass.", -1,
    METHODS, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__numparse(void)
{
    if (C_LOCALE == (locale_t)0) {
        C_LOCALE = newlocale(LC_ALL_MASK, "C", (locale_t)0);
        if (C_LOCALE == (locale_t)0)
            return PyErr_NoMemory();
    }
    return PyModule_Create(&MODULE);
}
