/* One UTF-8 rule for modeltap's C extensions (the spool's escaper, the analyzer's JSON reader):
   what Python's strict decoder accepts. Needs Python.h (Py_ssize_t) first. */
#ifndef MODELTAP_UTF8SEQ_H
#define MODELTAP_UTF8SEQ_H

/* Length of the well-formed UTF-8 sequence at s (s[0] >= 0x80), 0 when ill-formed
   (Unicode's table 3-7). */
static inline int utf8_seq(const unsigned char *s, Py_ssize_t left)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;
    if (c < 0xC2) return 0;
    if (c < 0xE0) return left >= 2 && (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c < 0xF0) {
        if (left < 3) return 0;
        if (c == 0xE0) lo = 0xA0;
        else if (c == 0xED) hi = 0x9F; /* no surrogates */
        return s[1] >= lo && s[1] <= hi && (s[2] & 0xC0) == 0x80 ? 3 : 0;
    }
    if (c < 0xF5) {
        if (left < 4) return 0;
        if (c == 0xF0) lo = 0x90;
        else if (c == 0xF4) hi = 0x8F; /* nothing above U+10FFFF */
        return s[1] >= lo && s[1] <= hi && (s[2] & 0xC0) == 0x80 && (s[3] & 0xC0) == 0x80 ? 4 : 0;
    }
    return 0;
}

#endif
