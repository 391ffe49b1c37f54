/* The element walk of volume's fast DICOM header reader, compiled.
 *
 * volume/dicom/fastheader.py walks a little-endian dataset element by element in Python (about
 * 0.6 microseconds an element; an MR file has 300-700 of them). This module does the same walk in
 * C and returns only what the Python reader acts on: the top-level elements it wants (their tag,
 * explicit VR, value position and length), the Specific Character Set, and where the pixel data
 * is, or why it stopped (the buffer ends inside the header, something the fast reader leaves to
 * pydicom, a truncated file). Values are converted in Python, by the same code as before.
 *
 * Every decision copies fastheader._parse and fastheader._skip_undefined one for one (the Python
 * walk stays as the reference, used when this module is not built; tests/test_walk.py runs both on
 * real, synthetic and mutated files and asserts the same answers). Every read is bounds-checked
 * against the buffer: hostile files end the walk, never read outside it.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>

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

/* fastheader._LONG_VRS */
static int long_vr(const unsigned char *v) {
    static const char *names[] = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT", "SV", "UV"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (vr_is(v, names[i])) return 1;
    return 0;
}

/* fastheader._ALL_VRS */
static int known_vr(const unsigned char *v) {
    static const char *names[] = {"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FL", "FD", "IS", "LO", "LT",
                                  "OB", "OD", "OF", "OL", "OV", "OW", "PN", "SH", "SL", "SQ", "SS", "ST",
                                  "SV", "TM", "UC", "UI", "UL", "UN", "UR", "US", "UT", "UV"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (vr_is(v, names[i])) return 1;
    return 0;
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

/* One hit: (tag, VR as bytes or None, value position, length). */
static int add_hit(PyObject *hits, uint32_t tag, const unsigned char *vr, int64_t value_pos, uint32_t length) {
    PyObject *vr_obj;
    if (vr != NULL) {
        vr_obj = PyBytes_FromStringAndSize((const char *)vr, 2);
        if (vr_obj == NULL) return -1;
    } else {
        vr_obj = Py_NewRef(Py_None);
    }
    PyObject *hit = Py_BuildValue("(kNLk)", (unsigned long)tag, vr_obj, (long long)value_pos, (unsigned long)length);
    if (hit == NULL) return -1;
    int rc = PyList_Append(hits, hit);
    Py_DECREF(hit);
    return rc;
}

/* The wanted tags in order, and what is wanted of each: a capsule made by table(). */
typedef struct {
    Py_ssize_t n;
    uint32_t *tags;
    unsigned char *codes;
} Table;

static const char *TABLE_NAME = "volume.dicom._walk.table";

static void table_free(PyObject *capsule) {
    Table *t = PyCapsule_GetPointer(capsule, TABLE_NAME);
    if (t != NULL) {
        free(t->tags);
        free(t->codes);
        free(t);
    }
}

static int compare_pairs(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* table({tag: code}) -> the capsule walk() takes. */
static PyObject *table(PyObject *self, PyObject *arg) {
    (void)self;
    if (!PyDict_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "table() takes a dict {tag: code}");
        return NULL;
    }
    Py_ssize_t n = PyDict_Size(arg), i = 0, k = 0;
    Table *t = calloc(1, sizeof(Table));
    uint64_t *pairs = malloc(sizeof(uint64_t) * (size_t)(n + 1));
    if (t != NULL) {
        t->tags = malloc(sizeof(uint32_t) * (size_t)(n + 1));
        t->codes = malloc((size_t)(n + 1));
    }
    if (t == NULL || pairs == NULL || t->tags == NULL || t->codes == NULL) {
        if (t != NULL) { free(t->tags); free(t->codes); }
        free(t);
        free(pairs);
        return PyErr_NoMemory();
    }
    PyObject *key, *value;
    while (PyDict_Next(arg, &i, &key, &value)) {
        unsigned long tag = PyLong_AsUnsignedLong(key);
        long code = PyLong_AsLong(value);
        if (PyErr_Occurred() || tag > 0xFFFFFFFFul || code < 1 || code > 255) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "tags are 32-bit, codes 1-255");
            free(t->tags); free(t->codes); free(t); free(pairs);
            return NULL;
        }
        pairs[k++] = ((uint64_t)tag << 8) | (uint64_t)code;
    }
    qsort(pairs, (size_t)k, sizeof(uint64_t), compare_pairs);
    for (Py_ssize_t j = 0; j < k; j++) {
        t->tags[j] = (uint32_t)(pairs[j] >> 8);
        t->codes[j] = (unsigned char)(pairs[j] & 0xFF);
    }
    t->n = k;
    free(pairs);
    PyObject *capsule = PyCapsule_New(t, TABLE_NAME, table_free);
    if (capsule == NULL) {
        free(t->tags);
        free(t->codes);
        free(t);
    }
    return capsule;
}

/* What the table wants of ``tag`` (0: nothing). */
static int want(const Table *t, uint32_t tag) {
    Py_ssize_t lo = 0, hi = t->n;
    while (lo < hi) {
        Py_ssize_t mid = (lo + hi) / 2;
        if (t->tags[mid] < tag) lo = mid + 1;
        else hi = mid;
    }
    return lo < t->n && t->tags[lo] == tag ? t->codes[lo] : 0;
}

/* A value converted before, by (tag, VR, the character set's bytes, the value's bytes): the cache
 * holds (keyword, value) and the value goes into `values`. 1 when found, 0 when not, -1 on error. */
static int remembered(PyObject *cache, PyObject *values, uint32_t tag, const unsigned char *vr, PyObject *charset,
                      const unsigned char *raw, uint32_t length) {
    PyObject *tag_obj = PyLong_FromUnsignedLong(tag);
    PyObject *vr_obj = vr != NULL ? PyBytes_FromStringAndSize((const char *)vr, 2) : Py_NewRef(Py_None);
    PyObject *raw_obj = PyBytes_FromStringAndSize((const char *)raw, (Py_ssize_t)length);
    PyObject *key = NULL;
    if (tag_obj != NULL && vr_obj != NULL && raw_obj != NULL)
        key = PyTuple_Pack(4, tag_obj, vr_obj, charset != NULL ? charset : Py_None, raw_obj);
    Py_XDECREF(tag_obj);
    Py_XDECREF(vr_obj);
    Py_XDECREF(raw_obj);
    if (key == NULL) return -1;
    PyObject *entry = PyDict_GetItemWithError(cache, key); /* borrowed */
    Py_DECREF(key);
    if (entry == NULL) return PyErr_Occurred() ? -1 : 0;
    if (!PyTuple_Check(entry) || PyTuple_GET_SIZE(entry) != 2) return 0;
    return PyDict_SetItem(values, PyTuple_GET_ITEM(entry, 0), PyTuple_GET_ITEM(entry, 1)) < 0 ? -1 : 1;
}

static PyObject *result(int status, int64_t pos, PyObject *hits, int64_t pixel_pos, int64_t pixel_length) {
    PyObject *out = Py_BuildValue("(iLOLL)", status, (long long)pos, hits, (long long)pixel_pos, (long long)pixel_length);
    Py_DECREF(hits);
    return out;
}

/* walk(buf, pos, explicit, table, file_size[, cache, values]): fastheader._parse's loop over the
 * top-level elements. With `cache` and `values` (dicts), a wanted value found in the cache goes
 * into `values` and is not returned as a hit. */
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
    int64_t pos = start < 0 ? 0 : start;
    uint32_t last_tag = 0;
    PyObject *out = NULL;
    PyObject *hits = PyList_New(0);
    if (hits == NULL) goto done;
    for (;;) {
        if (pos + 8 > n) {
            out = result(pos >= file_size ? NO_PIXEL : NEED_MORE, pos, hits, -1, -1);
            goto done;
        }
        uint32_t length;
        int64_t value_pos;
        const unsigned char *vr = NULL;
        uint32_t tag = ((uint32_t)u16(buf + pos) << 16) | u16(buf + pos + 2);
        if (explicit_vr) {
            vr = buf + pos + 4;
            if (long_vr(vr)) {
                if (pos + 12 > n) { out = result(NEED_MORE, pos, hits, -1, -1); goto done; }
                length = u32(buf + pos + 8);
                value_pos = pos + 12;
            } else if (known_vr(vr)) {
                length = u16(buf + pos + 6);
                value_pos = pos + 8;
            } else {
                out = result(UNSUPPORTED, pos, hits, -1, -1);
                goto done;
            }
        } else {
            length = u32(buf + pos + 4);
            value_pos = pos + 8;
        }
        if (tag <= last_tag || fallback_tag(tag)) { out = result(UNSUPPORTED, pos, hits, -1, -1); goto done; }
        last_tag = tag;
        if (tag == TAG_PIXEL_DATA) {
            if (length != UNDEFINED && value_pos + (int64_t)length > file_size)
                out = result(TRUNCATED, pos, hits, -1, -1);
            else
                out = result(PIXEL, pos, hits, value_pos, length);
            goto done;
        }
        int code = want(t, tag);
        int first_item = (code == WANT_FIRST_ITEM || code == WANT_FIRST_ITEM_IMPLICIT) &&
                         (explicit_vr ? vr_is(vr, "SQ") : code == WANT_FIRST_ITEM_IMPLICIT);
        if (tag == TAG_CHARACTER_SET && value_pos + (int64_t)length <= n) {
            Py_XDECREF(charset);
            charset = PyBytes_FromStringAndSize((const char *)buf + value_pos, (Py_ssize_t)length);
            if (charset == NULL) { Py_DECREF(hits); goto done; }
        }
        /* the character set, a first item, a value: the Python side converts them in this order */
        if (tag == TAG_CHARACTER_SET || first_item || (code && length != UNDEFINED)) {
            int found = 0;
            if (cache != NULL && code == WANT_VALUE && tag != TAG_CHARACTER_SET && value_pos + (int64_t)length <= n) {
                found = remembered(cache, values, tag, vr, charset, buf + value_pos, length);
                if (found < 0) { Py_DECREF(hits); goto done; }
            }
            if (!found && add_hit(hits, tag, vr, value_pos, length) < 0) { Py_DECREF(hits); goto done; }
        }
        if (length == UNDEFINED) {
            int64_t next = value_pos;
            int status = skip_undefined(buf, n, &next, explicit_vr);
            if (status < 0) { Py_DECREF(hits); PyErr_NoMemory(); goto done; }
            if (status) { out = result(status, pos, hits, -1, -1); goto done; }
            pos = next;
            continue;
        }
        pos = value_pos + (int64_t)length;
        if (pos > file_size) { out = result(TRUNCATED, pos, hits, -1, -1); goto done; }
    }
done:
    Py_XDECREF(charset);
    PyBuffer_Release(&view);
    return out;
}

static PyMethodDef methods[] = {
    {"table", table, METH_O, "table({tag: code}) -> the wanted tags for walk()"},
    {"walk", walk, METH_VARARGS,
     "walk(buf, pos, explicit, table, file_size[, cache, values]) -> (status, pos, hits, pixel_pos, pixel_length)\n\n"
     "The top-level elements of a little-endian dataset from ``pos``, as fastheader._parse walks them."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_walk", "The element walk of the fast header reader, compiled.",
                                    -1, methods};

PyMODINIT_FUNC PyInit__walk(void) { return PyModule_Create(&module); }
