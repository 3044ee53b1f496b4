/* A payload's bytes as the inside of a JSON string, in one pass, straight into a buffer.

Built only with MODELTAP_COMPILE=1 (setup.py), beside the mypyc build; modeltap/core/jsonesc.py
falls back to the same result through str and orjson where it is not built. The output is
exactly what orjson.dumps(body.decode("utf-8"))[1:-1] gives (the spool's records are
byte-identical whichever runs): '"' and '\\' backslashed, \b \t \n \f \r, other bytes below
0x20 as \u00xx (lower-case hex), everything else as it is. A body that Python's strict UTF-8
decoder refuses (ill-formed, overlong, surrogates, above U+10FFFF, cut short) is refused here too.

Why: the spool writer spent about half its time per 100 KB record in decoding, orjson's escaping
and copying orjson's output into the staging buffer; this reads the body once (UTF-8 text from its first byte >= 0x80 on, twice) and writes the
staging buffer once, without the GIL for large bodies.

How, on x86-64 (chosen at import by what the CPU has): 32 bytes at a time with AVX2, 16 with
SSSE3. A block with nothing to escape is stored whole. A block whose escapes all take two bytes
('"', '\\', \b \t \n \f \r: a CSV line's end every few dozen bytes) is spread by table-driven
shuffles, 8 input bytes to at most 16 output bytes each, with no branch per escape. Blocks with a
\u00xx escape go byte by byte. UTF-8 is checked as it comes until the first block holding a byte
>= 0x80; from there the rest of the body is validated at once by lookup tables (Keiser and
Lemire's algorithm) and its multi-byte characters copied as they are. Elsewhere (aarch64, x86-64
without SSSE3) the SSE2 block loop or the scalar loop gives the same bytes. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "_utf8seq.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* Bodies from this size are escaped without the GIL: the event loop runs meanwhile (the module
   exports it: the spool writer need not offer the GIL again after such a record). */
#define NOGIL_BYTES 16384

static const char HEX[] = "0123456789abcdef";

/* The escape of an ASCII byte that needs one ('"', '\\', below 0x20); returns its length. */
static inline Py_ssize_t put_escape(unsigned char c, unsigned char *d)
{
    d[0] = '\\';
    switch (c) {
    case '"': d[1] = '"'; return 2;
    case '\\': d[1] = '\\'; return 2;
    case '\b': d[1] = 'b'; return 2;
    case '\t': d[1] = 't'; return 2;
    case '\n': d[1] = 'n'; return 2;
    case '\f': d[1] = 'f'; return 2;
    case '\r': d[1] = 'r'; return 2;
    default:
        d[1] = 'u'; d[2] = '0'; d[3] = '0'; d[4] = (unsigned char)HEX[c >> 4];
        d[5] = (unsigned char)HEX[c & 15];
        return 6;
    }
}

/* The same escapes as a table (filled at import), written 8 bytes at a time in the block loop:
   no branch on which escape it is. */
static unsigned char ESC_TEXT[128][8];
static unsigned char ESC_LEN[128];

static void fill_escapes(void)
{
    for (int c = 0; c < 128; c++) {
        if (c < 0x20 || c == '"' || c == '\\') {
            ESC_LEN[c] = (unsigned char)put_escape((unsigned char)c, ESC_TEXT[c]);
        }
    }
}

static inline int escape_len(unsigned char c)
{
    switch (c) {
    case '"': case '\\': case '\b': case '\t': case '\n': case '\f': case '\r': return 2;
    default: return 6;
    }
}

#define INVALID (-1)
#define NO_ROOM (-2)

#if defined(__SSE2__)
static inline unsigned needs_care(__m128i v)
{
    /* A signed compare below ' ' also catches every byte >= 0x80 (UTF-8 to check). */
    __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
                                          _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))),
                             _mm_cmplt_epi8(v, _mm_set1_epi8(' ')));
    return (unsigned)_mm_movemask_epi8(m);
}

/* One 16-byte block at s + *pi whose bytes needing care are the bits of mask, each handled in
   turn with the rest of the block stored again after it: one pass whatever the block holds.
   The block was stored as it is at d + *po already. Returns 0 or INVALID; leaves *pi at the
   block's end (or past it, when a UTF-8 sequence ended there). */
static inline Py_ssize_t escape_block_bytes(const unsigned char *s, Py_ssize_t n, unsigned char *d,
                                            unsigned mask, Py_ssize_t *pi, Py_ssize_t *po)
{
    Py_ssize_t i = *pi, o = *po, block = i, block_end = i + 16;
    while (mask) {
        Py_ssize_t at = block + __builtin_ctz(mask);
        o += at - i;
        i = at;
        unsigned char c = s[i];
        if (c < 0x80) {
            memcpy(d + o, ESC_TEXT[c], 8);
            o += ESC_LEN[c];
            i += 1;
        } else {
            int len = utf8_seq(s + i, n - i);
            if (!len) return INVALID;
            memcpy(d + o, s + i, (size_t)len);
            i += len;
            o += len;
        }
        Py_ssize_t done = i - block; /* the mask's bits below it are handled */
        mask = done >= 16 ? 0 : mask & ~((1u << done) - 1u);
        if (i < block_end) {
            if (i + 16 <= n) {
                _mm_storeu_si128((__m128i *)(d + o), _mm_loadu_si128((const __m128i *)(s + i)));
            } else {
                memcpy(d + o, s + i, (size_t)(block_end - i));
            }
        }
    }
    if (i < block_end) { /* else a UTF-8 sequence ended past it */
        o += block_end - i;
        i = block_end;
    }
    *pi = i;
    *po = o;
    return 0;
}

/* 16 bytes of input at a time: stored as they are, then each byte in them that needs care is
   handled by escape_block_bytes. The room check at a block's start covers its worst case (6
   bytes out per byte in) plus one more 16-byte store. Leaves where it stopped in *pi and *po;
   returns 0 or INVALID. The path for x86-64 CPUs without SSSE3. */
static Py_ssize_t escape_blocks_sse2(const unsigned char *s, Py_ssize_t n, unsigned char *d,
                                     Py_ssize_t cap, Py_ssize_t *pi, Py_ssize_t *po)
{
    Py_ssize_t i = 0, o = 0;
    while (i + 16 <= n && o + 7 * 16 + 8 <= cap) {
        __m128i v = _mm_loadu_si128((const __m128i *)(s + i));
        unsigned mask = needs_care(v);
        _mm_storeu_si128((__m128i *)(d + o), v);
        if (mask == 0) {
            i += 16;
            o += 16;
            continue;
        }
        if (escape_block_bytes(s, n, d, mask, &i, &o) == INVALID) return INVALID;
    }
    *pi = i;
    *po = o;
    return 0;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_SSSE3_PATH 1

/* What the mode loops below return when, checking UTF-8 as they go, they meet a block with a
   byte >= 0x80: the rest of the body is then validated at once (utf8_valid_ssse3) and the loop
   runs on with UTF-8 taken as it is. */
#define SEEN_UTF8 (-3)


/* EXPAND[m]: the pshufb indices that spread 8 input bytes (lanes 0-7 of a vector whose lanes
   8-15 hold backslashes) over 8 + popcount(m) output bytes, each byte whose bit is set in m
   preceded by a backslash. POP[m]: popcount(m). Filled at import. */
static unsigned char EXPAND[256][16] __attribute__((aligned(16)));
static unsigned char POP[256];

static void fill_expand(void)
{
    for (int m = 0; m < 256; m++) {
        int j = 0;
        for (int k = 0; k < 8; k++) {
            if (m >> k & 1) EXPAND[m][j++] = 8;
            EXPAND[m][j++] = (unsigned char)k;
        }
        for (; j < 16; j++) EXPAND[m][j] = 8;
        POP[m] = (unsigned char)__builtin_popcount((unsigned)m);
    }
}

/* Eight bytes (lanes 0-7 of half, backslashes in lanes 8-15) spread by EXPAND[m] and stored at
   d; returns the bytes they stand for (8 + POP[m]; the store is 16). */
__attribute__((target("ssse3"))) static inline Py_ssize_t
spread8(__m128i half, unsigned m, unsigned char *d)
{
    __m128i out = _mm_shuffle_epi8(half, _mm_load_si128((const __m128i *)EXPAND[m]));
    _mm_storeu_si128((__m128i *)d, out);
    return 8 + POP[m];
}

/* Whether s[0:n], which starts at a character's start, is well-formed UTF-8 (Unicode's table
   3-7, what Python's strict decoder accepts): the lookup-table check of Keiser and Lemire
   ("Validating UTF-8 in less than one instruction per byte", 2021), 16 bytes at a time, each
   byte classified by its high nibble, the previous byte's nibbles and whether it is the third
   or fourth byte after a lead byte. Returns 0 or INVALID. */
#define TOO_SHORT (1 << 0)
#define TOO_LONG (1 << 1)
#define OVERLONG_3 (1 << 2)
#define TOO_LARGE (1 << 3)
#define SURROGATE (1 << 4)
#define OVERLONG_2 (1 << 5)
#define TOO_LARGE_1000 (1 << 6)
#define OVERLONG_4 (1 << 6)
#define TWO_CONTS (1 << 7)
#define CARRY (TOO_SHORT | TOO_LONG | TWO_CONTS)

__attribute__((target("ssse3"))) static inline __m128i
utf8_block_errors(__m128i v, __m128i prev)
{
    const __m128i nibble = _mm_set1_epi8(0x0F);
    const __m128i byte_1_high = _mm_setr_epi8(
        TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG,
        TWO_CONTS, TWO_CONTS, TWO_CONTS, TWO_CONTS, TOO_SHORT | OVERLONG_2, TOO_SHORT,
        TOO_SHORT | OVERLONG_3 | SURROGATE, TOO_SHORT | TOO_LARGE | TOO_LARGE_1000 | OVERLONG_4);
    const __m128i byte_1_low = _mm_setr_epi8(
        CARRY | OVERLONG_3 | OVERLONG_2 | OVERLONG_4, CARRY | OVERLONG_2, CARRY, CARRY,
        CARRY | TOO_LARGE, CARRY | TOO_LARGE | TOO_LARGE_1000, CARRY | TOO_LARGE | TOO_LARGE_1000,
        CARRY | TOO_LARGE | TOO_LARGE_1000, CARRY | TOO_LARGE | TOO_LARGE_1000,
        CARRY | TOO_LARGE | TOO_LARGE_1000, CARRY | TOO_LARGE | TOO_LARGE_1000,
        CARRY | TOO_LARGE | TOO_LARGE_1000, CARRY | TOO_LARGE | TOO_LARGE_1000,
        CARRY | TOO_LARGE | TOO_LARGE_1000 | SURROGATE, CARRY | TOO_LARGE | TOO_LARGE_1000,
        CARRY | TOO_LARGE | TOO_LARGE_1000);
    const __m128i byte_2_high = _mm_setr_epi8(
        TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT,
        TOO_LONG | OVERLONG_2 | TWO_CONTS | OVERLONG_3 | TOO_LARGE_1000 | OVERLONG_4,
        TOO_LONG | OVERLONG_2 | TWO_CONTS | OVERLONG_3 | TOO_LARGE,
        TOO_LONG | OVERLONG_2 | TWO_CONTS | SURROGATE | TOO_LARGE,
        TOO_LONG | OVERLONG_2 | TWO_CONTS | SURROGATE | TOO_LARGE, TOO_SHORT, TOO_SHORT,
        TOO_SHORT, TOO_SHORT);
    __m128i prev1 = _mm_alignr_epi8(v, prev, 15);
    __m128i sc = _mm_and_si128(
        _mm_and_si128(
            _mm_shuffle_epi8(byte_1_high, _mm_and_si128(_mm_srli_epi16(prev1, 4), nibble)),
            _mm_shuffle_epi8(byte_1_low, _mm_and_si128(prev1, nibble))),
        _mm_shuffle_epi8(byte_2_high, _mm_and_si128(_mm_srli_epi16(v, 4), nibble)));
    /* Only a byte two after 111xxxxx or three after 1111xxxx is to be a second continuation. */
    __m128i third = _mm_subs_epu8(_mm_alignr_epi8(v, prev, 14), _mm_set1_epi8(0xE0 - 0x80));
    __m128i fourth = _mm_subs_epu8(_mm_alignr_epi8(v, prev, 13), _mm_set1_epi8((char)(0xF0 - 0x80)));
    __m128i must23 = _mm_and_si128(_mm_or_si128(third, fourth), _mm_set1_epi8((char)0x80));
    return _mm_xor_si128(must23, sc);
}

__attribute__((target("ssse3"))) static Py_ssize_t utf8_valid_ssse3(const unsigned char *s,
                                                                    Py_ssize_t n)
{
    /* A block whose last bytes start a sequence it does not finish leaves it "incomplete":
       an error unless the next block carries it on. */
    const __m128i last_max = _mm_setr_epi8(-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                           (char)(0xF0 - 1), (char)(0xE0 - 1), (char)(0xC0 - 1));
    __m128i prev = _mm_setzero_si128(), incomplete = _mm_setzero_si128();
    __m128i error = _mm_setzero_si128();
    Py_ssize_t i = 0;
    for (;; i += 16) {
        __m128i v;
        if (i + 16 <= n) {
            v = _mm_loadu_si128((const __m128i *)(s + i));
        } else if (i < n) {
            unsigned char last[16] = {0}; /* NUL is ASCII: ends any sequence too early */
            memcpy(last, s + i, (size_t)(n - i));
            v = _mm_loadu_si128((const __m128i *)last);
        } else {
            break;
        }
        if (_mm_movemask_epi8(v) == 0) {
            error = _mm_or_si128(error, incomplete);
            incomplete = _mm_setzero_si128();
        } else {
            error = _mm_or_si128(error, utf8_block_errors(v, prev));
            incomplete = _mm_subs_epu8(v, last_max);
        }
        prev = v;
        if ((i & 4095) == 0 && _mm_movemask_epi8(_mm_cmpeq_epi8(error, _mm_setzero_si128())) != 0xFFFF)
            return INVALID;
    }
    error = _mm_or_si128(error, incomplete);
    return _mm_movemask_epi8(_mm_cmpeq_epi8(error, _mm_setzero_si128())) == 0xFFFF ? 0 : INVALID;
}

/* The bytes of v that need care: below 0x20, '"', '\\', and (while UTF-8 is still to be
   checked) every byte >= 0x80. */
#define CTRL16(v, utf8_ok)                                                                      \
    ((utf8_ok) ? _mm_cmpeq_epi8(_mm_min_epu8((v), _mm_set1_epi8(0x1F)), (v))                   \
               : _mm_cmplt_epi8((v), _mm_set1_epi8(' ')))
#define CTRL32(v, utf8_ok)                                                                      \
    ((utf8_ok) ? _mm256_cmpeq_epi8(_mm256_min_epu8((v), _mm256_set1_epi8(0x1F)), (v))          \
               : _mm256_cmpgt_epi8(_mm256_set1_epi8(' '), (v)))

/* 16 bytes at a time from *pi / *po. A clean block is stored as it is; a block whose escapes
   are all two bytes long ('"', '\\', \b \t \n \f \r) is written with two shuffles, whatever
   escapes it holds and wherever they fall (a CSV line's end every few dozen bytes costs no
   branch and no byte loop); a block with a \u00xx escape goes through escape_block_bytes.
   With utf8_ok 0, a block with a byte >= 0x80 stops the loop (SEEN_UTF8, *pi at that block);
   with utf8_ok 1 (the rest of the body validated), such bytes are copied as they are. The room
   check at a block's start covers its worst case (6 bytes out per byte in) plus one more
   16-byte store. Returns 0 or SEEN_UTF8. */
__attribute__((target("ssse3"), always_inline)) static inline Py_ssize_t
escape_blocks_ssse3_mode(const unsigned char *s, Py_ssize_t n, unsigned char *d, Py_ssize_t cap,
                         Py_ssize_t *pi, Py_ssize_t *po, const int utf8_ok)
{
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\');
    const __m128i sixteen = _mm_set1_epi8(16), zero = _mm_setzero_si128();
    /* The letter after the backslash for the control bytes that have one (indexed by the byte). */
    const __m128i letters = _mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 'b', 't', 'n', 0, 'f', 'r', 0, 0);
    Py_ssize_t i = *pi, o = *po, ret = 0;
    /* Two blocks per test while both are clean or take only two-byte escapes (one branch per
       32 bytes: fewer mispredictions where escapes fall irregularly). */
    while (i + 32 <= n && o + 7 * 32 + 8 <= cap) {
        __m128i v0 = _mm_loadu_si128((const __m128i *)(s + i));
        __m128i v1 = _mm_loadu_si128((const __m128i *)(s + i + 16));
        __m128i c0 = CTRL16(v0, utf8_ok), c1 = CTRL16(v1, utf8_ok);
        __m128i l0 = _mm_and_si128(_mm_shuffle_epi8(letters, v0), _mm_cmplt_epi8(v0, sixteen));
        __m128i l1 = _mm_and_si128(_mm_shuffle_epi8(letters, v1), _mm_cmplt_epi8(v1, sixteen));
        __m128i bad = _mm_or_si128(_mm_and_si128(c0, _mm_cmpeq_epi8(l0, zero)),
                                   _mm_and_si128(c1, _mm_cmpeq_epi8(l1, zero)));
        if (_mm_movemask_epi8(bad) != 0) break; /* the 16-byte loop takes this block */
        unsigned m0 = (unsigned)_mm_movemask_epi8(_mm_or_si128(
            c0, _mm_or_si128(_mm_cmpeq_epi8(v0, quote), _mm_cmpeq_epi8(v0, backslash))));
        unsigned m1 = (unsigned)_mm_movemask_epi8(_mm_or_si128(
            c1, _mm_or_si128(_mm_cmpeq_epi8(v1, quote), _mm_cmpeq_epi8(v1, backslash))));
        if ((m0 | m1) == 0) {
            _mm_storeu_si128((__m128i *)(d + o), v0);
            _mm_storeu_si128((__m128i *)(d + o + 16), v1);
            i += 32;
            o += 32;
            continue;
        }
        __m128i t0 = _mm_max_epu8(v0, l0), t1 = _mm_max_epu8(v1, l1);
        o += spread8(_mm_unpacklo_epi64(t0, backslash), m0 & 0xFF, d + o);
        o += spread8(_mm_unpackhi_epi64(t0, backslash), m0 >> 8, d + o);
        o += spread8(_mm_unpacklo_epi64(t1, backslash), m1 & 0xFF, d + o);
        o += spread8(_mm_unpackhi_epi64(t1, backslash), m1 >> 8, d + o);
        i += 32;
    }
    while (i + 16 <= n && o + 7 * 16 + 8 <= cap) {
        __m128i v = _mm_loadu_si128((const __m128i *)(s + i));
        __m128i ctrl = CTRL16(v, utf8_ok);
        __m128i care = _mm_or_si128(ctrl, _mm_or_si128(_mm_cmpeq_epi8(v, quote),
                                                      _mm_cmpeq_epi8(v, backslash)));
        unsigned mask = (unsigned)_mm_movemask_epi8(care);
        if (mask == 0) {
            _mm_storeu_si128((__m128i *)(d + o), v);
            i += 16;
            o += 16;
            continue;
        }
        /* pshufb reads the low nibble and gives 0 for bytes >= 0x80: a letter counts only for
           bytes below 0x10 (a signed compare, which leaves out bytes >= 0x80 too). */
        __m128i letter = _mm_and_si128(_mm_shuffle_epi8(letters, v), _mm_cmplt_epi8(v, sixteen));
        if (_mm_movemask_epi8(_mm_and_si128(ctrl, _mm_cmpeq_epi8(letter, zero))) == 0) {
            __m128i t = _mm_max_epu8(v, letter); /* a letter is above its control byte */
            o += spread8(_mm_unpacklo_epi64(t, backslash), mask & 0xFF, d + o);
            o += spread8(_mm_unpackhi_epi64(t, backslash), mask >> 8, d + o);
            i += 16;
            continue;
        }
        if (!utf8_ok && _mm_movemask_epi8(v) != 0) {
            ret = SEEN_UTF8;
            break;
        }
        _mm_storeu_si128((__m128i *)(d + o), v);
        escape_block_bytes(s, n, d, mask, &i, &o); /* ASCII only here: cannot fail */
    }
    *pi = i;
    *po = o;
    return ret;
}

__attribute__((target("ssse3"))) static Py_ssize_t
escape_blocks_ssse3(const unsigned char *s, Py_ssize_t n, unsigned char *d, Py_ssize_t cap,
                    Py_ssize_t *pi, Py_ssize_t *po, int utf8_ok)
{
    if (utf8_ok) return escape_blocks_ssse3_mode(s, n, d, cap, pi, po, 1);
    return escape_blocks_ssse3_mode(s, n, d, cap, pi, po, 0);
}

/* escape_blocks_ssse3 32 bytes at a time (CPUs with AVX2): one test for a clean block, four
   shuffles for one whose escapes are all two bytes long; a block with a \u00xx escape has its
   first 16 bytes done by escape_block_bytes and the loop goes on from where that stopped. The
   last bytes (fewer than 32) are left to escape_blocks_ssse3. */
__attribute__((target("avx2"), always_inline)) static inline Py_ssize_t
escape_blocks_avx2_mode(const unsigned char *s, Py_ssize_t n, unsigned char *d, Py_ssize_t cap,
                        Py_ssize_t *pi, Py_ssize_t *po, const int utf8_ok)
{
    const __m256i quote = _mm256_set1_epi8('"'), backslash = _mm256_set1_epi8('\\');
    const __m256i sixteen = _mm256_set1_epi8(16), zero = _mm256_setzero_si256();
    const __m256i letters = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 'b', 't', 'n', 0, 'f', 'r', 0, 0,
                                             0, 0, 0, 0, 0, 0, 0, 0, 'b', 't', 'n', 0, 'f', 'r', 0, 0);
    const __m128i backslash16 = _mm_set1_epi8('\\');
    Py_ssize_t i = *pi, o = *po, ret = 0;
    while (i + 32 <= n && o + 7 * 32 + 8 <= cap) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(s + i));
        __m256i ctrl = CTRL32(v, utf8_ok);
        __m256i care = _mm256_or_si256(ctrl, _mm256_or_si256(_mm256_cmpeq_epi8(v, quote),
                                                             _mm256_cmpeq_epi8(v, backslash)));
        unsigned mask = (unsigned)_mm256_movemask_epi8(care);
        if (mask == 0) {
            _mm256_storeu_si256((__m256i *)(d + o), v);
            i += 32;
            o += 32;
            continue;
        }
        __m256i letter = _mm256_and_si256(_mm256_shuffle_epi8(letters, v),
                                          _mm256_cmpgt_epi8(sixteen, v));
        if (_mm256_movemask_epi8(_mm256_and_si256(ctrl, _mm256_cmpeq_epi8(letter, zero))) == 0) {
            if ((mask & (mask - 1)) == 0 && i + 64 <= n) {
                /* One escape (a CSV line as long as the block or longer ends in it): the block
                   as it is, the escape over its byte, the rest of the block again after it (the
                   32-byte load past the block stays inside the body). */
                Py_ssize_t at = __builtin_ctz(mask);
                _mm256_storeu_si256((__m256i *)(d + o), v);
                memcpy(d + o + at, ESC_TEXT[s[i + at]], 2);
                _mm256_storeu_si256((__m256i *)(d + o + at + 2),
                                    _mm256_loadu_si256((const __m256i *)(s + i + at + 1)));
                i += 32;
                o += 33;
                continue;
            }
            __m256i t = _mm256_max_epu8(v, letter);
            __m128i t0 = _mm256_castsi256_si128(t), t1 = _mm256_extracti128_si256(t, 1);
            o += spread8(_mm_unpacklo_epi64(t0, backslash16), mask & 0xFF, d + o);
            o += spread8(_mm_unpackhi_epi64(t0, backslash16), (mask >> 8) & 0xFF, d + o);
            o += spread8(_mm_unpacklo_epi64(t1, backslash16), (mask >> 16) & 0xFF, d + o);
            o += spread8(_mm_unpackhi_epi64(t1, backslash16), mask >> 24, d + o);
            i += 32;
            continue;
        }
        if (!utf8_ok && _mm256_movemask_epi8(v) != 0) {
            ret = SEEN_UTF8;
            break;
        }
        /* A \u00xx escape: the first 16 bytes by escape_block_bytes, the loop goes on after. */
        _mm_storeu_si128((__m128i *)(d + o), _mm256_castsi256_si128(v));
        escape_block_bytes(s, n, d, mask & 0xFFFF, &i, &o); /* ASCII only here: cannot fail */
    }
    *pi = i;
    *po = o;
    return ret;
}

__attribute__((target("avx2"))) static Py_ssize_t
escape_blocks_avx2(const unsigned char *s, Py_ssize_t n, unsigned char *d, Py_ssize_t cap,
                   Py_ssize_t *pi, Py_ssize_t *po, int utf8_ok)
{
    if (utf8_ok) return escape_blocks_avx2_mode(s, n, d, cap, pi, po, 1);
    return escape_blocks_avx2_mode(s, n, d, cap, pi, po, 0);
}
#endif
#endif

/* What the blocks leave (all of it without SSE2), with exact room checks; utf8_ok: s[i:n] has
   been found well-formed UTF-8 already. */
static Py_ssize_t escape_tail(const unsigned char *s, Py_ssize_t n, unsigned char *d,
                              Py_ssize_t cap, Py_ssize_t i, Py_ssize_t o, int utf8_ok)
{
    while (i < n) {
        unsigned char c = s[i];
        if (c >= 0x80) {
            int len = utf8_ok ? 1 : utf8_seq(s + i, n - i);
            if (!len) return INVALID;
            if (o + len > cap) return NO_ROOM;
            memcpy(d + o, s + i, (size_t)len);
            i += len;
            o += len;
        } else if (c < 0x20 || c == '"' || c == '\\') {
            if (o + escape_len(c) > cap) return NO_ROOM;
            o += put_escape(c, d + o);
            i += 1;
        } else {
            if (o >= cap) return NO_ROOM;
            d[o++] = c;
            i += 1;
        }
    }
    return o;
}

#if defined(HAVE_SSSE3_PATH)
/* Whether escape_blocks_ssse3 / escape_blocks_avx2 run: what the CPU has (set at import), or
   less (use_paths, for the tests of each path on one machine). */
static int has_ssse3 = 0;
static int has_avx2 = 0;
#endif
#if defined(__SSE2__)
static int has_sse2 = 1;
#endif

/* Escape s[0:n] into d[0:cap]; returns the bytes written, INVALID or NO_ROOM. */
static Py_ssize_t escape(const unsigned char *s, Py_ssize_t n, unsigned char *d, Py_ssize_t cap)
{
    Py_ssize_t i = 0, o = 0;
#if defined(HAVE_SSSE3_PATH)
    if (has_ssse3) {
        int utf8_ok = 0;
        if (has_avx2 && escape_blocks_avx2(s, n, d, cap, &i, &o, 0) == SEEN_UTF8) {
            if (utf8_valid_ssse3(s + i, n - i) == INVALID) return INVALID;
            utf8_ok = 1;
            escape_blocks_avx2(s, n, d, cap, &i, &o, 1);
        }
        if (escape_blocks_ssse3(s, n, d, cap, &i, &o, utf8_ok) == SEEN_UTF8) {
            if (utf8_valid_ssse3(s + i, n - i) == INVALID) return INVALID;
            utf8_ok = 1;
            escape_blocks_ssse3(s, n, d, cap, &i, &o, 1);
        }
        return escape_tail(s, n, d, cap, i, o, utf8_ok);
    }
#endif
#if defined(__SSE2__)
    if (has_sse2 && escape_blocks_sse2(s, n, d, cap, &i, &o) == INVALID) return INVALID;
#endif
    return escape_tail(s, n, d, cap, i, o, 0);
}

static void detect_paths(void)
{
#if defined(HAVE_SSSE3_PATH)
    __builtin_cpu_init();
    has_ssse3 = __builtin_cpu_supports("ssse3");
    has_avx2 = has_ssse3 && __builtin_cpu_supports("avx2");
#endif
#if defined(__SSE2__)
    has_sse2 = 1;
#endif
}

PyDoc_STRVAR(use_paths_doc,
"use_paths(name) -> tuple[str, ...]\n\n"
"Escape with at most the named path from now on ('avx2', 'ssse3', 'sse2' or 'scalar'; 'auto':\n"
"the best the CPU has, as at import), so that each path can be tested on one machine. Returns the\n"
"paths this build has on this CPU, best first. Not thread-safe: for tests.");

static int add_name(PyObject *list, const char *name)
{
    PyObject *u = PyUnicode_FromString(name);
    if (u == NULL) return -1;
    int r = PyList_Append(list, u);
    Py_DECREF(u);
    return r;
}

static PyObject *use_paths(PyObject *self, PyObject *arg)
{
    (void)self;
    const char *name = PyUnicode_AsUTF8(arg);
    if (name == NULL) return NULL;
    int rank;
    if (strcmp(name, "auto") == 0 || strcmp(name, "avx2") == 0) rank = 3;
    else if (strcmp(name, "ssse3") == 0) rank = 2;
    else if (strcmp(name, "sse2") == 0) rank = 1;
    else if (strcmp(name, "scalar") == 0) rank = 0;
    else {
        PyErr_Format(PyExc_ValueError, "unknown path %R", arg);
        return NULL;
    }
    detect_paths();
    PyObject *have = PyList_New(0);
    if (have == NULL) return NULL;
#if defined(HAVE_SSSE3_PATH)
    if (has_avx2 && add_name(have, "avx2") < 0) goto fail;
    if (has_ssse3 && add_name(have, "ssse3") < 0) goto fail;
    has_avx2 = has_avx2 && rank >= 3;
    has_ssse3 = has_ssse3 && rank >= 2;
#endif
#if defined(__SSE2__)
    if (add_name(have, "sse2") < 0) goto fail;
    has_sse2 = rank >= 1;
#endif
    if (add_name(have, "scalar") < 0) goto fail;
    PyObject *out = PyList_AsTuple(have);
    Py_DECREF(have);
    return out;
fail:
    Py_DECREF(have);
    return NULL;
}

PyDoc_STRVAR(escape_into_doc,
"escape_into(body, dst, pos) -> int\n\n"
"Write body (UTF-8 bytes) escaped as the inside of a JSON string into the writable buffer dst\n"
"from offset pos; returns the offset after it, -1 when body is not valid UTF-8, -2 when dst\n"
"has no room for it (bytes after pos may have been written in both cases).");

/* escape() with the GIL released for bodies of NOGIL_BYTES and more (the loop runs meanwhile). */
static Py_ssize_t escape_released(const unsigned char *s, Py_ssize_t n, unsigned char *d,
                                  Py_ssize_t room)
{
    Py_ssize_t out;
    if (n >= NOGIL_BYTES) {
        Py_BEGIN_ALLOW_THREADS
        out = escape(s, n, d, room);
        Py_END_ALLOW_THREADS
    } else {
        out = escape(s, n, d, room);
    }
    return out;
}

/* A body to read and a writable dst with pos inside it; 0, or -1 with an exception set and
   neither buffer held. */
static int take_buffers(PyObject *body, PyObject *dst_obj, Py_ssize_t pos, Py_buffer *src,
                        Py_buffer *dst)
{
    if (PyObject_GetBuffer(dst_obj, dst, PyBUF_WRITABLE) < 0) return -1;
    if (PyObject_GetBuffer(body, src, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(dst);
        return -1;
    }
    if (pos < 0 || pos > dst->len) {
        PyBuffer_Release(src);
        PyBuffer_Release(dst);
        PyErr_SetString(PyExc_ValueError, "pos is outside dst");
        return -1;
    }
    return 0;
}

static PyObject *escape_into(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "escape_into takes 3 arguments (body, dst, pos)");
        return NULL;
    }
    Py_ssize_t pos = PyLong_AsSsize_t(args[2]);
    if (pos == -1 && PyErr_Occurred()) return NULL;
    Py_buffer src, dst;
    if (take_buffers(args[0], args[1], pos, &src, &dst) < 0) return NULL;
    Py_ssize_t out = escape_released((const unsigned char *)src.buf, src.len,
                                     (unsigned char *)dst.buf + pos, dst.len - pos);
    PyBuffer_Release(&src);
    PyBuffer_Release(&dst);
    return PyLong_FromSsize_t(out < 0 ? out : pos + out);
}

PyDoc_STRVAR(put_doc,
"put(dst, pos, *parts) -> int\n\n"
"Copy parts (bytes, or str that is all ASCII: copied as its characters) one after the other\n"
"into the writable buffer dst from offset pos; returns the offset after them, or -1 when dst has\n"
"no room for them all (nothing is written then). One call for a record's fixed pieces instead of\n"
"a slice assignment (and a bytes object) per piece.");

static PyObject *put(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs < 2) {
        PyErr_SetString(PyExc_TypeError, "put takes at least 2 arguments (dst, pos, *parts)");
        return NULL;
    }
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    if (pos == -1 && PyErr_Occurred()) return NULL;
    Py_ssize_t total = 0;
    for (Py_ssize_t i = 2; i < nargs; i++) {
        PyObject *part = args[i];
        if (PyBytes_Check(part)) {
            total += PyBytes_GET_SIZE(part);
        } else if (PyUnicode_Check(part) && PyUnicode_IS_ASCII(part)) {
            total += PyUnicode_GET_LENGTH(part);
        } else {
            PyErr_Format(PyExc_TypeError, "put: part %zd is neither bytes nor ASCII str", i - 2);
            return NULL;
        }
    }
    Py_buffer dst;
    if (PyObject_GetBuffer(args[0], &dst, PyBUF_WRITABLE) < 0) return NULL;
    if (pos < 0 || pos > dst.len) {
        PyBuffer_Release(&dst);
        PyErr_SetString(PyExc_ValueError, "pos is outside dst");
        return NULL;
    }
    if (total > dst.len - pos) {
        PyBuffer_Release(&dst);
        return PyLong_FromLong(-1);
    }
    char *d = (char *)dst.buf + pos;
    for (Py_ssize_t i = 2; i < nargs; i++) {
        PyObject *part = args[i];
        if (PyBytes_Check(part)) {
            Py_ssize_t n = PyBytes_GET_SIZE(part);
            memcpy(d, PyBytes_AS_STRING(part), (size_t)n);
            d += n;
        } else {
            Py_ssize_t n = PyUnicode_GET_LENGTH(part);
            memcpy(d, PyUnicode_DATA(part), (size_t)n);
            d += n;
        }
    }
    PyBuffer_Release(&dst);
    return PyLong_FromSsize_t(pos + total);
}

PyDoc_STRVAR(escape_between_doc,
"escape_between(dst, pos, head, body, tail) -> int\n\n"
"put(dst, pos, head), escape_into(body, dst, ...) and put(dst, ..., tail) in one call (a record's\n"
"payload with its JSON before and after): the offset after tail, -1 when body is not valid UTF-8,\n"
"-2 when dst has no room (bytes after pos may have been written in both cases).");

static PyObject *escape_between(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "escape_between takes 5 arguments (dst, pos, head, body, tail)");
        return NULL;
    }
    if (!PyBytes_Check(args[2]) || !PyBytes_Check(args[4])) {
        PyErr_SetString(PyExc_TypeError, "escape_between: head and tail are bytes");
        return NULL;
    }
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    if (pos == -1 && PyErr_Occurred()) return NULL;
    Py_buffer src, dst;
    if (take_buffers(args[3], args[0], pos, &src, &dst) < 0) return NULL;
    Py_ssize_t nhead = PyBytes_GET_SIZE(args[2]), ntail = PyBytes_GET_SIZE(args[4]);
    Py_ssize_t out = NO_ROOM;
    if (nhead <= dst.len - pos) {
        unsigned char *d = (unsigned char *)dst.buf + pos;
        memcpy(d, PyBytes_AS_STRING(args[2]), (size_t)nhead);
        pos += nhead;
        d += nhead;
        out = escape_released((const unsigned char *)src.buf, src.len, d, dst.len - pos);
        if (out >= 0) {
            pos += out;
            if (ntail <= dst.len - pos) {
                memcpy((unsigned char *)dst.buf + pos, PyBytes_AS_STRING(args[4]), (size_t)ntail);
                out = pos + ntail;
            } else {
                out = NO_ROOM;
            }
        }
    }
    PyBuffer_Release(&src);
    PyBuffer_Release(&dst);
    return PyLong_FromSsize_t(out);
}

PyDoc_STRVAR(round3_text_doc,
"round3_text(value) -> bytes | None\n\n"
"orjson.dumps(round(value, 3)), for a float of magnitude below 1e11 (None for others: NaN,\n"
"infinities, larger ones). round() spends most of its time in its decimal string round trip\n"
"(dtoa, printf, strtod: a sixth of the writer's CPU per 1 KB record); here it is exact integer\n"
"arithmetic: value * 1000 rounded half to even, as round() does, from value's binary digits.\n"
"Its digits are what orjson prints: a decimal of at most 15 significant digits is the shortest\n"
"text of the double nearest to it.");

static PyObject *round3_text(PyObject *self, PyObject *arg)
{
    (void)self;
    double x = PyFloat_AsDouble(arg);
    if (x == -1.0 && PyErr_Occurred()) return NULL;
    if (!(fabs(x) < 1e11)) Py_RETURN_NONE;
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    int negative = (int)(bits >> 63);
    int biased = (int)((bits >> 52) & 0x7ff);
    uint64_t mantissa = bits & ((UINT64_C(1) << 52) - 1);
    int exp2 = -1074; /* |x| = mantissa * 2^exp2 */
    if (biased) {
        mantissa |= UINT64_C(1) << 52;
        exp2 = biased - 1075;
    }
    unsigned __int128 scaled = (unsigned __int128)mantissa * 1000u; /* < 2^63 */
    uint64_t q;
    if (exp2 >= 0) {
        q = (uint64_t)(scaled << exp2); /* |x| < 2^37: exp2 <= -16 in fact */
    } else if (exp2 <= -128) {
        q = 0; /* below 2^-65 */
    } else {
        int shift = -exp2;
        unsigned __int128 whole = scaled >> shift;
        unsigned __int128 rest = scaled - (whole << shift);
        unsigned __int128 half = (unsigned __int128)1 << (shift - 1);
        if (rest > half || (rest == half && (whole & 1))) whole++;
        q = (uint64_t)whole;
    }
    char text[40], digits[24];
    int n = 0, k = 0;
    if (negative) text[n++] = '-';
    uint64_t units = q / 1000; /* its digits by hand: snprintf was a tenth of this call */
    do {
        digits[k++] = (char)('0' + units % 10);
        units /= 10;
    } while (units);
    while (k) text[n++] = digits[--k];
    unsigned frac = (unsigned)(q % 1000);
    text[n++] = '.';
    text[n++] = (char)('0' + frac / 100);
    if (frac % 100) {
        text[n++] = (char)('0' + frac / 10 % 10);
        if (frac % 10) text[n++] = (char)('0' + frac % 10);
    }
    return PyBytes_FromStringAndSize(text, n);
}

PyDoc_STRVAR(uuid4_texts_doc,
"uuid4_texts(raw) -> list[str]\n\n"
"One version 4 UUID's text per 16 bytes of raw (random bytes), as str(uuid.UUID(bytes=b,\n"
"version=4)) gives it: the spool writer names a run of records from one os.urandom call. Formatting\n"
"them in Python (hex, strided copies, a slice per id) was about a twentieth of a 1 KB record.");

static PyObject *uuid4_texts(PyObject *self, PyObject *arg)
{
    (void)self;
    if (!PyBytes_Check(arg) || PyBytes_GET_SIZE(arg) % 16) {
        PyErr_SetString(PyExc_ValueError, "uuid4_texts takes bytes, 16 per id");
        return NULL;
    }
    const unsigned char *raw = (const unsigned char *)PyBytes_AS_STRING(arg);
    Py_ssize_t n = PyBytes_GET_SIZE(arg) / 16;
    PyObject *out = PyList_New(n);
    if (out == NULL) return NULL;
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *text = PyUnicode_New(36, 127);
        if (text == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        Py_UCS1 *t = PyUnicode_1BYTE_DATA(text);
        const unsigned char *b = raw + 16 * k;
        int o = 0;
        for (int j = 0; j < 16; j++) {
            unsigned char c = b[j];
            if (j == 6) c = (unsigned char)((c & 0x0F) | 0x40); /* version 4 */
            if (j == 8) c = (unsigned char)((c & 0x3F) | 0x80); /* RFC 9562 variant */
            if (j == 4 || j == 6 || j == 8 || j == 10) t[o++] = '-';
            t[o++] = (Py_UCS1)HEX[c >> 4];
            t[o++] = (Py_UCS1)HEX[c & 15];
        }
        PyList_SET_ITEM(out, k, text);
    }
    return out;
}

static PyMethodDef methods[] = {
    {"escape_into", (PyCFunction)(void (*)(void))escape_into, METH_FASTCALL, escape_into_doc},
    {"put", (PyCFunction)(void (*)(void))put, METH_FASTCALL, put_doc},
    {"escape_between", (PyCFunction)(void (*)(void))escape_between, METH_FASTCALL, escape_between_doc},
    {"round3_text", (PyCFunction)round3_text, METH_O, round3_text_doc},
    {"uuid4_texts", (PyCFunction)uuid4_texts, METH_O, uuid4_texts_doc},
    {"use_paths", (PyCFunction)use_paths, METH_O, use_paths_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "modeltap.core._jsonesc",
    .m_doc = "JSON string escaping of UTF-8 payloads into a buffer (see modeltap/core/jsonesc.py).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__jsonesc(void)
{
    fill_escapes();
#if defined(HAVE_SSSE3_PATH)
    fill_expand();
#endif
    detect_paths();
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && PyModule_AddIntConstant(m, "NOGIL_BYTES", NOGIL_BYTES) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
