/*
 * _serial.c -- pmap's serial path as one C-level iterator (manycore._map._serial).
 *
 * Its own small extension, apart from the kernels (manycore._native): the map
 * layer needs no native runtime.  A CPython API module only: no manycore C
 * core, no threads.  Multi-phase init, the iterator type in the module state.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* Critical sections (3.13+) lock an object on free-threaded builds and are
 * empty blocks on GIL builds; before 3.13 the GIL alone serialises. */
#ifndef Py_BEGIN_CRITICAL_SECTION
#  define Py_BEGIN_CRITICAL_SECTION(op) {
#  define Py_END_CRITICAL_SECTION() }
#endif

typedef struct {
    PyTypeObject *serial_map_type;
} serial_state;

/* The iterator pmap hands to the consumer when a map runs serially over a
 * list, tuple or range: `map(fn, items)` with each item's input position, and
 * a Python callback for an Exception raised by fn.  on_error(index, exc)
 * either raises (errors="raise": pmap's note names the item) or returns what
 * stands in the item's place (errors="collect": a TaskError).  Results go
 * straight from fn to the consumer: nothing is collected or copied here. */
typedef struct {
    PyObject_HEAD
    PyObject *fn;
    PyObject *it;
    PyObject *on_error;
    Py_ssize_t index;     /* input position of the next item */
} SerialMapObject;

static PyObject *SerialMap_next(SerialMapObject *self)
{
    /* Free-threaded builds: two threads may pull from one iterator while a
     * third closes it.  The input is read and its position taken under the
     * object's critical section (each item gets its own index, close() cannot
     * free the input under a reader); fn runs outside it. */
    PyObject *item = NULL;
    Py_ssize_t index = 0;
    Py_BEGIN_CRITICAL_SECTION(self);
    if (self->it != NULL) {
        item = Py_TYPE(self->it)->tp_iternext(self->it);
        if (item != NULL)
            index = self->index++;
    }
    Py_END_CRITICAL_SECTION();
    if (item == NULL)
        return NULL;   /* the end, closed, or the input's own error */
    PyObject *result = PyObject_CallOneArg(self->fn, item);
    Py_DECREF(item);
    if (result != NULL || !PyErr_ExceptionMatches(PyExc_Exception))
        return result;   /* KeyboardInterrupt, SystemExit & co. go through as they are */
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL)
        PyException_SetTraceback(value, tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    if (value == NULL)   /* cannot happen after a normalised fetch; be safe */
        return NULL;
    result = PyObject_CallFunction(self->on_error, "nO", index, value);
    Py_DECREF(value);
    return result;
}

static PyObject *SerialMap_length_hint(SerialMapObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *it;
    Py_BEGIN_CRITICAL_SECTION(self);
    it = Py_XNewRef(self->it);
    Py_END_CRITICAL_SECTION();
    Py_ssize_t n = it == NULL ? 0 : PyObject_LengthHint(it, -1);
    Py_XDECREF(it);
    if (n < 0) {
        if (PyErr_Occurred())
            return NULL;
        Py_RETURN_NOTIMPLEMENTED;   /* unknown: length_hint() falls back to its default */
    }
    return PyLong_FromSsize_t(n);
}

static int SerialMap_traverse(SerialMapObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->fn);
    Py_VISIT(self->it);
    Py_VISIT(self->on_error);
    return 0;
}

static int SerialMap_clear(SerialMapObject *self)
{
    Py_CLEAR(self->fn);
    Py_CLEAR(self->it);
    Py_CLEAR(self->on_error);
    return 0;
}

static void SerialMap_dealloc(SerialMapObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    SerialMap_clear(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyObject *SerialMap_close(SerialMapObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *it;
    Py_BEGIN_CRITICAL_SECTION(self);
    it = self->it;   /* next() ends from now on */
    self->it = NULL;
    Py_END_CRITICAL_SECTION();
    Py_XDECREF(it);   /* outside: dropping the input may run arbitrary code */
    Py_RETURN_NONE;
}

static PyMethodDef SerialMap_methods[] = {
    {"__length_hint__", (PyCFunction)SerialMap_length_hint, METH_NOARGS, "Items left (from the input)."},
    {"close", (PyCFunction)SerialMap_close, METH_NOARGS, "Stop: no further item is computed."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot SerialMap_slots[] = {
    {Py_tp_iter, PyObject_SelfIter},
    {Py_tp_iternext, SerialMap_next},
    {Py_tp_traverse, SerialMap_traverse},
    {Py_tp_clear, SerialMap_clear},
    {Py_tp_dealloc, SerialMap_dealloc},
    {Py_tp_methods, SerialMap_methods},
    {Py_tp_doc, "Iterator of serial_map(fn, iterable, start, on_error)."},
    {0, NULL},
};

static PyType_Spec SerialMap_spec = {
    .name = "manycore._map._serial.SerialMap",
    .basicsize = sizeof(SerialMapObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_HAVE_GC |
             Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = SerialMap_slots,
};

static PyObject *serial_map(PyObject *module, PyObject *args)
{
    PyObject *fn, *iterable, *on_error;
    Py_ssize_t start;
    if (!PyArg_ParseTuple(args, "OOnO:serial_map", &fn, &iterable, &start, &on_error))
        return NULL;
    if (!PyCallable_Check(fn)) {
        PyErr_Format(PyExc_TypeError, "fn must be callable, not %.100s", Py_TYPE(fn)->tp_name);
        return NULL;
    }
    if (!PyCallable_Check(on_error)) {
        PyErr_Format(PyExc_TypeError, "on_error must be callable, not %.100s", Py_TYPE(on_error)->tp_name);
        return NULL;
    }
    if (start < 0) {
        PyErr_SetString(PyExc_ValueError, "start must be >= 0");
        return NULL;
    }
    PyObject *it = PyObject_GetIter(iterable);
    if (it == NULL)
        return NULL;
    serial_state *st = (serial_state *)PyModule_GetState(module);
    SerialMapObject *self = PyObject_GC_New(SerialMapObject, st->serial_map_type);
    if (self == NULL) {
        Py_DECREF(it);
        return NULL;
    }
    /* (PyObject_GC_New takes the reference to the heap type that
     * SerialMap_dealloc releases) */
    self->fn = Py_NewRef(fn);
    self->it = it;
    self->on_error = Py_NewRef(on_error);
    self->index = start;
    PyObject_GC_Track(self);
    return (PyObject *)self;
}

static PyMethodDef serial_methods[] = {
    {"serial_map", serial_map, METH_VARARGS,
     "serial_map(fn, iterable, start, on_error) -> iterator of fn(item); "
     "on_error(index, exc) raises or replaces a failed item"},
    {NULL, NULL, 0, NULL},
};

static int serial_exec(PyObject *m)
{
    serial_state *st = (serial_state *)PyModule_GetState(m);
    st->serial_map_type = (PyTypeObject *)PyType_FromModuleAndSpec(m, &SerialMap_spec, NULL);
    return st->serial_map_type == NULL ? -1 : 0;
}

static int serial_traverse(PyObject *m, visitproc visit, void *arg)
{
    serial_state *st = (serial_state *)PyModule_GetState(m);
    Py_VISIT(st->serial_map_type);
    return 0;
}

static int serial_clear(PyObject *m)
{
    serial_state *st = (serial_state *)PyModule_GetState(m);
    Py_CLEAR(st->serial_map_type);
    return 0;
}

static void serial_free(void *m)
{
    serial_clear((PyObject *)m);
}

static PyModuleDef_Slot serial_slots[] = {
    {Py_mod_exec, serial_exec},
#if PY_VERSION_HEX >= 0x030C0000
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
#if PY_VERSION_HEX >= 0x030D0000
    /* Module state is immutable after exec; the iterator locks itself. */
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef serial_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "manycore._map._serial",
    .m_doc = "pmap's serial map: one C-level iterator over a list, tuple or range (see manycore._map.run).",
    .m_size = sizeof(serial_state),
    .m_methods = serial_methods,
    .m_slots = serial_slots,
    .m_traverse = serial_traverse,
    .m_clear = serial_clear,
    .m_free = serial_free,
};

PyMODINIT_FUNC PyInit__serial(void)
{
    return PyModuleDef_Init(&serial_module);
}
