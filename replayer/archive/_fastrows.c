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

static PyMethodDef methods[] = {
    {"configure", configure, METH_VARARGS,
     "configure(record_type, field_names, directions, frame_types, flags)"},
    {"frame_from_row", frame_from_row, METH_O,
     "The FrameRecord of a well-formed frame row, else None."},
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
