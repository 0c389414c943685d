/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for dcm_text_to_utf8 (src/dcm/charset.c): every Defined Term of PS3.3 C.12.1.1.2,
 * the person name and text examples of PS3.5 Annexes H (Japanese), I (Korean), J and K
 * (Chinese), the delimiters of PS3.5 6.1.2.5.3, malformed escape sequences, truncated
 * multi-byte characters, random bytes, allocation failure and concurrent use.
 */
#include <pthread.h>
#include <stdlib.h>

#include "dcm/dcm.h"
#include "harness.h"

static size_t cslen(const char *cs)
{
    return cs ? strlen(cs) : 0;
}

/* Converts the string literal in under charset cs for vr and checks the UTF-8 is want. */
#define CONV(cs, vr, in, want)                                                                     \
    do {                                                                                           \
        vp_buf b_;                                                                                 \
        vp_buf_init(&b_, 0);                                                                       \
        CHECK_OK(                                                                                  \
            dcm_text_to_utf8((cs), cslen(cs), (vr), (const uint8_t *)(in), sizeof(in) - 1, &b_));  \
        CHECK_MEM(b_.data ? (const char *)b_.data : "", b_.len, (want), sizeof(want) - 1);         \
        vp_buf_fini(&b_);                                                                          \
    } while (0)

#define FFFD "\xEF\xBF\xBD"

TEST(default_repertoire)
{
    CONV(NULL, DCM_VR_PN, "Rex^Fido", "Rex^Fido");
    CONV("", DCM_VR_LO, "Rex\\Fido", "Rex\\Fido");
    CONV("ISO_IR 6", DCM_VR_LT, "line 1\r\nline 2\t.", "line 1\r\nline 2\t.");
    /* Bytes above 7/15 break the default repertoire; read leniently as ISO 8859-1 (as
     * pydicom does) rather than lost. */
    CONV(NULL, DCM_VR_PN, "Buc^J\xE9r\xF4me", "Buc^J\xC3\xA9r\xC3\xB4me");
    CONV("ISO_IR 6", DCM_VR_PN, "\xC0\xC1", "\xC3\x80\xC3\x81");
    /* Empty value: nothing appended. */
    vp_buf b;
    vp_buf_init(&b, 0);
    CHECK_OK(dcm_text_to_utf8(NULL, 0, DCM_VR_PN, NULL, 0, &b));
    CHECK_INT(b.len, 0);
    vp_buf_fini(&b);
}

/* One value per single-byte Defined Term of PS3.3 Table C.12-2; the Arabic, Greek, Hebrew,
 * Russian and French ones are the names of pydicom's charset_files (after PS3.5 Annex). */
TEST(single_byte_sets)
{
    CONV("ISO_IR 100", DCM_VR_PN, "Buc^J\xE9r\xF4me", "Buc^J\xC3\xA9r\xC3\xB4me");
    CONV("ISO_IR 100", DCM_VR_PN,
         "\xC4neas^R\xFC"
         "diger",
         "\xC3\x84neas^R\xC3\xBC"
         "diger");
    CONV("ISO_IR 101", DCM_VR_LO,
         "\xA3\xF3"
         "d\xBC",
         "\xC5\x81\xC3\xB3"
         "d\xC5\xBA"); /* Łódź */
    CONV("ISO_IR 109", DCM_VR_LO, "\xA1\xB1\xF5", "\xC4\xA6\xC4\xA7\xC4\xA1");
    CONV("ISO_IR 110", DCM_VR_LO, "\xA1\xA2\xE0", "\xC4\x84\xC4\xB8\xC4\x81");
    CONV("ISO_IR 144", DCM_VR_PN,
         "\xBB\xEE\xDA"
         "ce\xDC\xD1yp\xD3",
         "\xD0\x9B\xD1\x8E\xD0\xBA"
         "ce\xD0\xBC\xD0\xB1yp\xD0\xB3");
    CONV("ISO_IR 127", DCM_VR_PN, "\xE2\xC8\xC7\xE6\xEA^\xE4\xE6\xD2\xC7\xD1",
         "\xD9\x82\xD8\xA8\xD8\xA7\xD9\x86\xD9\x8A^\xD9\x84\xD9\x86\xD8\xB2\xD8\xA7\xD8\xB1");
    CONV("ISO_IR 126", DCM_VR_PN, "\xC4\xE9\xEF\xED\xF5\xF3\xE9\xEF\xF2",
         "\xCE\x94\xCE\xB9\xCE\xBF\xCE\xBD\xCF\x85\xCF\x83\xCE\xB9\xCE\xBF\xCF\x82");
    CONV("ISO_IR 138", DCM_VR_PN, "\xF9\xF8\xE5\xEF^\xE3\xE1\xE5\xF8\xE4",
         "\xD7\xA9\xD7\xA8\xD7\x95\xD7\x9F^\xD7\x93\xD7\x91\xD7\x95\xD7\xA8\xD7\x94");
    CONV("ISO_IR 148", DCM_VR_LO, "\xD0\xFD\xDE\xFE", "\xC4\x9E\xC4\xB1\xC5\x9E\xC5\x9F");
    CONV("ISO_IR 203", DCM_VR_LO, "\xA4\xBC\xBD", "\xE2\x82\xAC\xC5\x92\xC5\x93"); /* €Œœ */
    CONV("ISO_IR 166", DCM_VR_LO, "\xA1\xD2\xC3", "\xE0\xB8\x81\xE0\xB8\xB2\xE0\xB8\xA3");
    /* Positions a set leaves undefined become U+FFFD (ISO 8859-6 has no 0xA1). */
    CONV("ISO_IR 127", DCM_VR_LO,
         "a\xA1"
         "b",
         "a" FFFD "b");
    /* ASCII stays ASCII in all of them. */
    CONV("ISO_IR 144", DCM_VR_LO, "SCSRUSS", "SCSRUSS");
}

/* ISO_IR 13: JIS X 0201, romaji in GL (ISO-IR 14) and katakana in GR (ISO-IR 13). */
TEST(jis_x0201)
{
    CONV("ISO_IR 13", DCM_VR_PN, "\xD4\xCF\xC0\xDE^\xC0\xDB\xB3",
         "\xEF\xBE\x94\xEF\xBE\x8F\xEF\xBE\x80\xEF\xBE\x9E^\xEF\xBE\x80\xEF\xBE\x9B\xEF\xBD\xB3");
    /* PS3.5 6.1.2.3 note 3: ISO-IR 14 has YEN SIGN at 05/12 and OVERLINE at 07/14 ... */
    CONV("ISO_IR 13", DCM_VR_LT, "1\\~", "1\xC2\xA5\xE2\x80\xBE");
    /* ... but 05/12 still separates values of multi-valued VRs. */
    CONV("ISO_IR 13", DCM_VR_LO, "A\\B", "A\\B");
    /* GR outside the katakana block. */
    CONV("ISO_IR 13", DCM_VR_LO, "\xE0\xA0", FFFD FFFD);
}

TEST(utf8)
{
    CONV("ISO_IR 192", DCM_VR_PN, "Wang^XiaoDong=\xE7\x8E\x8B^\xE5\xB0\x8F\xE6\x9D\xB1=",
         "Wang^XiaoDong=\xE7\x8E\x8B^\xE5\xB0\x8F\xE6\x9D\xB1=");
    CONV("ISO_IR 192", DCM_VR_LT, "\xF0\x9F\x98\x80\xE2\x82\xAC\xC3\xA9",
         "\xF0\x9F\x98\x80\xE2\x82\xAC\xC3\xA9");
    /* Ill-formed: one U+FFFD per maximal subpart (Unicode 3.9), as Python's "replace". */
    CONV("ISO_IR 192", DCM_VR_LO, "\xC3(", FFFD "(");
    CONV("ISO_IR 192", DCM_VR_LO, "a\xE2\x82", "a" FFFD);
    CONV("ISO_IR 192", DCM_VR_LO, "\xC0\xAF", FFFD FFFD);                   /* overlong */
    CONV("ISO_IR 192", DCM_VR_LO, "\xED\xA0\x80", FFFD FFFD FFFD);          /* surrogate */
    CONV("ISO_IR 192", DCM_VR_LO, "\xF4\x90\x80\x80", FFFD FFFD FFFD FFFD); /* > U+10FFFF */
    CONV("ISO_IR 192", DCM_VR_LO, "\xE2\x82\xE2\x82\xAC\xFF", FFFD "\xE2\x82\xAC" FFFD);
    /* No escape sequences in UTF-8 (PS3.5 6.1.2.5.4 d): ESC is kept as a control character. */
    CONV("ISO_IR 192", DCM_VR_LO, "\x1B$Bx", "\x1B$Bx");
}

TEST(gb18030_and_gbk)
{
    /* PS3.5 J.3 */
    CONV("GB18030", DCM_VR_PN, "Wang^XiaoDong=\xCD\xF5^\xD0\xA1\xB6\xAB=",
         "Wang^XiaoDong=\xE7\x8E\x8B^\xE5\xB0\x8F\xE4\xB8\x9C=");
    /* Four-byte sequences: U+0080 and U+20000. */
    CONV("GB18030", DCM_VR_LO, "\x81\x30\x81\x30\x95\x32\x82\x36", "\xC2\x80\xF0\xA0\x80\x80");
    CONV("GB18030", DCM_VR_LO, "ab\xCD", "ab" FFFD); /* truncated */
    CONV("GB18030", DCM_VR_LO, "\x81 x", FFFD " x"); /* bad trail byte: the next is kept */
    /* GBK trail bytes include 05/12 and 05/14. 05/14 is no delimiter for a stateless code; 05/12
     * is a character only in LT, ST and UT: elsewhere the repertoire excludes 5CH (PS3.5 Table
     * 6.2-1) and it separates values, whatever byte came before. */
    CONV("GBK", DCM_VR_LT, "\x81\\\x81^", "\xE4\xB9\x97\xE4\xB9\x9B");
    CONV("GBK", DCM_VR_PN, "\x81\\\x81^", FFFD "\\\xE4\xB9\x9B");
    CONV("GB18030", DCM_VR_LO, "\xCD\xF5\\\xCD\xF5", "\xE7\x8E\x8B\\\xE7\x8E\x8B");
    CONV("GBK", DCM_VR_PN, "\xCD\xF5", "\xE7\x8E\x8B");
}

/* PS3.5 H.3.1 and H.3.2: Japanese person names with code extensions. */
#define H3_KANJI                                                                                   \
    "=\xE5\xB1\xB1\xE7\x94\xB0^\xE5\xA4\xAA\xE9\x83\x8E=\xE3\x82\x84\xE3\x81\xBE\xE3\x81\xA0^"     \
    "\xE3\x81\x9F\xE3\x82\x8D\xE3\x81\x86"

TEST(annex_h_japanese)
{
    CONV("\\ISO 2022 IR 87", DCM_VR_PN,
         "Yamada^Tarou=\x1B$B;3ED\x1B(B^\x1B$BB@O:\x1B(B=\x1B$B$d$^$@\x1B(B^\x1B$B$?$m$&\x1B(B",
         "Yamada^Tarou" H3_KANJI);
    CONV("ISO 2022 IR 13\\ISO 2022 IR 87", DCM_VR_PN,
         "\xD4\xCF\xC0\xDE^\xC0\xDB\xB3=\x1B$B;3ED\x1B(J^\x1B$BB@O:\x1B(J=\x1B$B$d$^$@\x1B(J^"
         "\x1B$B$?$m$&\x1B(J",
         "\xEF\xBE\x94\xEF\xBE\x8F\xEF\xBE\x80\xEF\xBE\x9E^"
         "\xEF\xBE\x80\xEF\xBE\x9B\xEF\xBD\xB3" H3_KANJI);
    /* Explicit value 1, and the hiragana MA (24/5E) whose second byte is '^': inside a
     * two-byte set it is no delimiter. */
    CONV("ISO 2022 IR 6\\ISO 2022 IR 87", DCM_VR_PN, "\x1B$B$d$^$@\x1B(B",
         "\xE3\x82\x84\xE3\x81\xBE\xE3\x81\xA0");
    /* 05/12 separates values even in a two-byte set, where SH, LO, PN and UC may not use it
     * (PS3.5 Table 6.2-1); in LT it is part of a kanji (3B/5C). */
    CONV("\\ISO 2022 IR 87", DCM_VR_LO, "\x1B$B;\\;3", FFFD "\\;3");
    CONV("\\ISO 2022 IR 87", DCM_VR_LO, "\x1B$B\\;3", "\\;3");
    CONV("\\ISO 2022 IR 87", DCM_VR_LT, "\x1B$B;\\\x1B(B", "\xE6\x96\xBD");
    /* ISO 2022 IR 159, JIS X 0212 (30/21 is U+4E02). */
    CONV("\\ISO 2022 IR 159", DCM_VR_LO, "\x1B$(D0!\x1B(B", "\xE4\xB8\x82");
}

/* PS3.5 I.2 and I.3: Korean. */
TEST(annex_i_korean)
{
    CONV(
        "\\ISO 2022 IR 149", DCM_VR_PN,
        "Hong^Gildong=\x1B$)C\xFB\xF3^\x1B$)C\xD1\xCE\xD4\xD7=\x1B$)C\xC8\xAB^\x1B$)C\xB1\xE6"
        "\xB5\xBF",
        "Hong^Gildong=\xE6\xB4\xAA^\xE5\x90\x89\xE6\xB4\x9E=\xED\x99\x8D^\xEA\xB8\xB8\xEB\x8F\x99");
    CONV("\\ISO 2022 IR 149", DCM_VR_LT,
         "\x1B$)CThe first line includes \xC7\xD1\xB1\xDB.\r\n\x1B$)CThe second line includes "
         "\xC7\xD1\xB1\xDB, too.\r\nThe third line",
         "The first line includes \xED\x95\x9C\xEA\xB8\x80.\r\nThe second line includes "
         "\xED\x95\x9C\xEA\xB8\x80, too.\r\nThe third line");
}

/* PS3.5 K.2 and K.3: GB 2312 with code extensions; J.3 is in gb18030_and_gbk. */
TEST(annex_k_chinese)
{
    CONV("\\ISO 2022 IR 58", DCM_VR_PN, "Zhang^XiaoDong=\x1B$)A\xD5\xC5^\x1B$)A\xD0\xA1\xB6\xAB= ",
         "Zhang^XiaoDong=\xE5\xBC\xA0^\xE5\xB0\x8F\xE4\xB8\x9C= ");
    CONV("\\ISO 2022 IR 58", DCM_VR_LT,
         "1.\x1B$)A\xB5\xDA\xD2\xBB\xD0\xD0\xCE\xC4\xD7\xD6\xA1\xA3\x1B(B\r\n"
         "2.\x1B$)A\xB5\xDA\xB6\xFE\xD0\xD0\xCE\xC4\xD7\xD6\xA1\xA3\x1B(B\r\n"
         "3.\x1B$)A\xB5\xDA\xC8\xFD\xD0\xD0\xCE\xC4\xD7\xD6\xA1\xA3\x1B(B\r\n ",
         "1.\xE7\xAC\xAC\xE4\xB8\x80\xE8\xA1\x8C\xE6\x96\x87\xE5\xAD\x97\xE3\x80\x82\r\n"
         "2.\xE7\xAC\xAC\xE4\xBA\x8C\xE8\xA1\x8C\xE6\x96\x87\xE5\xAD\x97\xE3\x80\x82\r\n"
         "3.\xE7\xAC\xAC\xE4\xB8\x89\xE8\xA1\x8C\xE6\x96\x87\xE5\xAD\x97\xE3\x80\x82\r\n ");
}

/* PS3.5 6.1.2.5.3: value 1's sets are active again after CR, LF, FF, TAB, '\' between values
 * and, in PN, '^' and '='. Value 1 here designates ISO 8859-1 to G1, so a G1 set that was not
 * reset shows up as Korean or Greek instead of Latin-1. */
TEST(delimiters_reset)
{
    const char *kr = "ISO 2022 IR 100\\ISO 2022 IR 149";
    CONV(kr, DCM_VR_PN, "\x1B$)C\xC7\xD1^\xC7\xD1", "\xED\x95\x9C^\xC3\x87\xC3\x91");
    CONV(kr, DCM_VR_PN, "\x1B$)C\xC7\xD1=\xC7\xD1", "\xED\x95\x9C=\xC3\x87\xC3\x91");
    CONV(kr, DCM_VR_PN, "\x1B$)C\xC7\xD1\\\xC7\xD1", "\xED\x95\x9C\\\xC3\x87\xC3\x91");
    CONV(kr, DCM_VR_LT, "\x1B$)C\xC7\xD1\t\xC7\xD1", "\xED\x95\x9C\t\xC3\x87\xC3\x91");
    CONV(kr, DCM_VR_LT, "\x1B$)C\xC7\xD1\f\xC7\xD1", "\xED\x95\x9C\f\xC3\x87\xC3\x91");
    /* '^' and '=' separate nothing outside PN, '\' nothing in LT, ST and UT. */
    CONV(kr, DCM_VR_LO, "\x1B$)C\xC7\xD1^\xC7\xD1", "\xED\x95\x9C^\xED\x95\x9C");
    CONV(kr, DCM_VR_LT, "\x1B$)C\xC7\xD1\\\xC7\xD1", "\xED\x95\x9C\\\xED\x95\x9C");
    CONV(kr, DCM_VR_ST, "\x1B$)C\xC7\xD1^\xC7\xD1", "\xED\x95\x9C^\xED\x95\x9C");
    const char *gr = "ISO 2022 IR 100\\ISO 2022 IR 126";
    CONV(gr, DCM_VR_LO, "\x1B-F\xC4\\\xC4", "\xCE\x94\\\xC3\x84");
    CONV(gr, DCM_VR_UT, "\x1B-F\xC4\\\xC4", "\xCE\x94\\\xCE\x94");
    CONV(gr, DCM_VR_SH, "\x1B-F\xC4\r\n\xC4", "\xCE\x94\r\n\xC3\x84");
    /* G0: kanji mode ends at the line end even without ESC ( B. */
    CONV("ISO 2022 IR 6\\ISO 2022 IR 87", DCM_VR_LT, "\x1B$B;3\r\n;3", "\xE5\xB1\xB1\r\n;3");
    /* Switching back and forth within one component. */
    CONV("ISO 2022 IR 100\\ISO 2022 IR 126", DCM_VR_LO, "\xC4\x1B-F\xC4\x1B-A\xC4",
         "\xC3\x84\xCE\x94\xC3\x84");
    CONV("ISO 2022 IR 100\\ISO 2022 IR 144\\ISO 2022 IR 127", DCM_VR_LO, "\x1B-L\xBB\x1B-G\xE2",
         "\xD0\x9B\xD9\x82");
}

TEST(malformed_escapes)
{
    const char *cs = "ISO 2022 IR 6\\ISO 2022 IR 87";
    CONV(cs, DCM_VR_LO, "ab\x1B", "ab" FFFD);          /* ESC at the end */
    CONV(cs, DCM_VR_LO, "a\x1B$", "a" FFFD);           /* truncated */
    CONV(cs, DCM_VR_LO, "a\x1B$(", "a" FFFD);          /* truncated */
    CONV(cs, DCM_VR_LO, "a\x1B$)Zb", "a" FFFD "b");    /* unknown final byte */
    CONV(cs, DCM_VR_LO, "a\x1B%Gb", "a" FFFD "b");     /* UTF-8 DOCS: not DICOM */
    CONV(cs, DCM_VR_LO, "a\x1B\x1B(Bb", "a" FFFD "b"); /* ESC ESC ( B */
    CONV(cs, DCM_VR_LO, "a\x1B\rb", "a" FFFD "\rb");   /* control ends it */
    /* Delimiters are final bytes by syntax but end a stray escape instead of vanishing in it. */
    CONV(cs, DCM_VR_PN, "a\x1B$^b", "a" FFFD "^b");
    CONV(cs, DCM_VR_LO, "a\x1B\\b", "a" FFFD "\\b");
    CONV(cs, DCM_VR_LT, "a\x1B\\b", "a" FFFD "b"); /* ESC 05/12 (ST) is well-formed, unknown */
    CONV(cs, DCM_VR_LO, "a\x1B$^b", "a" FFFD "b");
    CONV(cs, DCM_VR_LO,
         "a\x1B\xA4"
         "b",
         "a" FFFD "\xC2\xA4"
         "b");                                     /* GR after ESC */
    CONV(cs, DCM_VR_LO, "\x1B     (Bx", FFFD "x"); /* many intermediates, unknown */
    /* An unknown escape keeps the designations in force. */
    CONV(cs, DCM_VR_LO, "\x1B$B;3\x1B$)Z;3", "\xE5\xB1\xB1" FFFD "\xE5\xB1\xB1");
    /* Escape sequences in a single-valued term are honoured too. */
    CONV("ISO_IR 100", DCM_VR_LO, "\x1B$B;3\x1B(B", "\xE5\xB1\xB1");
    CONV(NULL, DCM_VR_LO, "\x1B$)C\xC7\xD1", "\xED\x95\x9C");
}

TEST(truncated_multibyte)
{
    const char *jp = "\\ISO 2022 IR 87";
    CONV(jp, DCM_VR_LO, "\x1B$B;", FFFD);                            /* odd byte at the end */
    CONV(jp, DCM_VR_LO, "\x1B$B; ;3", FFFD " \xE5\xB1\xB1");         /* SPACE is no second byte */
    CONV(jp, DCM_VR_LT, "\x1B$B;\r;3", FFFD "\r;3");                 /* nor CR */
    CONV(jp, DCM_VR_LO, "\x1B$B;3 ;3", "\xE5\xB1\xB1 \xE5\xB1\xB1"); /* SPACE is SPACE */
    CONV(jp, DCM_VR_LO, "\x1B$B\xA4\xA2", "\xC2\xA4\xC2\xA2");       /* GR: G1 has nothing */
    const char *kr = "\\ISO 2022 IR 149";
    CONV(kr, DCM_VR_LO, "\x1B$)C\xC7", FFFD);
    CONV(kr, DCM_VR_LO,
         "\x1B$)C\xC7"
         "A",
         FFFD "A");
    CONV(kr, DCM_VR_LO, "\x1B$)C\xC7\xA0", FFFD FFFD);
    CONV(kr, DCM_VR_LO,
         "\x1B$)C\xC9\xA1"
         "x",
         FFFD "x");                                    /* unassigned (user-defined row) */
    CONV(kr, DCM_VR_LO, "\x1B$)C\x80\x9F", FFFD FFFD); /* C1 bytes */
}

TEST(charset_terms)
{
    /* Spaces around terms, NUL padding, an empty value 1. */
    CONV(" ISO_IR 100 ", DCM_VR_LO, "\xE9", "\xC3\xA9");
    vp_buf b;
    vp_buf_init(&b, 0);
    CHECK_OK(dcm_text_to_utf8("ISO_IR 144\0", 11, DCM_VR_LO, (const uint8_t *)"\xBB", 1, &b));
    CHECK_STR((const char *)b.data, "\xD0\x9B");
    vp_buf_fini(&b);
    CONV("  \\ ISO 2022 IR 149 ", DCM_VR_LO, "\x1B$)C\xC7\xD1", "\xED\x95\x9C");
    /* Common misspellings (pydicom accepts them too). */
    CONV("ISO IR 100", DCM_VR_LO, "\xE9", "\xC3\xA9");
    CONV("ISO-IR 144", DCM_VR_LO, "\xBB", "\xD0\x9B");
    CONV("iso_ir 192", DCM_VR_LO, "\xC3\xA9", "\xC3\xA9");
    CONV("ISO_2022_IR_6\\ISO_2022_IR_87", DCM_VR_LO, "\x1B$B;3", "\xE5\xB1\xB1");
    /* Unknown value 1: the default repertoire. */
    CONV("KLINGON", DCM_VR_LO, "a\xE9", "a\xC3\xA9");
    /* ISO_IR 192, GB18030 and GBK take no extensions: later values ignored (6.1.2.5.4 d)... */
    CONV("ISO_IR 192\\ISO 2022 IR 87", DCM_VR_LO, "\xC3\xA9", "\xC3\xA9");
    /* ... and ignored as values 2 to n. */
    CONV("ISO 2022 IR 100\\ISO_IR 192", DCM_VR_LO, "\xC3\xA9", "\xC3\x83\xC2\xA9");
    /* A lone multi-byte term as value 1 designates its G1 set: escape-less EUC-KR. */
    CONV("ISO 2022 IR 149", DCM_VR_PN, "\xC8\xAB^\xB1\xE6\xB5\xBF",
         "\xED\x99\x8D^\xEA\xB8\xB8\xEB\x8F\x99");
    /* GR bytes while G1 has nothing designated: the declared KS X 1001 or GB 2312. */
    CONV("\\ISO 2022 IR 149", DCM_VR_PN, "\xC8\xAB", "\xED\x99\x8D");
    CONV("\\ISO 2022 IR 58", DCM_VR_PN, "\xD5\xC5", "\xE5\xBC\xA0");
    /* ISO 2022 IR 13 as value 1: romaji G0, katakana G1 after every delimiter. */
    CONV("ISO 2022 IR 13\\ISO 2022 IR 87", DCM_VR_PN, "\x1B$B;3\x1B(J^\xD4",
         "\xE5\xB1\xB1^\xEF\xBE\x94");
}

TEST(appends_to_output)
{
    vp_buf b;
    vp_buf_init(&b, 0);
    CHECK_OK(vp_buf_puts(&b, "x="));
    const char *cs = "ISO_IR 100";
    CHECK_OK(dcm_text_to_utf8(cs, strlen(cs), DCM_VR_LO, (const uint8_t *)"\xE9", 1, &b));
    CHECK_OK(dcm_text_to_utf8(cs, strlen(cs), DCM_VR_LO, (const uint8_t *)"ab", 2, &b));
    CHECK_STR((const char *)b.data, "x=\xC3\xA9"
                                    "ab");
    vp_buf_fini(&b);
    /* A capped buffer reports the limit rather than overflowing. */
    vp_buf_init(&b, 4);
    CHECK_INT(dcm_text_to_utf8(cs, strlen(cs), DCM_VR_LO, (const uint8_t *)"\xE9\xE9\xE9", 3, &b),
              VP_ELIMIT);
    CHECK(b.len <= 4);
    vp_buf_fini(&b);
}

static const char *const all_charsets[] = {
    NULL,
    "ISO_IR 100",
    "ISO_IR 101",
    "ISO_IR 109",
    "ISO_IR 110",
    "ISO_IR 144",
    "ISO_IR 127",
    "ISO_IR 126",
    "ISO_IR 138",
    "ISO_IR 148",
    "ISO_IR 203",
    "ISO_IR 13",
    "ISO_IR 166",
    "ISO_IR 192",
    "GB18030",
    "GBK",
    "\\ISO 2022 IR 87",
    "ISO 2022 IR 13\\ISO 2022 IR 87\\ISO 2022 IR 159",
    "\\ISO 2022 IR 149",
    "\\ISO 2022 IR 58",
    "ISO 2022 IR 100\\ISO 2022 IR 144\\ISO 2022 IR 126\\ISO 2022 IR 166",
};

static uint32_t rng_state = 0x9E3779B9u;

static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

/*
 * Any bytes under any charset: VP_OK, well-formed UTF-8 (it survives ISO_IR 192 unchanged),
 * for the ISO 2022 terms no ESC left over, and, in multi-valued VRs, the same as decoding each
 * backslash-separated value alone (PS3.5 6.1.2.5.3: value 1's sets are active at each value).
 * Inputs are biased toward ESC, the escape bytes and delimiters to reach the parser's corners.
 */
TEST(random_bytes_give_valid_utf8)
{
    /* Pieces to build inputs from: the escape sequences of PS3.3 Tables C.12-3 and C.12-4,
     * broken ones, delimiters, controls and a few two-byte characters. */
    static const char *const tokens[] = {
        "\x1B(B", "\x1B(J", "\x1B)I", "\x1B$B", "\x1B$(D",  "\x1B$)C",      "\x1B$)A",  "\x1B-A",
        "\x1B-F", "\x1B-L", "\x1B-T", "\x1B-b", "\x1B$",    "\x1B",         "\x1B$)",   "^",
        "=",      "\\",     "\r\n",   "\t",     " ",        ";3",           "$^",       "\xC7\xD1",
        "\xD4",   "\xA4",   "\x80",   "\xFF",   "\xE7\x8E", "\xF0\x9F\x98", "\x81\x30",
    };
    static const enum dcm_vr vrs[] = {DCM_VR_PN, DCM_VR_LT, DCM_VR_LO, DCM_VR_UT};
    uint8_t in[64];
    vp_buf out, again, parts;
    vp_buf_init(&out, 0);
    vp_buf_init(&again, 0);
    vp_buf_init(&parts, 0);
    const char *u8 = "ISO_IR 192";
    int bad = 0;
    for (int iter = 0; iter < 40000 && !bad; iter++) {
        size_t n = 0, want = rng() % sizeof in;
        while (n < want) {
            uint32_t r = rng();
            const char *t = tokens[(r >> 1) % (sizeof tokens / sizeof tokens[0])];
            size_t k = strlen(t);
            if (r & 1) {
                in[n++] = (uint8_t)(r >> 8); /* any byte */
            } else if (n + k <= sizeof in) {
                memcpy(in + n, t, k);
                n += k;
            } else {
                break;
            }
        }
        const char *cs = all_charsets[rng() % (sizeof all_charsets / sizeof all_charsets[0])];
        const char *name = cs ? cs : "(none)";
        enum dcm_vr vr = vrs[rng() % (sizeof vrs / sizeof vrs[0])];
        vp_buf_reset(&out);
        vp_buf_reset(&again);
        vp_buf_reset(&parts);
        if (dcm_text_to_utf8(cs, cslen(cs), vr, in, n, &out) != VP_OK ||
            dcm_text_to_utf8(u8, strlen(u8), vr, out.data, out.len, &again) != VP_OK ||
            again.len != out.len || (out.len && memcmp(again.data, out.data, out.len) != 0)) {
            FAIL_AT("iteration %d charset %s: not valid UTF-8", iter, name);
            bad = 1;
        }
        bool iso2022 =
            cs == NULL || (strcmp(cs, "ISO_IR 192") && strcmp(cs, "GB18030") && strcmp(cs, "GBK"));
        if (iso2022 && out.len && memchr(out.data, 0x1B, out.len)) {
            FAIL_AT("iteration %d charset %s: ESC in output", iter, name);
            bad = 1;
        }
        if (vr == DCM_VR_PN || vr == DCM_VR_LO) {
            size_t pos = 0;
            for (;;) {
                const uint8_t *bs = memchr(in + pos, '\\', n - pos);
                size_t end = bs ? (size_t)(bs - in) : n;
                CHECK_OK(dcm_text_to_utf8(cs, cslen(cs), vr, in + pos, end - pos, &parts));
                if (!bs)
                    break;
                CHECK_OK(vp_buf_putc(&parts, '\\'));
                pos = end + 1;
            }
            if (parts.len != out.len || (out.len && memcmp(parts.data, out.data, out.len) != 0)) {
                FAIL_AT("iteration %d charset %s: values decoded alone differ", iter, name);
                bad = 1;
            }
        }
    }
    vp_buf_fini(&out);
    vp_buf_fini(&again);
    vp_buf_fini(&parts);
}

TEST(out_of_memory)
{
    static const char h32[] = "\xD4\xCF\xC0\xDE^\xC0\xDB\xB3=\x1B$B;3ED\x1B(J^\x1B$BB@O:\x1B(J";
    const char *sets[] = {"ISO 2022 IR 13\\ISO 2022 IR 87", "ISO_IR 192", "GB18030", NULL};
    for (size_t s = 0; s < sizeof sets / sizeof sets[0]; s++) {
        for (long k = 1; k <= 4; k++) {
            vp_buf b;
            vp_buf_init(&b, 0);
            vp_alloc_fail_after(k);
            vp_status st = dcm_text_to_utf8(sets[s], cslen(sets[s]), DCM_VR_PN,
                                            (const uint8_t *)h32, sizeof h32 - 1, &b);
            vp_alloc_fail_after(0);
            CHECK(st == VP_OK || st == VP_ENOMEM);
            vp_buf_fini(&b);
        }
    }
}

/* Threads share nothing but the iconv descriptor cache key; each has its own descriptors. */
struct thread_case {
    const char *cs;
    enum dcm_vr vr;
    const char *in;
    const char *want;
};

static const struct thread_case thread_cases[] = {
    {"ISO 2022 IR 13\\ISO 2022 IR 87", DCM_VR_PN,
     "\xD4\xCF\xC0\xDE=\x1B$B;3ED\x1B(J^\x1B$BB@O:\x1B(J",
     "\xEF\xBE\x94\xEF\xBE\x8F\xEF\xBE\x80\xEF\xBE\x9E=\xE5\xB1\xB1\xE7\x94\xB0^\xE5\xA4\xAA\xE9"
     "\x83\x8E"},
    {"\\ISO 2022 IR 149", DCM_VR_PN, "\x1B$)C\xC8\xAB^\x1B$)C\xB1\xE6\xB5\xBF",
     "\xED\x99\x8D^\xEA\xB8\xB8\xEB\x8F\x99"},
    {"ISO_IR 126", DCM_VR_PN, "\xC4\xE9\xEF", "\xCE\x94\xCE\xB9\xCE\xBF"},
    {"GB18030", DCM_VR_PN, "\xCD\xF5", "\xE7\x8E\x8B"},
};

static void *thread_main(void *arg)
{
    long bad = 0;
    vp_buf b;
    vp_buf_init(&b, 0);
    for (int i = 0; i < 3000; i++) {
        const struct thread_case *t = &thread_cases[((size_t)arg + (size_t)i) % 4];
        vp_buf_reset(&b);
        if (dcm_text_to_utf8(t->cs, strlen(t->cs), t->vr, (const uint8_t *)t->in, strlen(t->in),
                             &b) != VP_OK ||
            b.len != strlen(t->want) || memcmp(b.data, t->want, b.len) != 0)
            bad++;
    }
    vp_buf_fini(&b);
    return (void *)bad;
}

TEST(threads)
{
    pthread_t th[4];
    for (size_t i = 0; i < 4; i++)
        CHECK_INT(pthread_create(&th[i], NULL, thread_main, (void *)i), 0);
    for (size_t i = 0; i < 4; i++) {
        void *r = NULL;
        CHECK_INT(pthread_join(th[i], &r), 0);
        CHECK_INT((long)r, 0);
    }
}

int main(void)
{
    RUN(default_repertoire);
    RUN(single_byte_sets);
    RUN(jis_x0201);
    RUN(utf8);
    RUN(gb18030_and_gbk);
    RUN(annex_h_japanese);
    RUN(annex_i_korean);
    RUN(annex_k_chinese);
    RUN(delimiters_reset);
    RUN(malformed_escapes);
    RUN(truncated_multibyte);
    RUN(charset_terms);
    RUN(appends_to_output);
    RUN(random_bytes_give_valid_utf8);
    RUN(out_of_memory);
    RUN(threads);
    DONE();
}
