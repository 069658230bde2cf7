/* Optional accelerator of the archive reader's hot path: frame rows -> FrameRecord.
 *
 * frame_from_row(row) builds the FrameRecord of a well-formed v1 frame row, doing what
 * replayer.archive.records.frame_from_row does in Python: the same exact-type checks
 * (int, not bool; bytes; str; None), the same ranges, the same enum members. It returns
 * None for anything else (other record kinds, any doubtful field), and the Python code
 * then takes its own path, which names the field at fault. In CPython, validating and
 * building a record cost about as much as msgpack's unpacking of it; here, a tenth.
 *
 * configure() is called once at import with the FrameRecord class (a slotted dataclass),
 * its field names in row order, and the int -> member maps of Direction, FrameType and
 * FrameFlag. The record is allocated with tp_alloc and its slots filled by their offsets,
 * as the dataclass's __init__ would (it has no __post_init__): configure() refuses any
 * class whose fields are not plain object slots.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define FIELDS 11   /* FrameRecord's fields: row[1:] */
#define ROW_LEN 12  /* kind + FIELDS */
#define FRAME_KIND 2

static PyTypeObject *record_type = NULL;
static Py_ssize_t offsets[FIELDS];
static PyObject *directions = NULL; /* dict: int -> Direction */
static PyObject *frame_types = NULL; /* dict: int -> FrameType */
static PyObject *frame_flags = NULL; /* dict: int -> FrameFlag */

static PyObject *
configure(PyObject *module, PyObject *args)
{
    PyObject *cls, *names, *dirs, *types, *flags;
    if (!PyArg_ParseTuple(args, "O!O!O!O!O!", &PyType_Type, &cls, &PyTuple_Type, &names,
                          &PyDict_Type, &dirs, &PyDict_Type, &types, &PyDict_Type, &flags)) {
        return NULL;
    }
    if (PyTuple_GET_SIZE(names) != FIELDS) {
        PyErr_Format(PyExc_ValueError, "expected %d field names", FIELDS);
        return NULL;
    }
    Py_ssize_t found[FIELDS];
    for (Py_ssize_t i = 0; i < FIELDS; i++) {
        PyObject *descr = PyObject_GetAttr(cls, PyTuple_GET_ITEM(names, i));
        if (descr == NULL) {
            return NULL;
        }
        if (!Py_IS_TYPE(descr, &PyMemberDescr_Type)) {
            Py_DECREF(descr);
            PyErr_SetString(PyExc_TypeError, "a field is not a __slots__ member");
            return NULL;
        }
        PyMemberDef *member = ((PyMemberDescrObject *)descr)->d_member;
        int ok = member->type == Py_T_OBJECT_EX && !(member->flags & Py_READONLY);
        found[i] = member->offset;
        Py_DECREF(descr);
        if (!ok) {
            PyErr_SetString(PyExc_TypeError, "a field is not a writable object slot");
            return NULL;
        }
    }
    memcpy(offsets, found, sizeof offsets);
    Py_INCREF(cls);
    Py_XSETREF(record_type, (PyTypeObject *)cls);
    Py_INCREF(dirs);
    Py_XSETREF(directions, dirs);
    Py_INCREF(types);
    Py_XSETREF(frame_types, types);
    Py_INCREF(flags);
    Py_XSETREF(frame_flags, flags);
    Py_RETURN_NONE;
}

/* An int (not a bool) >= 0. */
static inline int
is_uint(PyObject *v)
{
    if (!PyLong_CheckExact(v)) {
        return 0;
    }
    int overflow;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (x == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    return overflow > 0 || (overflow == 0 && x >= 0);
}

/* The member for an int (not a bool) key, borrowed; NULL if none. */
static inline PyObject *
member(PyObject *map, PyObject *v)
{
    if (!PyLong_CheckExact(v)) {
        return NULL;
    }
    PyObject *m = PyDict_GetItemWithError(map, v);
    if (m == NULL) {
        PyErr_Clear();
    }
    return m;
}

static PyObject *
frame_from_row(PyObject *module, PyObject *row)
{
    if (record_type == NULL || !PyList_CheckExact(row) || PyList_GET_SIZE(row) != ROW_LEN) {
        Py_RETURN_NONE;
    }
    PyObject **item = ((PyListObject *)row)->ob_item;
    PyObject *kind = item[0];
    if (!PyLong_CheckExact(kind) || PyLong_AsLong(kind) != FRAME_KIND) {
        if (PyErr_Occurred()) {
            PyErr_Clear();
        }
        Py_RETURN_NONE;
    }
    PyObject *values[FIELDS];
    for (int i = 0; i < FIELDS; i++) {
        values[i] = item[i + 1];
    }
    /* values: conn_id t_ns direction frame_type payload op s t wire_size flags error */
    PyObject *direction = member(directions, values[2]);
    PyObject *frame_type = member(frame_types, values[3]);
    PyObject *flags = member(frame_flags, values[9]);
    if (direction == NULL || frame_type == NULL || flags == NULL
        || !is_uint(values[0]) || !is_uint(values[1]) || !is_uint(values[8])
        || !PyBytes_CheckExact(values[4])
        || !(values[5] == Py_None || PyLong_CheckExact(values[5]))
        || !(values[6] == Py_None || PyLong_CheckExact(values[6]))
        || !(values[7] == Py_None || PyUnicode_CheckExact(values[7]))
        || !(values[10] == Py_None || PyUnicode_CheckExact(values[10]))) {
        Py_RETURN_NONE;
    }
    values[2] = direction;
    values[3] = frame_type;
    values[9] = flags;
    PyObject *record = record_type->tp_alloc(record_type, 0);
    if (record == NULL) {
        return NULL;
    }
    for (int i = 0; i < FIELDS; i++) {
        *(PyObject **)((char *)record + offsets[i]) = Py_NewRef(values[i]);
    }
    return record;
}

/* ---- scan(): runs of plain frame rows, read straight from the file's bytes ----------
 *
 * scan(buf, start, base, check_json) reads consecutive *plain* frame rows from buf[start:]
 * without building a Python object per row: fixarray(12), kind 2 as a fixint, conn_id,
 * t_ns and wire_size uints (< 2^63), direction 0/1, frame_type 1/2 and flags 0-15 as
 * fixints, payload a bin, op an int, s an int or nil, t a UTF-8 str or nil, error nil.
 * The first row that is anything else (another kind, another encoding of the same
 * values, a doubtful field) ends the run, and so does the end of buf: the caller reads
 * that record with msgpack, which accepts and rejects what it always does. So a run
 * holds only rows the reader would have turned into the same FrameRecords.
 *
 * It returns (n, stop, incomplete, columns) where n rows were read, stop is the index in
 * buf after the last, incomplete says whether the row at stop ran past the end of buf,
 * and columns is a tuple of bytes: int64 columns (record offset, conn_id, t_ns, op, s,
 * payload offset, payload length, wire_size; offsets are base + index in buf; a nil s
 * is INT64_MIN), uint8 columns (direction, frame_type, flags, json, dispatch), and a
 * list of t (str or None, interned). dispatch[i] is 1 for a server dispatch (direction 1,
 * op 0, a t) that is neither UNDECODED nor INJECTED (flags 1, 2): what a replay sends. json[i] is 1 when check_json is set and the payload is a JSON
 * object that Python's json module decodes to a map whose "op", "s" and "t" are the row's
 * (see json_check()); 0 means "not known": the caller decodes it itself.
 */
#define MAX_PAYLOAD ((uint64_t)256 << 20) /* reader.MAX_RECORD_BYTES */
#define NIL_S INT64_MIN
#define JSON_MAX_DEPTH 256

static PyObject *t_interned = NULL; /* dict: str -> the same str */
#define T_INTERNED_MAX 4096 /* then it starts again: memory stays bounded */
#define T_RECENT 16
static PyObject *recent_t[T_RECENT]; /* borrowed from t_interned: ASCII names seen last */
static int recent_next = 0;

typedef struct {
    const unsigned char *p, *end;
} cursor;

/* 1 ok, 0 not plain, -1 ran out of bytes */
static inline int
get_uint(cursor *c, uint64_t *out)
{
    if (c->p >= c->end) return -1;
    unsigned char b = *c->p;
    size_t need;
    if (b <= 0x7f) { *out = b; c->p++; return 1; }
    switch (b) {
    case 0xcc: need = 1; break;
    case 0xcd: need = 2; break;
    case 0xce: need = 4; break;
    case 0xcf: need = 8; break;
    default: return 0;
    }
    if ((size_t)(c->end - c->p) < need + 1) return -1;
    uint64_t v = 0;
    for (size_t i = 1; i <= need; i++) v = (v << 8) | c->p[i];
    if (v > (uint64_t)INT64_MAX) return 0;
    *out = v;
    c->p += need + 1;
    return 1;
}

/* any msgpack int that fits int64; 1 ok, 0 not plain, -1 out of bytes */
static inline int
get_int(cursor *c, int64_t *out)
{
    if (c->p >= c->end) return -1;
    unsigned char b = *c->p;
    if (b >= 0xe0) { *out = (int8_t)b; c->p++; return 1; }
    size_t need;
    switch (b) {
    case 0xd0: need = 1; break;
    case 0xd1: need = 2; break;
    case 0xd2: need = 4; break;
    case 0xd3: need = 8; break;
    default: {
        uint64_t u;
        int r = get_uint(c, &u);
        if (r == 1) *out = (int64_t)u;
        return r;
    }
    }
    if ((size_t)(c->end - c->p) < need + 1) return -1;
    uint64_t v = 0;
    for (size_t i = 1; i <= need; i++) v = (v << 8) | c->p[i];
    int64_t x;
    switch (need) {
    case 1: x = (int8_t)v; break;
    case 2: x = (int16_t)v; break;
    case 4: x = (int32_t)v; break;
    default: x = (int64_t)v; break;
    }
    *out = x;
    c->p += need + 1;
    return 1;
}

/* a length-prefixed bin (is_str 0) or str (1); 1 ok, 0 not plain, -1 out of bytes */
static inline int
get_blob(cursor *c, int is_str, const unsigned char **data, uint64_t *len)
{
    if (c->p >= c->end) return -1;
    unsigned char b = *c->p;
    size_t need;
    uint64_t n = 0;
    if (is_str && b >= 0xa0 && b <= 0xbf) {
        need = 0;
        n = b & 0x1f;
    } else if (b == (is_str ? 0xd9 : 0xc4)) {
        need = 1;
    } else if (b == (is_str ? 0xda : 0xc5)) {
        need = 2;
    } else if (b == (is_str ? 0xdb : 0xc6)) {
        need = 4;
    } else {
        return 0;
    }
    if ((size_t)(c->end - c->p) < need + 1) return -1;
    for (size_t i = 1; i <= need; i++) n = (n << 8) | c->p[i];
    if (n > MAX_PAYLOAD) return 0;
    if ((uint64_t)(c->end - c->p) < need + 1 + n) return -1;
    *data = c->p + need + 1;
    *len = n;
    c->p += need + 1 + n;
    return 1;
}

/* ---- json_check(): what Python's json module would make of a payload, when sure ----
 * A strict validator of JSON text in UTF-8: it says yes only to text that
 * bytes.decode("utf-8") and json.loads() accept, that is an object, and whose top-level
 * "op" is an integer (int64), "s" an integer or null or absent, "t" a string without
 * escapes or null or absent (the last of duplicate keys wins, as in a dict). It says "not
 * sure" (0) to everything else -- NaN/Infinity, keys or t with escapes, deep nesting,
 * huge numbers, a BOM -- and Python then decides. */

typedef struct {
    const unsigned char *p, *end;
    int depth;
} jcur;

#define JDIGIT(c) ((unsigned)((c) - '0') < 10u) /* JSON's digits: ASCII, whatever the locale */

static inline void
jws(jcur *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\r' || *j->p == '\t'))
        j->p++;
}

/* A JSON string at j->p (the opening quote); sets *escaped when it holds a backslash.
 * Strict UTF-8: no overlongs, no surrogates, nothing above U+10FFFF. */
static inline int
jstring(jcur *j, const unsigned char **start, size_t *len, int *escaped)
{
    const unsigned char *p = j->p + 1, *end = j->end;
    *escaped = 0;
    *start = p;
    for (;;) {
        /* eight bytes at a time while none is a quote, a backslash, a control or non-ASCII */
        while (end - p >= 8) {
            uint64_t w;
            memcpy(&w, p, 8);
            uint64_t quote = w ^ 0x2222222222222222ULL, slash = w ^ 0x5c5c5c5c5c5c5c5cULL;
            /* a byte's top bit: x - 0x01.. sets it where x had a zero byte, w - 0x20..
             * where w had a byte below 0x20 (borrows only add false alarms, which send
             * the bytes to the byte loop below), | w where w had a non-ASCII byte */
            uint64_t special = ((w - 0x2020202020202020ULL) | (quote - 0x0101010101010101ULL)
                                | (slash - 0x0101010101010101ULL) | w)
                               & 0x8080808080808080ULL;
            if (special) {
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
                /* borrows only run up, to later bytes: the lowest flag is a real one */
                p += __builtin_ctzll(special) >> 3;
#endif
                break;
            }
            p += 8;
        }
        while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\') p++;
        if (p >= end) return 0;
        unsigned char b = *p;
        if (b == '"') {
            *len = (size_t)(p - *start);
            j->p = p + 1;
            return 1;
        }
        if (b < 0x20) return 0;
        if (b == '\\') {
            *escaped = 1;
            if (p + 1 >= end) return 0;
            unsigned char e = p[1];
            if (e == 'u') {
                if (end - p < 6) return 0;
                for (int i = 2; i < 6; i++) {
                    if (!JDIGIT(p[i]) && (unsigned)((p[i] | 0x20) - 'a') >= 6u) return 0;
                }
                p += 6;
            } else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n'
                       || e == 'r' || e == 't') {
                p += 2;
            } else {
                return 0;
            }
            continue;
        }
        /* a UTF-8 sequence */
        if (b >= 0xc2 && b <= 0xdf) {
            if (end - p < 2 || (p[1] & 0xc0) != 0x80) return 0;
            p += 2;
        } else if (b >= 0xe0 && b <= 0xef) {
            if (end - p < 3 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80) return 0;
            if (b == 0xe0 && p[1] < 0xa0) return 0;  /* overlong */
            if (b == 0xed && p[1] >= 0xa0) return 0; /* surrogate */
            p += 3;
        } else if (b >= 0xf0 && b <= 0xf4) {
            if (end - p < 4 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80
                || (p[3] & 0xc0) != 0x80)
                return 0;
            if (b == 0xf0 && p[1] < 0x90) return 0; /* overlong */
            if (b == 0xf4 && p[1] >= 0x90) return 0; /* above U+10FFFF */
            p += 4;
        } else {
            return 0;
        }
    }
}

/* A number; *is_int and *value when it is an integer that fits int64. */
static inline int
jnumber(jcur *j, int *is_int, int64_t *value)
{
    const unsigned char *p = j->p, *end = j->end;
    int neg = 0;
    if (p < end && *p == '-') { neg = 1; p++; }
    if (p >= end || !JDIGIT(*p)) return 0; /* also -Infinity: not sure */
    const unsigned char *digits = p;
    if (*p == '0') {
        p++;
    } else {
        while (p < end && JDIGIT(*p)) p++;
    }
    size_t ndigits = (size_t)(p - digits);
    if (ndigits > 4000) return 0; /* near int_max_str_digits: Python decides */
    *is_int = 1;
    if (p < end && *p == '.') {
        *is_int = 0;
        p++;
        if (p >= end || !JDIGIT(*p)) return 0;
        while (p < end && JDIGIT(*p)) p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        *is_int = 0;
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (p >= end || !JDIGIT(*p)) return 0;
        while (p < end && JDIGIT(*p)) p++;
    }
    if (*is_int) {
        if (ndigits > 18) {
            *is_int = 0; /* valid, but not an int64 we compare */
        } else {
            int64_t v = 0;
            for (const unsigned char *q = digits; q < digits + ndigits; q++) v = v * 10 + (*q - '0');
            *value = neg ? -v : v;
        }
    }
    j->p = p;
    return 1;
}

static int jcontainer(jcur *j, int object);

static inline int
jliteral(jcur *j, const char *word, size_t n)
{
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0) return 0;
    j->p += n;
    return 1;
}

/* Any value; containers recurse through jcontainer(), the rest is inlined there. */
static inline int
jvalue(jcur *j)
{
    if (j->p >= j->end) return 0;
    const unsigned char *s;
    size_t n;
    int esc, is_int;
    int64_t v;
    switch (*j->p) {
    case '{': return jcontainer(j, 1);
    case '[': return jcontainer(j, 0);
    case '"': return jstring(j, &s, &n, &esc);
    case 't': return jliteral(j, "true", 4);
    case 'f': return jliteral(j, "false", 5);
    case 'n': return jliteral(j, "null", 4);
    default: return jnumber(j, &is_int, &v);
    }
}

static int
jcontainer(jcur *j, int object)
{
    if (++j->depth > JSON_MAX_DEPTH) return 0;
    j->p++;
    jws(j);
    unsigned char close = object ? '}' : ']';
    if (j->p < j->end && *j->p == close) {
        j->p++;
        j->depth--;
        return 1;
    }
    for (;;) {
        if (object) {
            const unsigned char *k;
            size_t klen;
            int esc;
            if (j->p >= j->end || *j->p != '"' || !jstring(j, &k, &klen, &esc)) return 0;
            jws(j);
            if (j->p >= j->end || *j->p != ':') return 0;
            j->p++;
            jws(j);
        }
        if (!jvalue(j)) return 0;
        jws(j);
        if (j->p >= j->end) return 0;
        if (*j->p == ',') {
            j->p++;
            jws(j);
            continue;
        }
        if (*j->p == close) {
            j->p++;
            j->depth--;
            return 1;
        }
        return 0;
    }
}

/* 1: the payload decodes to a map with these op, s (NIL_S: null or absent) and t
 * (t_len -1: null or absent); 0: not sure. */
static int
json_check(const unsigned char *data, size_t len, int64_t op, int64_t s,
           const unsigned char *t, Py_ssize_t t_len)
{
    jcur j = {data, data + len, 1};
    jws(&j);
    if (j.p >= j.end || *j.p != '{') return 0;
    j.p++;
    int have_op = 0;
    int64_t got_op = 0, got_s = NIL_S;
    const unsigned char *got_t = NULL;
    size_t got_t_len = 0;
    int t_set = 0; /* 1: t is a string (got_t) */
    jws(&j);
    if (j.p < j.end && *j.p == '}') {
        j.p++;
    } else {
        for (;;) {
            const unsigned char *k;
            size_t klen;
            int esc;
            if (j.p >= j.end || *j.p != '"' || !jstring(&j, &k, &klen, &esc) || esc) return 0;
            jws(&j);
            if (j.p >= j.end || *j.p != ':') return 0;
            j.p++;
            jws(&j);
            if (j.p >= j.end) return 0;
            int which = 0; /* 1 op, 2 s, 3 t */
            if (klen == 2 && k[0] == 'o' && k[1] == 'p') which = 1;
            else if (klen == 1 && k[0] == 's') which = 2;
            else if (klen == 1 && k[0] == 't') which = 3;
            if (which == 0) {
                if (!jvalue(&j)) return 0;
            } else if (*j.p == 'n') {
                if (!jliteral(&j, "null", 4)) return 0;
                if (which == 1) return 0; /* op null: Python says what is wrong */
                if (which == 2) got_s = NIL_S;
                else t_set = 0;
            } else if (which == 3) {
                if (*j.p != '"') return 0;
                if (!jstring(&j, &got_t, &got_t_len, &esc) || esc) return 0;
                t_set = 1;
            } else {
                int is_int = 0;
                int64_t v = 0;
                if (*j.p != '-' && !JDIGIT(*j.p)) return 0;
                if (!jnumber(&j, &is_int, &v) || !is_int) return 0;
                if (which == 1) { got_op = v; have_op = 1; }
                else {
                    if (v == NIL_S) return 0;
                    got_s = v;
                }
            }
            jws(&j);
            if (j.p >= j.end) return 0;
            if (*j.p == ',') { j.p++; jws(&j); continue; }
            if (*j.p == '}') { j.p++; break; }
            return 0;
        }
    }
    jws(&j);
    if (j.p != j.end || !have_op) return 0;
    if (got_op != op || got_s != s) return 0;
    if (t_len < 0) return !t_set;
    return t_set && (size_t)t_len == got_t_len && memcmp(t, got_t, got_t_len) == 0;
}

/* growable columns */
typedef struct {
    int64_t *i64[8];
    unsigned char *u8[5];
    Py_ssize_t n, cap;
} columns;

static int
columns_grow(columns *cols)
{
    Py_ssize_t cap = cols->cap ? cols->cap * 2 : 1024;
    for (int i = 0; i < 8; i++) {
        int64_t *p = PyMem_Realloc(cols->i64[i], (size_t)cap * sizeof(int64_t));
        if (p == NULL) return -1;
        cols->i64[i] = p;
    }
    for (int i = 0; i < 5; i++) {
        unsigned char *p = PyMem_Realloc(cols->u8[i], (size_t)cap);
        if (p == NULL) return -1;
        cols->u8[i] = p;
    }
    cols->cap = cap;
    return 0;
}

static void
columns_free(columns *cols)
{
    for (int i = 0; i < 8; i++) PyMem_Free(cols->i64[i]);
    for (int i = 0; i < 5; i++) PyMem_Free(cols->u8[i]);
}

static PyObject *
scan(PyObject *module, PyObject *args)
{
    Py_buffer view;
    Py_ssize_t start;
    long long base;
    int check_json;
    if (!PyArg_ParseTuple(args, "y*nLp", &view, &start, &base, &check_json)) {
        return NULL;
    }
    if (t_interned == NULL) {
        t_interned = PyDict_New();
        if (t_interned == NULL) {
            PyBuffer_Release(&view);
            return NULL;
        }
    }
    const unsigned char *buf = view.buf;
    Py_ssize_t size = view.len;
    if (start < 0 || start > size) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "start is outside the buffer");
        return NULL;
    }
    columns cols = {{NULL}, {NULL}, 0, 0};
    PyObject *ts = PyList_New(0);
    PyObject *result = NULL;
    if (ts == NULL) goto done;
    cursor c = {buf + start, buf + size};
    int incomplete = 0;
    for (;;) {
        const unsigned char *row = c.p;
        if (row >= c.end) { incomplete = 1; break; }
        if (*row != 0x9c) break;
        if (c.end - row < 2) { incomplete = 1; break; }
        if (row[1] != 0x02) break;
        c.p = row + 2;
        uint64_t conn, t_ns, wire, plen;
        int64_t op, s;
        const unsigned char *payload, *t = NULL;
        uint64_t t_len = 0;
        int has_t = 0;
        int r;
        unsigned char direction, frame_type, flags;
#define STEP(call) do { r = (call); if (r != 1) goto stopped; } while (0)
        STEP(get_uint(&c, &conn));
        STEP(get_uint(&c, &t_ns));
        if (c.p >= c.end) { r = -1; goto stopped; }
        direction = *c.p++;
        if (direction > 1) { r = 0; goto stopped; }
        if (c.p >= c.end) { r = -1; goto stopped; }
        frame_type = *c.p++;
        if (frame_type != 1 && frame_type != 2) { r = 0; goto stopped; }
        STEP(get_blob(&c, 0, &payload, &plen));
        STEP(get_int(&c, &op));
        if (c.p >= c.end) { r = -1; goto stopped; }
        if (*c.p == 0xc0) {
            s = NIL_S;
            c.p++;
        } else {
            STEP(get_int(&c, &s));
            if (s == NIL_S) { r = 0; goto stopped; }
        }
        if (c.p >= c.end) { r = -1; goto stopped; }
        if (*c.p == 0xc0) {
            c.p++;
        } else {
            STEP(get_blob(&c, 1, &t, &t_len));
            has_t = 1;
        }
        STEP(get_uint(&c, &wire));
        if (c.p >= c.end) { r = -1; goto stopped; }
        flags = *c.p++;
        if (flags > 15) { r = 0; goto stopped; }
        if (c.p >= c.end) { r = -1; goto stopped; }
        if (*c.p++ != 0xc0) { r = 0; goto stopped; }
#undef STEP
        /* the row is plain */
        PyObject *tobj = Py_None;
        if (has_t) {
            /* a few event names make most of a file: the recent ones, by their bytes */
            int hit = -1;
            for (int k = 0; k < T_RECENT; k++) {
                if (recent_t[k] != NULL && PyUnicode_GET_LENGTH(recent_t[k]) == (Py_ssize_t)t_len
                    && PyUnicode_IS_COMPACT_ASCII(recent_t[k])
                    && memcmp(PyUnicode_DATA(recent_t[k]), t, t_len) == 0) {
                    hit = k;
                    break;
                }
            }
            if (hit >= 0) {
                tobj = recent_t[hit];
            } else {
                PyObject *decoded = PyUnicode_DecodeUTF8((const char *)t, (Py_ssize_t)t_len, NULL);
                if (decoded == NULL) {
                    PyErr_Clear();
                    r = 0;
                    goto stopped;
                }
                if (PyDict_GET_SIZE(t_interned) >= T_INTERNED_MAX) {
                    /* a file of ever new names must not grow this without end */
                    memset(recent_t, 0, sizeof recent_t);
                    PyDict_Clear(t_interned);
                }
                tobj = PyDict_SetDefault(t_interned, decoded, decoded);
                Py_DECREF(decoded);
                if (tobj == NULL) goto done;
                recent_t[recent_next] = tobj; /* borrowed: t_interned holds it for good */
                recent_next = (recent_next + 1) % T_RECENT;
            }
        }
        if (cols.n == cols.cap && columns_grow(&cols) < 0) {
            PyErr_NoMemory();
            goto done;
        }
        if (PyList_Append(ts, tobj) < 0) goto done;
        Py_ssize_t i = cols.n++;
        cols.i64[0][i] = base + (row - buf);
        cols.i64[1][i] = (int64_t)conn;
        cols.i64[2][i] = (int64_t)t_ns;
        cols.i64[3][i] = op;
        cols.i64[4][i] = s;
        cols.i64[5][i] = base + (payload - buf);
        cols.i64[6][i] = (int64_t)plen;
        cols.i64[7][i] = (int64_t)wire;
        cols.u8[0][i] = direction;
        cols.u8[1][i] = frame_type;
        cols.u8[2][i] = flags;
        cols.u8[3][i] = check_json && !(flags & 1)
            && json_check(payload, (size_t)plen, op, s, t, has_t ? (Py_ssize_t)t_len : -1);
        cols.u8[4][i] = direction == 1 && op == 0 && has_t && !(flags & 3);
        continue;
    stopped:
        c.p = row;
        incomplete = r < 0;
        break;
    }
    PyObject *colt = PyTuple_New(14);
    if (colt == NULL) goto done;
    for (int k = 0; k < 8; k++) {
        PyObject *b = PyBytes_FromStringAndSize((const char *)cols.i64[k], cols.n * 8);
        if (b == NULL) { Py_DECREF(colt); goto done; }
        PyTuple_SET_ITEM(colt, k, b);
    }
    for (int k = 0; k < 5; k++) {
        PyObject *b = PyBytes_FromStringAndSize((const char *)cols.u8[k], cols.n);
        if (b == NULL) { Py_DECREF(colt); goto done; }
        PyTuple_SET_ITEM(colt, 8 + k, b);
    }
    PyTuple_SET_ITEM(colt, 13, Py_NewRef(ts));
    result = Py_BuildValue("nnON", cols.n, (Py_ssize_t)(c.p - buf), incomplete ? Py_True : Py_False, colt);
done:
    Py_XDECREF(ts);
    columns_free(&cols);
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef methods[] = {
    {"configure", configure, METH_VARARGS,
     "configure(record_type, field_names, directions, frame_types, flags)"},
    {"frame_from_row", frame_from_row, METH_O,
     "The FrameRecord of a well-formed frame row, else None."},
    {"scan", scan, METH_VARARGS,
     "scan(buf, start, base, check_json) -> (n, stop, incomplete, columns): plain frame rows."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "replayer.archive._fastrows",
    "Optional accelerator of the archive reader (see records.py).", -1, methods,
};

PyMODINIT_FUNC
PyInit__fastrows(void)
{
    return PyModule_Create(&module);
}
