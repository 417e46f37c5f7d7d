/*
 * threadmodule.c -- the unit's "Proposing a System: Integrating POSIX Threads into Python via
 * a C Extension", corrected. Shipped for reading (see threadmodule_start_threads.py); it is not
 * compiled when you run the example. The prebuilt, production version of the same idea is
 * manycore.native.start_threads (csrc/threads.c + src/manycore/_native.c): n POSIX threads
 * that really compute, each pthread_create checked, all joined with the GIL released.
 *
 * Build it yourself, if you like (this file is a complete extension module):
 *     cc -shared -fPIC -pthread $(python3-config --includes) threadmodule.c \
 *        -o threadmodule$(python3-config --extension-suffix)
 *     python3 -c "import threadmodule; print(threadmodule.start_threads(5))"
 *
 * Corrections (docs/seed-errata.md, E16):
 *   - As printed, the text does not compile: a stray `}` closes start_threads before the
 *     pthread_join loop and `Py_RETURN_NONE`, which end up at file scope.
 *   - `pthread_t threads[n]` is a variable-length array on the C stack sized by an unchecked
 *     Python argument: n <= 0 is undefined behaviour and a large n overflows the stack (a
 *     segfault, e.g. start_threads(10**7)). n is checked here and the arrays are heap-allocated.
 *   - pthread_create's return code was ignored; joining a thread that was never created is
 *     undefined behaviour. Here a failure stops creation, joins the threads already started
 *     and raises OSError.
 *   - The GIL was held while joining, so every other Python thread stopped for as long as the
 *     C threads ran (the text even says to use Py_BEGIN_ALLOW_THREADS, then does not).
 *   - The threads printf()ed. C's stdout buffer is not Python's sys.stdout: the two are
 *     flushed independently, so when output goes to a pipe or a file the C lines and Python's
 *     lines come out in an order that has nothing to do with when they were printed (and the
 *     threads' lines interleave in any order among themselves). Here each thread writes its
 *     message into its own slot and Python prints them, in thread order.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>

#define MAX_THREADS 1024

typedef struct {
    int id;
    char message[64];
} thread_slot;

/* Runs without the GIL: touches only its own slot, never a Python object. */
static void *thread_function(void *arg)
{
    thread_slot *slot = (thread_slot *)arg;
    snprintf(slot->message, sizeof slot->message, "Thread %d is executing", slot->id);
    return NULL;
}

static PyObject *start_threads(PyObject *self, PyObject *args)
{
    (void)self;
    int n;
    if (!PyArg_ParseTuple(args, "i", &n)) {
        return NULL;
    }
    if (n < 1 || n > MAX_THREADS) {
        PyErr_Format(PyExc_ValueError, "n must be between 1 and %d, got %d", MAX_THREADS, n);
        return NULL;
    }
    pthread_t *threads = PyMem_Calloc((size_t)n, sizeof *threads);
    thread_slot *slots = PyMem_Calloc((size_t)n, sizeof *slots);
    PyObject *result = NULL;
    if (threads == NULL || slots == NULL) {
        PyErr_NoMemory();
        goto done;
    }

    int created = 0;
    int error = 0;
    Py_BEGIN_ALLOW_THREADS
    for (; created < n; created++) {
        slots[created].id = created + 1;
        error = pthread_create(&threads[created], NULL, thread_function, &slots[created]);
        if (error != 0) {
            break;
        }
    }
    for (int i = 0; i < created; i++) {
        pthread_join(threads[i], NULL);
    }
    Py_END_ALLOW_THREADS

    if (error != 0) {
        errno = error;  /* pthread functions return the error number instead of setting errno */
        PyErr_SetFromErrno(PyExc_OSError);
        goto done;
    }
    result = PyList_New(n);
    if (result == NULL) {
        goto done;
    }
    for (int i = 0; i < n; i++) {
        PyObject *line = PyUnicode_FromString(slots[i].message);
        if (line == NULL) {
            Py_CLEAR(result);
            goto done;
        }
        PyList_SET_ITEM(result, i, line);
    }
done:
    PyMem_Free(threads);
    PyMem_Free(slots);
    return result;
}

static PyMethodDef ThreadMethods[] = {
    {"start_threads", start_threads, METH_VARARGS,
     "start_threads(n) -> list of n messages: run n POSIX threads, join them all."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef threadmodule = {
    PyModuleDef_HEAD_INIT,
    "threadmodule",
    "The unit's POSIX-thread extension, corrected.",
    -1,
    ThreadMethods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC PyInit_threadmodule(void)
{
    return PyModule_Create(&threadmodule);
}
