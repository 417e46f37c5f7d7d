"""The one table that turns native status codes into Python exceptions.

Every binding of the C core (the CPython extension, ctypes, cffi, Cython)
reports failures as an integer code plus context and calls :func:`raise_status`
or :func:`raise_argument`, so the same failure raises the same exception type
with the same message whichever way the core was reached.

Codes below zero are the C core's ``MC_E*`` status codes (``csrc/manycore.h``);
codes from 100 up are argument problems (``enum mc_arg_code``): the C core's
``mc_check_args`` finds them for every binding alike (a buffer that is not
contiguous, an unsupported element format, ...); only "not a buffer at all"
is found by the binding itself.
"""

from __future__ import annotations

import errno
import os
from typing import NoReturn

# C core status codes (keep in sync with enum mc_status in csrc/manycore.h).
OK = 0
EINVAL = -1
ENOMEM = -2
ETHREAD = -3
ECANCELED = -4
EOVERFLOW = -5
ESTALE = -6
EDTYPE = -7

# Argument problems (keep in sync with enum mc_arg_code in csrc/manycore.h).
ARG_NOT_BUFFER = 100
ARG_NOT_CONTIGUOUS = 101
ARG_FORMAT = 102
ARG_READONLY = 103
ARG_LENGTH = 104
ARG_MISALIGNED = 105
ARG_FORMAT_MISMATCH = 106
ARG_NDIM = 107
ARG_EMPTY = 108
ARG_OVERLAP = 109
ARG_TOO_BIG = 110

SUPPORTED_FORMATS = "b B h H i I l L q Q f d"

_STATUS: dict[int, tuple[type[BaseException], str]] = {
    EINVAL: (ValueError, "{context}: invalid argument"),
    ENOMEM: (MemoryError, "{context}: out of memory"),
    ECANCELED: (KeyboardInterrupt, "{context}: cancelled"),
    EOVERFLOW: (OverflowError, "{context}: result does not fit its type"),
    ESTALE: (
        RuntimeError,
        "{context}: this pool was created before fork(); its threads do not exist "
        "in this process (create a new Pool in the child)",
    ),
    EDTYPE: (TypeError, "{context}: element type not supported by this kernel"),
}

_ARGUMENT: dict[int, tuple[type[BaseException], str]] = {
    ARG_NOT_BUFFER: (
        TypeError,
        "{arg} must support the buffer protocol (bytes, bytearray, array.array, "
        "memoryview, numpy.ndarray), not {detail}",
    ),
    ARG_NOT_CONTIGUOUS: (
        ValueError,
        "{arg} must be C-contiguous (row-major, in one block of memory); got a non-contiguous buffer "
        "(a Fortran-ordered array or a strided view): pass a C-ordered copy, e.g. numpy.ascontiguousarray()",
    ),
    # detail: the format, quoted, then what the argument accepts (format_detail() or the C core's)
    ARG_FORMAT: (TypeError, "{arg} has unsupported element format {detail}"),
    ARG_READONLY: (ValueError, "{arg} is read-only; an output buffer must be writable"),
    ARG_LENGTH: (ValueError, "{arg} has the wrong length: {detail}"),
    ARG_MISALIGNED: (ValueError, "{arg} is not aligned to its item size ({detail} bytes)"),
    ARG_FORMAT_MISMATCH: (TypeError, "{arg}: element formats differ ({detail})"),
    ARG_NDIM: (ValueError, "{arg} has the wrong shape: {detail}"),
    ARG_EMPTY: (ValueError, "{arg} is empty: {detail}"),
    ARG_OVERLAP: (ValueError, "{arg} must not share memory with the inputs: {detail}"),
    ARG_TOO_BIG: (OverflowError, "{detail}"),
}


def format_detail(fmt: str) -> str:
    """The detail of ``ARG_FORMAT`` for a buffer any kernel could take (as the C core words it)."""
    return f"{fmt!r}; supported formats: {SUPPORTED_FORMATS}"


def status_exception(status: int, context: str, os_error: int = 0) -> BaseException:
    """Build (not raise) the exception for C status ``status`` in ``context``."""
    if status == ETHREAD:
        code = os_error or errno.EAGAIN
        return OSError(code, f"{context}: could not create an OS thread: {os.strerror(code)}")
    exc_type, template = _STATUS.get(status, (RuntimeError, "{context}: unknown native status {status}"))
    return exc_type(template.format(context=context, status=status))


def raise_status(status: int, context: str, os_error: int = 0) -> NoReturn:
    """Raise the exception for C status ``status``; ``context`` names the call."""
    raise status_exception(status, context, os_error)


def argument_exception(code: int, arg: str, detail: object = "") -> BaseException:
    exc_type, template = _ARGUMENT[code]
    return exc_type(template.format(arg=arg, detail=detail))


def raise_argument(code: int, arg: str, detail: object = "") -> NoReturn:
    """Raise the exception for argument problem ``code`` on argument ``arg``."""
    raise argument_exception(code, arg, detail)
