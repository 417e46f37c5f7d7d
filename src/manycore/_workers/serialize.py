"""Shipping work to other processes: cloudpickle, plus shared memory for big arrays.

* Functions, lambdas and closures are pickled with cloudpickle, so anything
  defined interactively or inside a function can run in a worker process.
  So is anything plain pickle would send as a reference into ``__main__``
  when ``__main__`` has no file (a REPL, a notebook, ``python -c``,
  ``python - < script.py``): a worker that was not forked (forkserver,
  spawn) could not find it.  When
  cloudpickle cannot take it, the reference is sent (it works in a forked
  worker).
* Buffers (NumPy arrays, ...) of at least :data:`SHARED_MEMORY_MIN_BYTES` are
  not copied through the pipe: pickle protocol 5 hands them out of band, the
  parent copies them once into a ``multiprocessing.shared_memory`` segment and
  the worker maps that segment (copy-on-write, so a task that mutates its
  input behaves as with pickling).
  The parent releases every segment of a task when the task is done, failed,
  timed out or its worker died (:func:`release`).
"""

from __future__ import annotations

import io
import mmap
import os
import pickle
from multiprocessing import shared_memory
from typing import Any, cast

import cloudpickle

from ._start import main_script

#: Arrays at least this large go through shared memory instead of the pipe.
SHARED_MEMORY_MIN_BYTES = 1 << 20

_DEV_SHM = "/dev/shm"


def dumps(obj: Any) -> bytes:
    """``obj`` as bytes: the C pickler when it can, cloudpickle (lambdas, closures) otherwise."""
    try:
        data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        return cast(bytes, cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))
    if _refers_to_fileless_main(data):
        try:
            return cast(bytes, cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))
        except Exception:
            pass
    return data


# Plain pickle refers to functions and classes of ``__main__`` by name; cloudpickle
# sends them by value.  A stray match (the string in the data) only costs a
# cloudpickle pass.
_MAIN = b"__main__"


def _refers_to_fileless_main(data: bytes) -> bool:
    # the cheap test first: with a file-backed __main__ no payload is scanned
    return main_script() is None and _MAIN in data


def loads(data: bytes | memoryview) -> Any:
    return pickle.loads(data)


def dumps_sharing_views(obj: Any) -> tuple[bytes, tuple[memoryview, ...]]:
    """``obj`` for a subinterpreter: :func:`dumps`, ``__main__`` by value, memoryviews left out.

    Whatever ``obj`` takes from ``__main__`` goes by value even when
    ``__main__`` is a file: a subinterpreter's ``__main__`` is not the
    caller's script, so a reference by name would not resolve there.

    A memoryview does not pickle (cloudpickle would copy it into ``bytes``); a
    subinterpreter can be handed one that shares the memory instead.  Each is
    pickled as an index into the returned tuple (a persistent id) and comes
    back through the subinterpreter's driver (``executors/_interp_driver.py``).
    """
    try:
        data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        return _views_apart(obj)  # lambdas, closures, memoryviews
    if _MAIN not in data:
        return data, ()
    try:
        return _views_apart(obj)
    except Exception:
        return data, ()


def _views_apart(obj: Any) -> tuple[bytes, tuple[memoryview, ...]]:
    views: list[memoryview] = []
    out = io.BytesIO()
    _ViewsApart(out, views).dump(obj)
    return out.getvalue(), tuple(views)


class _ViewsApart(cloudpickle.Pickler):  # type: ignore[misc]
    def __init__(self, file: io.BytesIO, views: list[memoryview]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._views = views

    def persistent_id(self, obj: Any) -> int | None:
        if type(obj) is memoryview:
            self._views.append(obj)
            return len(self._views) - 1
        return None


Segment = tuple[str, int]  # (shared memory name, bytes)


def dumps_shared(obj: Any, segments: list[shared_memory.SharedMemory]) -> tuple[bytes, list[Segment]]:
    """Pickle ``obj`` with buffers of >= SHARED_MEMORY_MIN_BYTES moved to shared memory.

    Pickle protocol 5 hands every contiguous buffer (NumPy arrays, bytes-like
    objects supporting it) to a callback: small ones stay in the stream, big
    ones are copied once into a new segment (appended to ``segments``, which
    the caller releases) and sent out of band.  No Python code runs per
    object, so plain data pickles at C speed.
    """
    created = len(segments)
    try:
        data, meta = _pickled_shared(pickle.dumps, obj, segments)
    except Exception:
        return _pickled_shared(cloudpickle.dumps, obj, segments)
    if not _refers_to_fileless_main(data):
        return data, meta
    plain_end = len(segments)
    try:
        by_value = _pickled_shared(cloudpickle.dumps, obj, segments)
    except Exception:
        return data, meta  # the reference: works in a forked worker
    release(segments[created:plain_end])
    del segments[created:plain_end]
    return by_value


def _pickled_shared(
    pickler: Any, obj: Any, segments: list[shared_memory.SharedMemory]
) -> tuple[bytes, list[Segment]]:
    created = len(segments)
    meta: list[Segment] = []
    try:
        data = pickler(obj, protocol=5, buffer_callback=_mover(segments, meta))
    except Exception:
        extra = segments[created:]
        del segments[created:]
        release(extra)
        raise
    return cast(bytes, data), meta


def _mover(segments: list[shared_memory.SharedMemory], meta: list[Segment]) -> Any:
    def move(buffer: pickle.PickleBuffer) -> bool:
        raw = buffer.raw()
        if raw.nbytes < SHARED_MEMORY_MIN_BYTES:
            return True  # in band
        shm = shared_memory.SharedMemory(create=True, size=raw.nbytes)
        segments.append(shm)
        view = cast(memoryview, shm.buf)
        view[: raw.nbytes] = raw
        meta.append((shm.name, raw.nbytes))
        return False

    return move


def loads_shared(data: bytes, meta: list[Segment]) -> Any:
    """Worker side of :func:`dumps_shared`: buffers map the segments copy-on-write."""
    return pickle.loads(data, buffers=[_map_segment(name, size) for name, size in meta])


def release(segments: list[shared_memory.SharedMemory]) -> None:
    """Close and unlink the segments created by :func:`dumps` (idempotent)."""
    while segments:
        shm = segments.pop()
        try:
            shm.close()
        except BufferError:  # pragma: no cover - a view escaped; the unlink still frees it
            pass
        try:
            shm.unlink()
        except FileNotFoundError:
            pass


_attached: list[Any] = []  # fallback path: keep SharedMemory objects alive in the worker


def _map_segment(name: str, size: int) -> memoryview:
    path = os.path.join(_DEV_SHM, name.lstrip("/"))
    if os.path.exists(path):
        # Map the segment directly: no resource-tracker registration in the
        # worker (which would unlink or warn about the parent's segment).
        # ACCESS_COPY: a task that writes to its input changes only its copy.
        with open(path, "rb") as f:
            mapped = mmap.mmap(f.fileno(), size, access=mmap.ACCESS_COPY)
        return memoryview(mapped)
    shm = shared_memory.SharedMemory(name=name)  # pragma: no cover - platforms without /dev/shm
    _attached.append(shm)
    return cast(memoryview, shm.buf)[:size]
