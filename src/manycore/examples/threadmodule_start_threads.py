# Unit section: Proposing a System: Integrating POSIX Threads into Python via a C Extension
# Shows: the unit's `threadmodule.start_threads(5)`: five POSIX threads started from a C
#   extension and joined. It runs prebuilt, with no compiler: manycore.native.start_threads is the
#   production version (csrc/threads.c): each thread sums i*i over its share of range(work) with
#   the GIL released, every pthread_create is checked, all threads are joined, and each returns a
#   record (its OS thread id, CPU, items, start/end time, exact partial sum). The corrected
#   teaching-size extension ships next to this file, complete and compilable:
#   `manycore examples show threadmodule_start_threads --file threadmodule.c`.
# Corrected (docs/seed-errata.md, E16): the printed C does not compile (a stray brace ends
#   start_threads before its join loop); `pthread_t threads[n]` is a stack VLA sized by an
#   unchecked argument (n <= 0 undefined, large n overflows the stack); pthread_create's result is
#   ignored; the GIL is held while joining; printf from C threads bypasses sys.stdout.
from __future__ import annotations

import itertools
import sys

# The unit's threadmodule.c, verbatim (its four snippets joined in order).
UNIT_C_SOURCE = r"""#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

void* thread_function(void* arg) {
    int* num = (int*)arg;
    printf("Thread %d is executing\n", *num);
    return NULL;
}

static PyObject* start_threads(PyObject* self, PyObject* args) {
    int n;
    if (!PyArg_ParseTuple(args, "i", &n)) {
        return NULL;
    }
    pthread_t threads[n];
    int thread_ids[n];
    for (int i = 0; i < n; i++) {
        thread_ids[i] = i + 1;
        pthread_create(&threads[i], NULL, thread_function, (void*)&thread_ids[i]);
    }
}
}
for (int i = 0; i < n; i++) {
    pthread_join(threads[i], NULL);
}
Py_RETURN_NONE;
}

static PyMethodDef ThreadMethods[] = {
    {"start_threads", start_threads, METH_VARARGS, "Start POSIX threads"},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef threadmodule = {
    PyModuleDef_HEAD_INIT,
    "threadmodule",
    NULL,
    -1,
    ThreadMethods
};

PyMODINIT_FUNC PyInit_threadmodule(void) {
    return PyModule_Create(&threadmodule);
}
"""
# The same with the stray braces removed: what the text means. It compiles, and it has every
# other problem listed above.
UNIT_C_SOURCE_BRACES_FIXED = UNIT_C_SOURCE.replace(
    "    }\n}\n}\nfor (int i = 0; i < n; i++) {\n    pthread_join(threads[i], NULL);\n}\nPy_RETURN_NONE;\n}",
    "    }\n    for (int i = 0; i < n; i++) {\n        pthread_join(threads[i], NULL);\n    }\n    Py_RETURN_NONE;\n}",
)


def main(small: bool = False) -> None:
    from manycore import native

    work = 10_000_000 if small else 100_000_000
    records = native.start_threads(5, work=work)  # the unit: threadmodule.start_threads(5)
    for r in records:
        print(
            f"Thread {r.index + 1} is executing: OS thread {r.native_id}, cpu {r.cpu}, "
            f"{r.items} items, {r.start_s * 1e3:.2f}-{r.end_s * 1e3:.2f} ms"
        )
    total = sum(r.partial for r in records)
    exact = (work - 1) * work * (2 * work - 1) // 6
    print(f"sum of the threads' partials = {total}; exact sum of squares below {work} = {exact}")
    print("all threads joined, partials add up:", len(records) == 5 and total == exact)
    ordered = sorted(records, key=lambda r: r.start_s)
    overlapped = any(b.start_s < a.end_s for a, b in itertools.pairwise(ordered))
    print(
        "some threads ran at the same time:",
        "yes" if overlapped else "no (each share was done before the next thread started)",
    )


if __name__ == "__main__":
    main(small="--small" in sys.argv[1:])
