/* The element walk of volume's fast DICOM header reader, compiled.
 *
 * volume/dicom/fastheader.py walks a little-endian dataset element by element in Python (about
 * 0.6 microseconds an element; an MR file has 300-700 of them). This module does the same walk in
 * C and returns only what the Python reader acts on: the top-level elements it wants (their tag,
 * explicit VR, value position and length), the Specific Character Set, and where the pixel data
 * is, or why it stopped (the buffer ends inside the header, something the fast reader leaves to
 * pydicom, a truncated file): walk(), whose values the Python reader converts.
 *
 * read() does the whole common case in one call (fastheader.read_compiled): it opens a regular
 * file, reads it, walks its meta group and elements without the GIL, then converts the wanted
 * values of the common forms (ASCII text, plain decimal numbers, binary numbers) exactly as
 * fastheader._convert does, remembering them by their bytes; for anything else it returns None
 * and the Python reader decides.
 *
 * Every decision copies fastheader._parse, fastheader._skip_undefined and fastheader._value one
 * for one (the Python code stays as the reference, used when this module is not built;
 * tests/test_walk.py and tests/test_walk_read.py run both on real, synthetic and mutated files and
 * values and assert the same answers). Every read is bounds-checked against the buffer: hostile
 * files end the walk, never read outside it.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

/* What walk() returns as its status (fastheader.WALK_* names the same numbers). */
enum { PIXEL = 0, NO_PIXEL = 1, NEED_MORE = 2, UNSUPPORTED = 3, TRUNCATED = 4 };

/* What the `wanted` mapping says of a tag (fastheader.WANT_* names the same numbers). */
enum { WANT_VALUE = 1, WANT_FIRST_ITEM = 2, WANT_FIRST_ITEM_IMPLICIT = 3, WANT_VALUE_UNCACHED = 4 };

#define TAG_PIXEL_DATA 0x7FE00010u
#define TAG_CHARACTER_SET 0x00080005u
#define TAG_ITEM 0xFFFEE000u
#define TAG_ITEM_END 0xFFFEE00Du
#define TAG_SEQ_END 0xFFFEE0DDu
#define UNDEFINED 0xFFFFFFFFu

static uint16_t u16(const unsigned char *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static uint32_t u32(const unsigned char *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static int vr_is(const unsigned char *v, const char *name) { return v[0] == name[0] && v[1] == name[1]; }

/* What each two-letter VR is: 0 unknown, VR_SHORT (a 2-byte length), VR_LONG (fastheader._LONG_VRS:
 * 2 reserved bytes, a 4-byte length). Indexed by the two letters; filled once by init_vrs(). */
enum { VR_SHORT = 1, VR_LONG = 2 };
static unsigned char vr_kind[26][26];

static void init_vrs(void) {
    static const char *longs[] = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT", "SV", "UV"};
    /* fastheader._ALL_VRS */
    static const char *all[] = {"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FL", "FD", "IS", "LO", "LT",
                                "OB", "OD", "OF", "OL", "OV", "OW", "PN", "SH", "SL", "SQ", "SS", "ST",
                                "SV", "TM", "UC", "UI", "UL", "UN", "UR", "US", "UT", "UV"};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) vr_kind[all[i][0] - 'A'][all[i][1] - 'A'] = VR_SHORT;
    for (size_t i = 0; i < sizeof longs / sizeof longs[0]; i++) vr_kind[longs[i][0] - 'A'][longs[i][1] - 'A'] = VR_LONG;
}

/* VR_LONG, VR_SHORT or 0 (not a VR this walk knows) for the two bytes at v. */
static int vr_of(const unsigned char *v) {
    if (v[0] < 'A' || v[0] > 'Z' || v[1] < 'A' || v[1] > 'Z') return 0;
    return vr_kind[v[0] - 'A'][v[1] - 'A'];
}

/* fastheader._LONG_VRS */
static int long_vr(const unsigned char *v) { return vr_of(v) == VR_LONG; }

/* Each known VR as a bytes object, made on first use and kept (a new reference, or NULL on error). */
static PyObject *vr_objs[26][26];

static PyObject *vr_object(const unsigned char *v) {
    if (vr_of(v) == 0) return PyBytes_FromStringAndSize((const char *)v, 2);
    PyObject **slot = &vr_objs[v[0] - 'A'][v[1] - 'A'];
    if (*slot == NULL) {
        *slot = PyBytes_FromStringAndSize((const char *)v, 2);
        if (*slot == NULL) return NULL;
    }
    return Py_NewRef(*slot);
}

/* fastheader._FALLBACK_TAGS */
static int fallback_tag(uint32_t tag) {
    return tag == 0x52009230u || tag == 0x52009229u || tag == 0x00041220u || tag == 0x7FE00008u ||
           tag == 0x7FE00009u || tag == TAG_ITEM || tag == TAG_ITEM_END || tag == TAG_SEQ_END;
}

static int upper(unsigned char c) { return c >= 65 && c <= 90; }

/* fastheader._skip_undefined: the position after the undefined-length value starting at *pos.
 * Returns 0 and moves *pos, or NEED_MORE / UNSUPPORTED. */
static int skip_undefined(const unsigned char *buf, int64_t n, int64_t *pos_io, int explicit_vr) {
    int64_t pos = *pos_io;
    size_t cap = 64, depth = 1;
    unsigned char *in_sequence = malloc(cap); /* 1: a sequence, 0: an undefined-length item */
    int status = 0;
    if (in_sequence == NULL) return -1;
    in_sequence[0] = 1;
    while (depth > 0) {
        if (pos + 8 > n) { status = NEED_MORE; break; }
        uint16_t group = u16(buf + pos), elem = u16(buf + pos + 2);
        uint32_t length;
        if (in_sequence[depth - 1]) {
            length = u32(buf + pos + 4);
            pos += 8;
            if (group != 0xFFFE) { status = UNSUPPORTED; break; }
            if (elem == 0xE0DD) {
                depth--;
            } else if (elem != 0xE000) {
                status = UNSUPPORTED;
                break;
            } else if (length == UNDEFINED) {
                if (depth == cap) {
                    unsigned char *grown = realloc(in_sequence, cap * 2);
                    if (grown == NULL) { status = -1; break; }
                    in_sequence = grown;
                    cap *= 2;
                }
                in_sequence[depth++] = 0;
            } else {
                pos += length;
            }
            continue;
        }
        if (group == 0xFFFE) {
            if (elem != 0xE00D) { status = UNSUPPORTED; break; }
            pos += 8;
            depth--;
            continue;
        }
        if (explicit_vr) {
            const unsigned char *vr = buf + pos + 4;
            if (long_vr(vr)) {
                if (pos + 12 > n) { status = NEED_MORE; break; }
                length = u32(buf + pos + 8);
                pos += 12;
            } else if (upper(vr[0]) && upper(vr[1])) {
                length = u16(buf + pos + 6);
                pos += 8;
            } else {
                status = UNSUPPORTED;
                break;
            }
        } else {
            length = u32(buf + pos + 4);
            pos += 8;
        }
        if (length == UNDEFINED) {
            if (depth == cap) {
                unsigned char *grown = realloc(in_sequence, cap * 2);
                if (grown == NULL) { status = -1; break; }
                in_sequence = grown;
                cap *= 2;
            }
            in_sequence[depth++] = 1;
        } else {
            pos += length;
        }
    }
    free(in_sequence);
    if (status == 0) *pos_io = pos;
    return status;
}

/* One element the walk stops at (the character set, a wanted value, a wanted sequence's first item). */
typedef struct {
    uint32_t tag;
    uint32_t length;
    int64_t value_pos;
    int64_t end;       /* where its value ends (an undefined-length sequence: after its delimiter) */
    int64_t vr_pos;    /* where its explicit VR is; -1 in an implicit dataset */
    Py_ssize_t index;  /* its entry in the table; -1 for a character set that is not wanted */
    int code;          /* what the table wants of it (0: nothing) */
    int first_item;    /* a wanted sequence, as fastheader._parse reads its first item */
} Hit;

typedef struct {
    Hit *items;
    size_t n, cap;
} Hits;

static int hits_add(Hits *h, Hit hit) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 32;
        Hit *grown = realloc(h->items, cap * sizeof(Hit));
        if (grown == NULL) return -1;
        h->items = grown;
        h->cap = cap;
    }
    h->items[h->n++] = hit;
    return 0;
}

/* How a walk ended: its status (PIXEL...), the position it stopped at, the pixel data's place. */
typedef struct {
    int status;
    int64_t pos, pixel_pos, pixel_length;
} WalkEnd;

/* read()'s values converted before, by (tag, the file's VR, the value's bytes): an open-addressing
 * table of exact keys (a copy of the bytes, compared whole), kept in C so that a value seen before
 * costs no Python key. It holds only what read()'s own converter made: ASCII text and numbers,
 * the same in every character set read() accepts. Used under the GIL only. */
typedef struct {
    uint64_t hash;
    uint32_t tag, length;
    unsigned char vr[2];   /* the file's VR; {0, 0} in an implicit dataset */
    unsigned char *raw;    /* a copy of the value's bytes */
    PyObject *value;       /* NULL: an empty slot */
} Memo;

typedef struct {
    Memo *slots;
    size_t cap, count;
    unsigned char charset[64]; /* the last SpecificCharacterSet value found in `charsets` */
    int charset_len;           /* -1: none yet */
} MemoTable;

static void memo_clear(MemoTable *m) {
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].value != NULL) {
            Py_DECREF(m->slots[i].value);
            free(m->slots[i].raw);
        }
    }
    free(m->slots);
    m->slots = NULL;
    m->cap = m->count = 0;
}

static uint64_t memo_hash(uint32_t tag, const unsigned char *vr, const unsigned char *raw, uint32_t length) {
    uint64_t h = 1469598103934665603ull ^ tag; /* FNV-1a, 8 bytes at a time */
    h = (h ^ (vr != NULL ? (uint64_t)(vr[0] << 8 | vr[1]) : 0)) * 1099511628211ull;
    uint32_t i = 0;
    for (; i + 8 <= length; i += 8) {
        uint64_t word;
        memcpy(&word, raw + i, 8);
        h = (h ^ word) * 1099511628211ull;
        h ^= h >> 32;
    }
    for (; i < length; i++) h = (h ^ raw[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

static int memo_same(const Memo *e, uint64_t hash, uint32_t tag, const unsigned char *vr, const unsigned char *raw,
                     uint32_t length) {
    return e->hash == hash && e->tag == tag && e->length == length &&
           e->vr[0] == (vr != NULL ? vr[0] : 0) && e->vr[1] == (vr != NULL ? vr[1] : 0) &&
           memcmp(e->raw, raw, length) == 0;
}

/* The value remembered for these bytes (borrowed), or NULL. */
static PyObject *memo_get(const MemoTable *m, uint64_t hash, uint32_t tag, const unsigned char *vr,
                          const unsigned char *raw, uint32_t length) {
    if (m->cap == 0) return NULL;
    for (size_t i = hash & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        const Memo *e = &m->slots[i];
        if (e->value == NULL) return NULL;
        if (memo_same(e, hash, tag, vr, raw, length)) return e->value;
    }
}

/* Remember `value` (emptying the table at `limit` entries, as fastheader._remember_element does).
 * 0, or -1 when memory ran out (nothing is remembered then). */
static int memo_put(MemoTable *m, uint64_t hash, uint32_t tag, const unsigned char *vr, const unsigned char *raw,
                    uint32_t length, PyObject *value, size_t limit) {
    if (m->count >= limit) memo_clear(m);
    if ((m->count + 1) * 2 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 256;
        Memo *slots = calloc(cap, sizeof(Memo));
        if (slots == NULL) return -1;
        for (size_t i = 0; i < m->cap; i++) {
            Memo *e = &m->slots[i];
            if (e->value == NULL) continue;
            size_t j = e->hash & (cap - 1);
            while (slots[j].value != NULL) j = (j + 1) & (cap - 1);
            slots[j] = *e;
        }
        free(m->slots);
        m->slots = slots;
        m->cap = cap;
    }
    unsigned char *copy = malloc(length ? length : 1);
    if (copy == NULL) return -1;
    memcpy(copy, raw, length);
    size_t i = hash & (m->cap - 1);
    while (m->slots[i].value != NULL) i = (i + 1) & (m->cap - 1);
    Memo *e = &m->slots[i];
    e->hash = hash;
    e->tag = tag;
    e->length = length;
    e->vr[0] = vr != NULL ? vr[0] : 0;
    e->vr[1] = vr != NULL ? vr[1] : 0;
    e->raw = copy;
    e->value = Py_NewRef(value);
    m->count++;
    return 0;
}

/* The wanted tags in order, what is wanted of each, and (for read()) each one's keyword and the
 * dictionary's VR: a capsule made by table(). */
typedef struct {
    Py_ssize_t n;
    uint32_t *tags;
    unsigned char *codes;
    PyObject **tag_objs;  /* each tag as a Python int, made once: part of a remembered value's key */
    PyObject **keywords;  /* each tag's keyword (NULL when the table was given codes only) */
    unsigned char (*vrs)[2]; /* the dictionary's VR of each tag; {0, 0} when it is not one plain VR */
    MemoTable *memo;         /* read()'s values converted before */
} Table;

static const char *TABLE_NAME = "volume.dicom._walk.table";

static void table_release(Table *t) {
    if (t == NULL) return;
    for (Py_ssize_t i = 0; i < t->n; i++) {
        if (t->tag_objs != NULL) Py_XDECREF(t->tag_objs[i]);
        if (t->keywords != NULL) Py_XDECREF(t->keywords[i]);
    }
    if (t->memo != NULL) memo_clear(t->memo);
    free(t->memo);
    free(t->tag_objs);
    free(t->keywords);
    free(t->vrs);
    free(t->tags);
    free(t->codes);
    free(t);
}

static void table_free(PyObject *capsule) { table_release(PyCapsule_GetPointer(capsule, TABLE_NAME)); }

typedef struct {
    uint32_t tag;
    unsigned char code;
    PyObject *keyword; /* borrowed from the dict given to table() */
    unsigned char vr[2];
} Entry;

static int compare_entries(const void *a, const void *b) {
    uint32_t x = ((const Entry *)a)->tag, y = ((const Entry *)b)->tag;
    return x < y ? -1 : x > y;
}

/* One entry of table()'s dict: a code, or (code, keyword, dictionary VR). 0, or -1 with an exception. */
static int table_entry(PyObject *key, PyObject *value, Entry *e) {
    unsigned long tag = PyLong_AsUnsignedLong(key);
    if (PyErr_Occurred()) return -1;
    PyObject *code_obj = value;
    e->keyword = NULL;
    e->vr[0] = e->vr[1] = 0;
    if (PyTuple_Check(value)) {
        if (PyTuple_GET_SIZE(value) != 3 || !PyUnicode_Check(PyTuple_GET_ITEM(value, 1)) ||
            !PyUnicode_Check(PyTuple_GET_ITEM(value, 2))) {
            PyErr_SetString(PyExc_TypeError, "table() entries are a code or (code, keyword, VR)");
            return -1;
        }
        code_obj = PyTuple_GET_ITEM(value, 0);
        e->keyword = PyTuple_GET_ITEM(value, 1);
        Py_ssize_t size;
        const char *vr = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(value, 2), &size);
        if (vr == NULL) return -1;
        if (size == 2 && vr[0] >= 'A' && vr[0] <= 'Z' && vr[1] >= 'A' && vr[1] <= 'Z') {
            e->vr[0] = (unsigned char)vr[0];
            e->vr[1] = (unsigned char)vr[1];
        }
    }
    long code = PyLong_AsLong(code_obj);
    if (PyErr_Occurred()) return -1;
    if (tag > 0xFFFFFFFFul || code < 1 || code > 255) {
        PyErr_SetString(PyExc_ValueError, "tags are 32-bit, codes 1-255");
        return -1;
    }
    e->tag = (uint32_t)tag;
    e->code = (unsigned char)code;
    return 0;
}

/* table({tag: code or (code, keyword, VR)}) -> the capsule walk() and read() take. */
static PyObject *table(PyObject *self, PyObject *arg) {
    (void)self;
    if (!PyDict_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "table() takes a dict {tag: code or (code, keyword, VR)}");
        return NULL;
    }
    Py_ssize_t n = PyDict_Size(arg), i = 0, k = 0;
    Entry *entries = malloc(sizeof(Entry) * (size_t)(n + 1));
    Table *t = calloc(1, sizeof(Table));
    if (t != NULL) {
        t->tags = malloc(sizeof(uint32_t) * (size_t)(n + 1));
        t->codes = malloc((size_t)(n + 1));
        t->tag_objs = calloc((size_t)(n + 1), sizeof(PyObject *));
        t->keywords = calloc((size_t)(n + 1), sizeof(PyObject *));
        t->vrs = calloc((size_t)(n + 1), 2);
        t->memo = calloc(1, sizeof(MemoTable));
        if (t->memo != NULL) t->memo->charset_len = -1;
    }
    if (entries == NULL || t == NULL || t->tags == NULL || t->codes == NULL || t->tag_objs == NULL ||
        t->keywords == NULL || t->vrs == NULL || t->memo == NULL) {
        free(entries);
        table_release(t);
        return PyErr_NoMemory();
    }
    PyObject *key, *value;
    while (PyDict_Next(arg, &i, &key, &value)) {
        if (table_entry(key, value, &entries[k]) < 0) {
            free(entries);
            table_release(t);
            return NULL;
        }
        k++;
    }
    qsort(entries, (size_t)k, sizeof(Entry), compare_entries);
    for (Py_ssize_t j = 0; j < k; j++) {
        t->tags[j] = entries[j].tag;
        t->codes[j] = entries[j].code;
        t->vrs[j][0] = entries[j].vr[0];
        t->vrs[j][1] = entries[j].vr[1];
        t->keywords[j] = entries[j].keyword;
        Py_XINCREF(t->keywords[j]);
    }
    t->n = k;
    free(entries);
    for (Py_ssize_t j = 0; j < k; j++) {
        t->tag_objs[j] = PyLong_FromUnsignedLong(t->tags[j]);
        if (t->tag_objs[j] == NULL) {
            table_release(t);
            return NULL;
        }
    }
    PyObject *capsule = PyCapsule_New(t, TABLE_NAME, table_free);
    if (capsule == NULL) table_release(t);
    return capsule;
}

/* What the table wants of ``tag`` (0: nothing). The walk's tags strictly increase, so the search
 * goes on from where the last one stopped (*cursor, the first table entry not below the last tag):
 * one pass over the table per file at most. */
static int want(const Table *t, uint32_t tag, Py_ssize_t *cursor) {
    Py_ssize_t i = *cursor;
    while (i < t->n && t->tags[i] < tag) i++;
    *cursor = i;
    return i < t->n && t->tags[i] == tag ? t->codes[i] : 0;
}

/* fastheader._parse's loop over the top-level elements from `pos`, without Python objects (it
 * runs without the GIL in read()): the elements the Python side acts on go into `hits`, in the
 * file's order. 0, or -1 when memory ran out. */
static int walk_core(const unsigned char *buf, int64_t n, int64_t pos, int explicit_vr, const Table *t,
                     int64_t file_size, Hits *hits, WalkEnd *end) {
    uint32_t last_tag = 0;
    Py_ssize_t cursor = 0;
    end->pixel_pos = end->pixel_length = -1;
    if (pos < 0) pos = 0;
    for (;;) {
        end->pos = pos;
        if (pos + 8 > n) {
            end->status = pos >= file_size ? NO_PIXEL : NEED_MORE;
            return 0;
        }
        uint32_t length;
        int64_t value_pos, vr_pos = -1;
        uint32_t tag = ((uint32_t)u16(buf + pos) << 16) | u16(buf + pos + 2);
        if (explicit_vr) {
            vr_pos = pos + 4;
            int kind = vr_of(buf + vr_pos);
            if (kind == VR_LONG) {
                if (pos + 12 > n) { end->status = NEED_MORE; return 0; }
                length = u32(buf + pos + 8);
                value_pos = pos + 12;
            } else if (kind == VR_SHORT) {
                length = u16(buf + pos + 6);
                value_pos = pos + 8;
            } else {
                end->status = UNSUPPORTED;
                return 0;
            }
        } else {
            length = u32(buf + pos + 4);
            value_pos = pos + 8;
        }
        if (tag <= last_tag || fallback_tag(tag)) { end->status = UNSUPPORTED; return 0; }
        last_tag = tag;
        if (tag == TAG_PIXEL_DATA) {
            if (length != UNDEFINED && value_pos + (int64_t)length > file_size) {
                end->status = TRUNCATED;
            } else {
                end->status = PIXEL;
                end->pixel_pos = value_pos;
                end->pixel_length = length;
            }
            return 0;
        }
        int code = want(t, tag, &cursor);
        int first_item = (code == WANT_FIRST_ITEM || code == WANT_FIRST_ITEM_IMPLICIT) &&
                         (explicit_vr ? vr_is(buf + vr_pos, "SQ") : code == WANT_FIRST_ITEM_IMPLICIT);
        /* the character set, a first item, a value: the Python side converts them in this order */
        if (tag == TAG_CHARACTER_SET || first_item || (code && length != UNDEFINED)) {
            Hit hit = {tag, length, value_pos, value_pos + (int64_t)length, vr_pos, code ? cursor : -1, code, first_item};
            if (hits_add(hits, hit) < 0) return -1;
        }
        if (length == UNDEFINED) {
            int64_t next = value_pos;
            int status = skip_undefined(buf, n, &next, explicit_vr);
            if (status < 0) return -1;
            if (status) { end->status = status; return 0; }
            if (hits->n > 0 && hits->items[hits->n - 1].value_pos == value_pos) hits->items[hits->n - 1].end = next;
            pos = next;
            continue;
        }
        pos = value_pos + (int64_t)length;
        if (pos > file_size) { end->pos = pos; end->status = TRUNCATED; return 0; }
    }
}

/* The cache's key of a value: (tag, VR as bytes or None, the character set's bytes or None, the
 * value's bytes). A new reference, or NULL on error. */
static PyObject *value_key(PyObject *tag_obj, const unsigned char *vr, PyObject *charset, const unsigned char *raw,
                           int64_t length) {
    PyObject *vr_obj = vr != NULL ? vr_object(vr) : Py_NewRef(Py_None);
    PyObject *raw_obj = PyBytes_FromStringAndSize((const char *)raw, (Py_ssize_t)length);
    PyObject *key = NULL;
    if (vr_obj != NULL && raw_obj != NULL)
        key = PyTuple_Pack(4, tag_obj, vr_obj, charset != NULL ? charset : Py_None, raw_obj);
    Py_XDECREF(vr_obj);
    Py_XDECREF(raw_obj);
    return key;
}

/* A value converted before, by its key: the cache holds (keyword, value) and the value goes into
 * `values`. 1 when found, 0 when not, -1 on error. */
static int remembered(PyObject *cache, PyObject *values, PyObject *key) {
    PyObject *entry = PyDict_GetItemWithError(cache, key); /* borrowed */
    if (entry == NULL) return PyErr_Occurred() ? -1 : 0;
    if (!PyTuple_Check(entry) || PyTuple_GET_SIZE(entry) != 2) return 0;
    return PyDict_SetItem(values, PyTuple_GET_ITEM(entry, 0), PyTuple_GET_ITEM(entry, 1)) < 0 ? -1 : 1;
}

/* One hit: (tag, VR as bytes or None, value position, length). */
static int add_hit(PyObject *hits, uint32_t tag, const unsigned char *vr, int64_t value_pos, uint32_t length) {
    PyObject *vr_obj = vr != NULL ? vr_object(vr) : Py_NewRef(Py_None);
    if (vr_obj == NULL) return -1;
    PyObject *hit = Py_BuildValue("(kNLk)", (unsigned long)tag, vr_obj, (long long)value_pos, (unsigned long)length);
    if (hit == NULL) return -1;
    int rc = PyList_Append(hits, hit);
    Py_DECREF(hit);
    return rc;
}

/* walk(buf, pos, explicit, table, file_size[, cache, values]): fastheader._parse's loop over the
 * top-level elements, as (status, pos, hits, pixel_pos, pixel_length). With `cache` and `values`
 * (dicts), a wanted value found in the cache goes into `values` and is not returned as a hit. */
static PyObject *walk(PyObject *self, PyObject *args) {
    Py_buffer view;
    long long start, file_size;
    int explicit_vr;
    PyObject *capsule, *cache = NULL, *values = NULL, *charset = NULL;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*LpOL|O!O!", &view, &start, &explicit_vr, &capsule, &file_size,
                          &PyDict_Type, &cache, &PyDict_Type, &values)) return NULL;
    const Table *t = PyCapsule_GetPointer(capsule, TABLE_NAME);
    if (t == NULL || (cache != NULL) != (values != NULL)) {
        if (t != NULL) PyErr_SetString(PyExc_TypeError, "walk() takes both a cache and a values dict, or neither");
        PyBuffer_Release(&view);
        return NULL;
    }
    const unsigned char *buf = view.buf;
    const int64_t n = view.len;
    Hits found = {NULL, 0, 0};
    WalkEnd end;
    PyObject *out = NULL, *hits = NULL;
    if (walk_core(buf, n, start, explicit_vr, t, file_size, &found, &end) < 0) {
        PyErr_NoMemory();
        goto done;
    }
    hits = PyList_New(0);
    if (hits == NULL) goto done;
    for (size_t i = 0; i < found.n; i++) {
        const Hit *h = &found.items[i];
        const unsigned char *vr = h->vr_pos >= 0 ? buf + h->vr_pos : NULL;
        int in_buffer = h->value_pos + (int64_t)h->length <= n;
        if (h->tag == TAG_CHARACTER_SET && in_buffer) {
            Py_XDECREF(charset);
            charset = PyBytes_FromStringAndSize((const char *)buf + h->value_pos, (Py_ssize_t)h->length);
            if (charset == NULL) goto done;
        }
        int got = 0;
        if (cache != NULL && ((h->code == WANT_VALUE && h->tag != TAG_CHARACTER_SET) || h->first_item) &&
            h->end <= n) { /* a sequence by its bytes, delimiters included */
            PyObject *key = value_key(t->tag_objs[h->index], vr, charset, buf + h->value_pos, h->end - h->value_pos);
            if (key == NULL) goto done;
            got = remembered(cache, values, key);
            Py_DECREF(key);
            if (got < 0) goto done;
        }
        if (!got && add_hit(hits, h->tag, vr, h->value_pos, h->length) < 0) goto done;
    }
    out = Py_BuildValue("(iLOLL)", end.status, (long long)end.pos, hits, (long long)end.pixel_pos,
                        (long long)end.pixel_length);
done:
    Py_XDECREF(hits);
    Py_XDECREF(charset);
    free(found.items);
    PyBuffer_Release(&view);
    return out;
}

/* --- read(): open, read, walk and convert in one call ------------------------------------------ */

#if PY_VERSION_HEX < 0x030B0000
#define PyFloat_Unpack4(p, le) _PyFloat_Unpack4((const unsigned char *)(p), (le))
#define PyFloat_Unpack8(p, le) _PyFloat_Unpack8((const unsigned char *)(p), (le))
#endif

/* What convert() gives: the value, or "the Python converter decides" (a value it refuses, text
 * beyond ASCII, a form of number this converter does not parse). */
enum { DECLINED = 0, CONVERTED = 1, FAILED = -1 };

/* Whether the VR at vr is one of `names` ("AE AS CS": two letters each, one space between). */
static int is_vr(const unsigned char *vr, const char *names) {
    for (const char *p = names;; p += 3) {
        if (vr[0] == (unsigned char)p[0] && vr[1] == (unsigned char)p[1]) return 1;
        if (p[2] != ' ') return 0;
    }
}

/* fastheader._TEXT_VRS, _SINGLE_TEXT_VRS, _BYTES_VRS */
static const char *TEXT_VRS = "AE AS CS DA DT LO LT PN SH ST TM UC UI UR UT";
static const char *SINGLE_TEXT_VRS = "LT ST UT UR";

/* Characters str.strip() removes that are not a space: a part holding them is left to Python. */
static int odd_space(unsigned char c) { return (c >= 9 && c <= 13) || (c >= 28 && c <= 31); }

/* The bounds [*a, *b) of a number's part without the spaces around it: 1, 0 for an empty part,
 * -2 (declined) when the part holds another character str.strip() would remove. */
static int trim_part(const unsigned char *p, int64_t len, int64_t *a, int64_t *b) {
    *a = 0;
    *b = len;
    while (*a < *b && p[*a] == ' ') (*a)++;
    while (*b > *a && p[*b - 1] == ' ') (*b)--;
    for (int64_t i = 0; i < len; i++)
        if (odd_space(p[i])) return -2;
    return *a == *b ? 0 : 1;
}

/* One part of a DS value as float() reads it: [sign] digits [. digits] [e [sign] digits], spaces
 * around. 1 and *out (a new float), 0 for an empty part (*out NULL), DECLINED (-2 here) for any
 * other form, -1 on error. */
static int ds_part(const unsigned char *p, int64_t len, PyObject **out) {
    int64_t a, b;
    *out = NULL;
    int trimmed = trim_part(p, len, &a, &b);
    if (trimmed <= 0) return trimmed;
    int64_t i = a, digits = 0;
    if (p[i] == '+' || p[i] == '-') i++;
    while (i < b && p[i] >= '0' && p[i] <= '9') { i++; digits++; }
    if (i < b && p[i] == '.') {
        i++;
        while (i < b && p[i] >= '0' && p[i] <= '9') { i++; digits++; }
    }
    if (digits == 0) return -2;
    if (i < b && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        if (i < b && (p[i] == '+' || p[i] == '-')) i++;
        int64_t exp_digits = 0;
        while (i < b && p[i] >= '0' && p[i] <= '9') { i++; exp_digits++; }
        if (exp_digits == 0) return -2;
    }
    if (i != b || b - a > 63) return -2;
    char text[64];
    memcpy(text, p + a, (size_t)(b - a));
    text[b - a] = 0;
    char *stop = NULL;
    double d = PyOS_string_to_double(text, &stop, NULL); /* what float() calls: the same double */
    if (d == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        return -2;
    }
    if (stop != text + (b - a)) return -2;
    *out = PyFloat_FromDouble(d);
    return *out == NULL ? -1 : 1;
}

/* One part of an IS value as int(float(part)) reads it: [sign] 1-15 digits, spaces around (a
 * double holds every such integer exactly). Returns as ds_part. */
static int is_part(const unsigned char *p, int64_t len, PyObject **out) {
    int64_t a, b;
    *out = NULL;
    int trimmed = trim_part(p, len, &a, &b);
    if (trimmed <= 0) return trimmed;
    int64_t i = a;
    int negative = 0;
    if (p[i] == '+' || p[i] == '-') negative = p[i++] == '-';
    if (i == b || b - i > 15) return -2;
    long long v = 0;
    for (; i < b; i++) {
        if (p[i] < '0' || p[i] > '9') return -2;
        v = v * 10 + (p[i] - '0');
    }
    *out = PyLong_FromLongLong(negative ? -v : v);
    return *out == NULL ? -1 : 1;
}

/* A DS or IS value (ASCII, trailing spaces and NULs gone): fastheader._convert's numbers. */
static int numbers(const unsigned char *text, int64_t len, int is_ds, PyObject **out) {
    int64_t parts = 1;
    for (int64_t i = 0; i < len; i++) parts += text[i] == '\\';
    PyObject *tuple = parts > 1 ? PyTuple_New((Py_ssize_t)parts) : NULL;
    if (parts > 1 && tuple == NULL) return FAILED;
    int64_t a = 0, k = 0;
    for (int64_t i = 0; i <= len; i++) {
        if (i < len && text[i] != '\\') continue;
        PyObject *v;
        int rc = is_ds ? ds_part(text + a, i - a, &v) : is_part(text + a, i - a, &v);
        if (rc == -1) { Py_XDECREF(tuple); return FAILED; }
        if (rc == -2 || (rc == 0 && parts > 1)) { Py_XDECREF(tuple); return DECLINED; } /* an empty number in a list: Python refuses it */
        if (parts == 1) {
            *out = rc == 0 ? Py_NewRef(Py_None) : v;
            return CONVERTED;
        }
        PyTuple_SET_ITEM(tuple, (Py_ssize_t)k++, v);
        a = i + 1;
    }
    *out = tuple;
    return CONVERTED;
}

/* Text split at backslashes: one str, or a tuple of them. */
static int texts(const unsigned char *text, int64_t len, PyObject **out) {
    int64_t parts = 1;
    for (int64_t i = 0; i < len; i++) parts += text[i] == '\\';
    if (parts == 1) {
        *out = PyUnicode_DecodeASCII((const char *)text, (Py_ssize_t)len, NULL);
        return *out == NULL ? FAILED : CONVERTED;
    }
    PyObject *tuple = PyTuple_New((Py_ssize_t)parts);
    if (tuple == NULL) return FAILED;
    int64_t a = 0, k = 0;
    for (int64_t i = 0; i <= len; i++) {
        if (i < len && text[i] != '\\') continue;
        PyObject *v = PyUnicode_DecodeASCII((const char *)text + a, (Py_ssize_t)(i - a), NULL);
        if (v == NULL) { Py_DECREF(tuple); return FAILED; }
        PyTuple_SET_ITEM(tuple, (Py_ssize_t)k++, v);
        a = i + 1;
    }
    *out = tuple;
    return CONVERTED;
}

/* Binary numbers (US SS UL SL FL FD), little endian: one, or a tuple. */
static int binary(const unsigned char *raw, uint32_t length, const unsigned char *vr, PyObject **out) {
    int size = is_vr(vr, "US SS") ? 2 : is_vr(vr, "UL SL FL") ? 4 : 8;
    if (length % (uint32_t)size) return DECLINED;
    Py_ssize_t n = (Py_ssize_t)(length / (uint32_t)size);
    PyObject *tuple = n > 1 ? PyTuple_New(n) : NULL;
    if (n > 1 && tuple == NULL) return FAILED;
    for (Py_ssize_t i = 0; i < n; i++) {
        const unsigned char *p = raw + i * size;
        PyObject *v;
        if (vr_is(vr, "US")) v = PyLong_FromLong(u16(p));
        else if (vr_is(vr, "SS")) v = PyLong_FromLong((int16_t)u16(p));
        else if (vr_is(vr, "UL")) v = PyLong_FromUnsignedLong(u32(p));
        else if (vr_is(vr, "SL")) v = PyLong_FromLong((long)(int32_t)u32(p));
        else {
            double d = vr_is(vr, "FL") ? PyFloat_Unpack4((const char *)p, 1) : PyFloat_Unpack8((const char *)p, 1);
            v = d == -1.0 && PyErr_Occurred() ? NULL : PyFloat_FromDouble(d);
        }
        if (v == NULL) { Py_XDECREF(tuple); return FAILED; }
        if (n == 1) { *out = v; return CONVERTED; }
        PyTuple_SET_ITEM(tuple, i, v);
    }
    *out = tuple;
    return CONVERTED;
}

/* fastheader._value of one element, for the values it converts the same way: *out a new reference. */
static int convert(const unsigned char *raw, uint32_t length, const unsigned char *file_vr, const unsigned char *dict_vr,
                   PyObject **out) {
    const unsigned char *vr = file_vr != NULL ? file_vr : dict_vr;
    if (vr[0] == 0) return DECLINED;                                   /* "OB or OW" and the like */
    if (vr_is(vr, "UN") && !vr_is(dict_vr, "UN")) vr = dict_vr;
    if (vr[0] == 0 || vr_is(vr, "SQ") || vr_is(vr, "UN")) return DECLINED; /* Python refuses them */
    int ds = vr_is(vr, "DS"), is = vr_is(vr, "IS");
    if (length == 0) {
        *out = ds || is ? Py_NewRef(Py_None) : PyUnicode_FromStringAndSize("", 0);
        return *out == NULL ? FAILED : CONVERTED;
    }
    if (ds || is || is_vr(vr, TEXT_VRS)) {
        for (uint32_t i = 0; i < length; i++)
            if (raw[i] >= 0x80) return DECLINED;                          /* decoded by the character set in Python */
        int64_t len = length;
        while (len > 0 && (raw[len - 1] == ' ' || raw[len - 1] == 0)) len--;
        if (is_vr(vr, SINGLE_TEXT_VRS)) {
            *out = PyUnicode_DecodeASCII((const char *)raw, (Py_ssize_t)len, NULL);
            return *out == NULL ? FAILED : CONVERTED;
        }
        if (ds || is) return numbers(raw, len, ds, out);
        return texts(raw, len, out);
    }
    if (is_vr(vr, "OB OW")) {
        *out = PyBytes_FromStringAndSize((const char *)raw, (Py_ssize_t)length);
        return *out == NULL ? FAILED : CONVERTED;
    }
    if (is_vr(vr, "US SS UL SL FL FD")) return binary(raw, length, vr, out);
    return DECLINED;
}

/* fastheader._parse's file meta group (explicit VR little endian) in a buffer starting with the
 * preamble: where the dataset starts, its syntax, and the transfer syntax and SOP class (ASCII,
 * trailing NULs and spaces removed). 1 when the compiled reader goes on; 0 when Python decides
 * (no preamble, the meta group beyond the buffer, a syntax it steps aside for, anything unusual). */
typedef struct {
    int64_t start;
    int explicit_vr;
    const unsigned char *syntax, *sop_class;
    int64_t syntax_len, sop_class_len;
} Meta;

static const char *SYNTAX_IMPLICIT_LE = "1.2.840.10008.1.2";
static const char *SYNTAX_DEFLATED = "1.2.840.10008.1.2.1.99";
static const char *SYNTAX_BIG_ENDIAN = "1.2.840.10008.1.2.2";
static const char *SOP_DICOMDIR = "1.2.840.10008.1.3.10";

static int text_is(const unsigned char *text, int64_t len, const char *what) {
    return len == (int64_t)strlen(what) && memcmp(text, what, (size_t)len) == 0;
}

static int meta_group(const unsigned char *buf, int64_t n, Meta *m) {
    if (n < 144 || memcmp(buf + 128, "DICM", 4) != 0) return 0;
    int64_t pos = 132, end_meta = -1;
    int last_elem = -1;
    m->syntax = m->sop_class = NULL;
    m->syntax_len = m->sop_class_len = 0;
    for (;;) {
        if (pos + 8 > n) return 0;
        uint16_t group = u16(buf + pos), elem = u16(buf + pos + 2);
        if (group != 0x0002 || (end_meta >= 0 && pos >= end_meta)) break;
        const unsigned char *vr = buf + pos + 4;
        uint32_t length;
        int64_t value_pos;
        if (long_vr(vr)) {
            if (pos + 12 > n) return 0;
            length = u32(buf + pos + 8);
            value_pos = pos + 12;
            if (length == UNDEFINED) return 0;
        } else if (upper(vr[0]) && upper(vr[1])) {
            length = u16(buf + pos + 6);
            value_pos = pos + 8;
        } else {
            return 0;
        }
        if (value_pos + (int64_t)length > n || (int)elem <= last_elem) return 0; /* out of order: Python's */
        last_elem = elem;
        const unsigned char *raw = buf + value_pos;
        if (elem == 0x0000) {
            if (length < 4) return 0;
            end_meta = value_pos + (int64_t)u32(raw);
        } else if (elem == 0x0002 || elem == 0x0010) {
            int64_t len = length;
            for (int64_t i = 0; i < len; i++)
                if (raw[i] >= 0x80) return 0;
            while (len > 0 && (raw[len - 1] == 0 || raw[len - 1] == ' ')) len--;
            if (elem == 0x0002) { m->sop_class = raw; m->sop_class_len = len; }
            else { m->syntax = raw; m->syntax_len = len; }
        }
        pos = value_pos + (int64_t)length;
    }
    if (m->syntax == NULL || m->syntax_len == 0 || m->sop_class == NULL) return 0;
    if (text_is(m->syntax, m->syntax_len, SYNTAX_DEFLATED) || text_is(m->syntax, m->syntax_len, SYNTAX_BIG_ENDIAN)) return 0;
    if (m->syntax_len < (int64_t)strlen(SYNTAX_IMPLICIT_LE) || memcmp(m->syntax, SYNTAX_IMPLICIT_LE, strlen(SYNTAX_IMPLICIT_LE)) != 0) return 0;
    if (text_is(m->sop_class, m->sop_class_len, SOP_DICOMDIR)) return 0;
    m->explicit_vr = !text_is(m->syntax, m->syntax_len, SYNTAX_IMPLICIT_LE);
    m->start = pos;
    return 1;
}

/* Read up to `want` more bytes of fd into *buf (grown to hold them) after its first *got: 1 when
 * something was read, 0 at the end of the file, on an error (EINTR too: Python reads it again
 * and runs the signal's handler) or when the memory for them is refused (Python tries). */
static int read_more(int fd, unsigned char **buf, int64_t *got, int64_t want) {
    if (want <= 0 || (uint64_t)(*got + want) > (uint64_t)PY_SSIZE_T_MAX) return 0;
    unsigned char *grown = realloc(*buf, (size_t)(*got + want));
    if (grown == NULL) return 0;
    *buf = grown;
    int64_t start = *got;
    while (*got - start < want) {
        ssize_t r = read(fd, *buf + *got, (size_t)(want - (*got - start)));
        if (r <= 0) break;
        *got += r;
    }
    return *got > start;
}

/* What read() does without the GIL: a regular, non-empty file opened (never anything else: a
 * named pipe, a device), read as fastheader.read_fast reads it (its first `first` bytes, 15 times
 * as many more while the header goes on, from 1 MiB the rest), its meta group and elements walked.
 * 1 when the walk found the header's end; 0 when Python decides; -1 when memory ran out. */
static int read_and_walk(const char *path, const Table *t, int64_t first, unsigned char **buf_out, int64_t *n_out,
                         int64_t *size_out, Meta *meta, Hits *hits, WalkEnd *end) {
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0) return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) return 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return 0;
    }
    const int64_t size = (int64_t)st.st_size;
    int64_t got = 0;
    int ok = read_more(fd, buf_out, &got, first);
    *n_out = got;
    *size_out = size;
    if (ok > 0 && got >= 2 && (*buf_out)[0] == 0x1F && (*buf_out)[1] == 0x8B) ok = 0; /* gzip: Python */
    while (ok > 0) {
        if (!meta_group(*buf_out, got, meta)) { ok = 0; break; }
        hits->n = 0;
        if (walk_core(*buf_out, got, meta->start, meta->explicit_vr, t, size, hits, end) < 0) { ok = -1; break; }
        if (end->status != NEED_MORE) { ok = end->status == PIXEL || end->status == NO_PIXEL; break; }
        if (got >= size) { ok = 0; break; } /* truncated: Python says so */
        ok = read_more(fd, buf_out, &got, got < (1 << 20) ? got * 15 : size - got);
        *n_out = got;
    }
    close(fd);
    return ok;
}

/* The bytes of a character set without leading and trailing spaces and NULs (bytes.strip(b" \0")). */
static PyObject *stripped(const unsigned char *raw, int64_t len) {
    int64_t a = 0;
    while (a < len && (raw[a] == ' ' || raw[a] == 0)) a++;
    while (len > a && (raw[len - 1] == ' ' || raw[len - 1] == 0)) len--;
    return PyBytes_FromStringAndSize((const char *)raw + a, (Py_ssize_t)(len - a));
}

/* The values of the hits, as fastheader._dataset_compiled gives them: CONVERTED (all in `values`),
 * DECLINED (one needs Python: a value beyond the buffer or not seen before in a form this module
 * does not convert, a sequence's first item not seen before, a character set not known), FAILED. */
static int hit_values(const unsigned char *buf, int64_t n, const Table *t, const Hits *hits, PyObject *cache,
                      PyObject *charsets, Py_ssize_t limit, PyObject *values) {
    MemoTable *memo = t->memo;
    const unsigned char *charset_raw = NULL; /* the character set's bytes, and as a Python key part (made when needed) */
    int64_t charset_len = 0;
    PyObject *charset = NULL;
    int rc = CONVERTED;
    for (size_t i = 0; i < hits->n && rc == CONVERTED; i++) {
        const Hit *h = &hits->items[i];
        if ((h->length == UNDEFINED && !h->first_item) || h->end > n) { rc = DECLINED; break; }
        const unsigned char *raw = buf + h->value_pos, *vr = h->vr_pos >= 0 ? buf + h->vr_pos : NULL;
        if (h->tag == TAG_CHARACTER_SET) {
            Py_CLEAR(charset);
            charset_raw = raw;
            charset_len = h->length;
            if (memo->charset_len != (int)h->length || memcmp(memo->charset, raw, h->length) != 0) {
                PyObject *name = stripped(raw, h->length);
                int known = name != NULL ? PySet_Contains(charsets, name) : -1;
                Py_XDECREF(name);
                if (known <= 0) { rc = known < 0 ? FAILED : DECLINED; break; }
                if (h->length <= sizeof memo->charset) { /* remembered: the next file names the same one */
                    memcpy(memo->charset, raw, h->length);
                    memo->charset_len = (int)h->length;
                }
            }
            if (h->index < 0) continue;
        }
        PyObject *keyword = t->keywords[h->index], *tag_obj = t->tag_objs[h->index];
        if (keyword == NULL) { rc = DECLINED; break; }
        uint64_t hash = 0;
        if (h->code == WANT_VALUE && !h->first_item) {
            hash = memo_hash(h->tag, vr, raw, h->length);
            PyObject *known = memo_get(memo, hash, h->tag, vr, raw, h->length);
            if (known != NULL) {
                if (PyDict_SetItem(values, keyword, known) < 0) rc = FAILED;
                continue;
            }
        }
        PyObject *value = NULL;
        rc = h->first_item ? DECLINED : convert(raw, h->length, vr, t->vrs[h->index], &value);
        if (rc == DECLINED && (h->first_item || h->code == WANT_VALUE)) {
            /* converted by the Python reader before (fastheader._BY_ELEMENT: a sequence's first item,
             * text in the file's character set) */
            if (charset == NULL && charset_raw != NULL) {
                charset = PyBytes_FromStringAndSize((const char *)charset_raw, (Py_ssize_t)charset_len);
                if (charset == NULL) { rc = FAILED; break; }
            }
            PyObject *key = value_key(tag_obj, vr, charset, raw, h->end - h->value_pos);
            int found = key != NULL ? remembered(cache, values, key) : -1;
            Py_XDECREF(key);
            rc = found < 0 ? FAILED : found ? CONVERTED : DECLINED;
            continue;
        }
        if (rc == CONVERTED && PyDict_SetItem(values, keyword, value) < 0) rc = FAILED;
        if (rc == CONVERTED && h->code == WANT_VALUE && memo_put(memo, hash, h->tag, vr, raw, h->length, value, (size_t)limit) < 0)
            rc = FAILED;
        Py_XDECREF(value);
    }
    Py_XDECREF(charset);
    if (rc == FAILED && !PyErr_Occurred()) PyErr_NoMemory();
    return rc;
}

/* One file of read(): its name, and what read_and_walk() found. */
typedef struct {
    PyObject *path; /* bytes (os.fsencode); NULL for a name with a NUL in it */
    unsigned char *buf;
    int64_t n, size;
    Meta meta;
    Hits hits;
    WalkEnd end;
    int ok;
} FileRead;

/* The values of one file read by read_and_walk(), as read() returns them: a new reference (None
 * when Python decides), or NULL on error. */
static PyObject *file_result(FileRead *f, const Table *t, PyObject *cache, PyObject *charsets, Py_ssize_t limit) {
    if (f->ok <= 0) return Py_NewRef(Py_None);
    PyObject *values = _PyDict_NewPresized((Py_ssize_t)f->hits.n); /* no growing on the way */
    if (values == NULL) return NULL;
    int rc = hit_values(f->buf, f->n, t, &f->hits, cache, charsets, limit, values);
    PyObject *out = NULL;
    if (rc == DECLINED)
        out = Py_NewRef(Py_None);
    else if (rc == CONVERTED)
        out = Py_BuildValue("(iLLNNO)", f->end.status, (long long)f->end.pixel_pos, (long long)f->end.pixel_length,
                            PyUnicode_DecodeASCII((const char *)f->meta.sop_class, (Py_ssize_t)f->meta.sop_class_len, NULL),
                            PyUnicode_DecodeASCII((const char *)f->meta.syntax, (Py_ssize_t)f->meta.syntax_len, NULL),
                            values);
    Py_DECREF(values);
    return out;
}

/* read(paths, table, cache, charsets, first, cache_limit): each file's wanted values, or None
 * where the Python reader must decide (see fastheader.read_compiled). Every file is opened, read
 * and walked first, without the GIL (other threads run meanwhile); then the values are converted. */
static PyObject *read_files(PyObject *self, PyObject *args) {
    PyObject *paths, *capsule, *cache, *charsets;
    long long first;
    Py_ssize_t limit;
    (void)self;
    if (!PyArg_ParseTuple(args, "O!OO!OLn", &PyList_Type, &paths, &capsule, &PyDict_Type, &cache, &charsets, &first,
                          &limit))
        return NULL;
    const Table *t = PyCapsule_GetPointer(capsule, TABLE_NAME);
    if (t == NULL) return NULL;
    if (!PyAnySet_Check(charsets) || first < 144) {
        PyErr_SetString(PyExc_TypeError, "read() takes a set of character sets and a first read of 144 bytes or more");
        return NULL;
    }
    Py_ssize_t count = PyList_GET_SIZE(paths);
    FileRead *files = calloc((size_t)count + 1, sizeof(FileRead));
    if (files == NULL) return PyErr_NoMemory();
    for (Py_ssize_t i = 0; i < count; i++) {
        if (!PyUnicode_FSConverter(PyList_GET_ITEM(paths, i), &files[i].path)) {
            PyErr_Clear(); /* a NUL in the name: Python says what open() says */
            files[i].path = NULL;
        }
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < count; i++) {
        FileRead *f = &files[i];
        if (f->path != NULL)
            f->ok = read_and_walk(PyBytes_AS_STRING(f->path), t, first, &f->buf, &f->n, &f->size, &f->meta, &f->hits,
                                  &f->end);
    }
    Py_END_ALLOW_THREADS
    PyObject *out = PyList_New(count);
    for (Py_ssize_t i = 0; i < count && out != NULL; i++) {
        PyObject *result = files[i].ok < 0 ? PyErr_NoMemory() : file_result(&files[i], t, cache, charsets, limit);
        if (result == NULL) Py_CLEAR(out);
        else PyList_SET_ITEM(out, i, result);
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_XDECREF(files[i].path);
        free(files[i].hits.items);
        free(files[i].buf);
    }
    free(files);
    return out;
}

/* convert(raw, file_vr, dict_vr) -> (True, value) or (False, None): the value converter of read()
 * alone (file_vr None in an implicit dataset), for tests against fastheader._value. */
static PyObject *convert_one(PyObject *self, PyObject *args) {
    Py_buffer raw;
    PyObject *file_vr_obj;
    const char *dict_vr_text;
    Py_ssize_t dict_vr_len;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*Os#", &raw, &file_vr_obj, &dict_vr_text, &dict_vr_len)) return NULL;
    unsigned char file_vr[2] = {0, 0}, dict_vr[2] = {0, 0};
    int implicit = file_vr_obj == Py_None;
    if (!implicit) {
        if (!PyBytes_Check(file_vr_obj) || PyBytes_GET_SIZE(file_vr_obj) != 2 ||
            vr_of((const unsigned char *)PyBytes_AS_STRING(file_vr_obj)) == 0 || raw.len > 0xFFFFFFFFll) {
            PyBuffer_Release(&raw);
            PyErr_SetString(PyExc_ValueError, "convert() takes a known VR as 2 bytes, or None");
            return NULL;
        }
        memcpy(file_vr, PyBytes_AS_STRING(file_vr_obj), 2);
    }
    if (dict_vr_len == 2 && upper((unsigned char)dict_vr_text[0]) && upper((unsigned char)dict_vr_text[1]))
        memcpy(dict_vr, dict_vr_text, 2);
    PyObject *value = NULL;
    int rc = convert(raw.buf, (uint32_t)raw.len, implicit ? NULL : file_vr, dict_vr, &value);
    PyBuffer_Release(&raw);
    if (rc == FAILED) return NULL;
    if (rc == DECLINED) return Py_BuildValue("(OO)", Py_False, Py_None);
    return Py_BuildValue("(ON)", Py_True, value);
}

static PyMethodDef methods[] = {
    {"convert", convert_one, METH_VARARGS,
     "convert(raw, file_vr, dict_vr) -> (True, value) or (False, None): read()'s value converter alone"},
    {"table", table, METH_O, "table({tag: code or (code, keyword, VR)}) -> the wanted tags for walk() and read()"},
    {"walk", walk, METH_VARARGS,
     "walk(buf, pos, explicit, table, file_size[, cache, values]) -> (status, pos, hits, pixel_pos, pixel_length)\n\n"
     "The top-level elements of a little-endian dataset from ``pos``, as fastheader._parse walks them."},
    {"read", read_files, METH_VARARGS,
     "read(paths, table, cache, charsets, first, cache_limit) -> [None or (status, pixel_pos, pixel_length, "
     "sop_class, syntax, values)]\n\n"
     "Open each regular file, read its first ``first`` bytes, walk them and convert the wanted values, as\n"
     "fastheader.read_fast would; None where the Python reader must decide. The files are read and\n"
     "walked without the GIL."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_walk", "The element walk of the fast header reader, compiled.",
                                    -1, methods};

/* What the Python side expects of this module (fastheader.WALK_API): 2 since read() and table()'s
 * (code, keyword, VR) entries. An extension built from an older source is not used. */
#define WALK_API 2

PyMODINIT_FUNC PyInit__walk(void) {
    init_vrs();
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && PyModule_AddIntConstant(m, "API", WALK_API) < 0) Py_CLEAR(m);
    return m;
}
