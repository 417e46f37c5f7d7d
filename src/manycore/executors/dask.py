"""DaskExecutor: the executor contract on a ``dask.distributed`` cluster (``manycore[dask]``).

``DaskExecutor(address)`` connects a ``distributed.Client`` to a running
scheduler (``"tcp://host:8786"``); the cluster is not the executor's and is
left running on shutdown.  ``DaskExecutor()`` starts a
``distributed.LocalCluster`` on 127.0.0.1 with worker *processes* and no
dashboard, owned by the executor and closed (workers and nannies terminated)
on shutdown; ``max_workers`` is its number of single-threaded worker
processes, and ``cluster_options`` go to ``LocalCluster`` (``n_workers``,
``threads_per_worker``, ``memory_limit``, ... -- they override the defaults).

Scheduling is Dask's: every ``submit`` is one ``Client.submit`` task with a
unique key (``pure=False``: two submits of the same call run twice, as with
any executor), and ``map`` is ``Executor.map`` over ``submit`` (results in
input order, ``timeout`` from the call, remaining tasks cancelled when the
iterator is closed or raises; ``chunksize`` is ignored).  Each Dask future is
bridged to a real :class:`concurrent.futures.Future` through Dask's
``add_done_callback``; the executor keeps the Dask future referenced until it
settles (Dask forgets tasks whose futures are dropped).  A task's exception
arrives with its type and arguments (it must pickle, as with
``ProcessPoolExecutor``), its remote frames as its ``__traceback__`` and the
formatted remote traceback as ``__cause__`` (a :class:`RemoteTraceback`).
Keyword arguments are bound with ``functools.partial`` so that names such as
``key`` or ``workers`` reach ``fn``, not ``Client.submit``.

Why not Dask's own ``Client.get_executor()`` (``ClientExecutor``): it does
return ``concurrent.futures`` futures, but its ``shutdown(wait=False)``
cancels running tasks, it has no ``cancel_futures``, its ``submit`` hides the
Dask key that tells a started task from a queued one, and it hands ``fn``'s
keyword arguments to ``Client.submit``.  The bridge below is the same idea
(public ``Client.submit`` + ``Future.add_done_callback``) with the contract's
shutdown semantics.

Differences from a local pool, all forced by the client/scheduler split
    * The client does not learn when a task starts on a worker: a future goes
      from pending to finished, ``future.running()`` is never true, and
      ``future.cancel()`` succeeds until the task finishes.  Cancelling a task
      that is already executing releases it on the scheduler and discards its
      result; the worker thread runs the call to its end (Dask cannot
      interrupt it).
    * ``shutdown(cancel_futures=True)`` asks the workers which of the
      executor's tasks are executing at that moment (``Client.run``) and
      cancels all the others -- the "not started" ones.  A task that starts in
      the few milliseconds between that answer and the cancellation is
      cancelled as above.  If the workers cannot be asked, every unfinished
      task is cancelled.

``shutdown(wait=True, *, cancel_futures=False)``
    Idempotent; ``submit`` raises ``RuntimeError`` afterwards.  ``wait=True``
    waits for every task that was not cancelled, then closes the client and,
    if the executor started it, the ``LocalCluster``.  ``wait=False`` returns
    at once and a background thread (``manycore-dask-shutdown``) does the same
    waiting and closing; tasks keep running meanwhile (unlike Dask's own
    ``ClientExecutor``, which cancels them).  Future done-callbacks run in
    Dask's single callback thread, which settles every future: a callback
    must not block on another of the executor's futures, and ``shutdown``
    called from one behaves like ``wait=False``.

Interpreter exit
    When the main thread ends, every executor still open, or still closing
    after ``shutdown(wait=False)``, finishes its tasks and closes, as the
    stdlib's pools do (Dask settles futures through a thread pool that stops
    taking work at interpreter shutdown, so this has to happen first).
    ``submit`` from an ``atexit`` handler then raises ``RuntimeError``.

Errors from ``Client.submit`` itself (an argument or ``fn`` that cannot be
serialized) fail the returned future, as with ``ProcessPoolExecutor``; Dask
also logs them.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import functools
import importlib
import importlib.util
import os
import threading
import traceback
import uuid
import weakref
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from .. import _build
from ..errors import attach_traceback
from ._contract import ManycoreExecutor, MapPlan, check_max_workers, register_exit_hook

__all__ = ["DaskExecutor"]

P = ParamSpec("P")
R = TypeVar("R")

INSTALL_HINT = "pip install 'manycore[dask]'"

_callback_thread = threading.local()  # .active in Dask's callback thread, which settles our futures


def _import_distributed() -> Any:
    try:
        return importlib.import_module("distributed")
    except ImportError as exc:
        raise ImportError(f"DaskExecutor needs dask.distributed: {INSTALL_HINT} ({exc})") from exc


def _task_name(fn: Callable[..., Any]) -> str:
    target = fn.func if isinstance(fn, functools.partial) else fn
    name = getattr(target, "__name__", None) or type(target).__name__
    return "".join(c if c.isalnum() or c in "_." else "_" for c in name) or "task"


class _Task:
    """One submitted call: its Dask future and the concurrent.futures.Future it drives."""

    __slots__ = ("cf_future", "dask_future", "key", "settled")

    def __init__(self, key: str, dask_future: Any, cf_future: cf.Future[Any]) -> None:
        self.key = key
        self.dask_future = dask_future
        self.cf_future = cf_future
        self.settled = False  # the cf future got its outcome (and waiters were notified)


class DaskExecutor(ManycoreExecutor):
    """Run calls on a Dask cluster; see the module documentation for the semantics."""

    backend_name = "dask"

    def __init__(
        self,
        address: str | None = None,
        *,
        max_workers: int | None = None,
        client_options: dict[str, Any] | None = None,
        **cluster_options: Any,
    ) -> None:
        workers = check_max_workers(max_workers, 0) if max_workers is not None else None
        if address is not None and (workers is not None or cluster_options):
            raise TypeError(
                "max_workers and cluster options apply to the LocalCluster DaskExecutor() starts, "
                "not to a cluster given by address"
            )
        distributed = _import_distributed()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._tasks: dict[str, _Task] = {}
        self._shutdown = False
        self._closer: threading.Thread | None = None
        self._cluster: Any = None
        options = {"set_as_default": False, **(client_options or {})}
        if address is None:
            settings: dict[str, Any] = {
                "host": "127.0.0.1",
                "processes": True,
                "dashboard_address": None,
            }
            if workers is not None:
                settings.update(n_workers=workers, threads_per_worker=1)
            settings.update(cluster_options)
            # Without a dashboard the scheduler still serves /health and
            # /metrics over HTTP, by default on port 8787 (falling back with a
            # warning when another cluster has it): use a free localhost port.
            settings["scheduler_kwargs"] = {
                "dashboard": False,
                "dashboard_address": "127.0.0.1:0",
                **(cluster_options.get("scheduler_kwargs") or {}),
            }
            with _profiler_settings():
                self._cluster = distributed.LocalCluster(**settings)
            try:
                self._client = distributed.Client(self._cluster, **options)
            except BaseException:
                self._cluster.close()
                raise
        else:
            self._client = distributed.Client(address, **options)
        try:
            self._max_workers: int = max(1, sum(self._client.nthreads().values()))
        except BaseException:
            self._close_client_and_cluster()
            raise
        self._pid = os.getpid()
        _live_executors.add(self)

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """``None`` if ``dask.distributed`` can be imported, else why not (and what to install)."""
        if importlib.util.find_spec("distributed") is None:
            return f"dask.distributed is not installed: {INSTALL_HINT}"
        return None

    @property
    def max_workers(self) -> int:
        """Worker threads in the cluster when the executor connected."""
        return self._max_workers

    def map_plan(self) -> MapPlan:
        """pmap's batches are sized for the cluster as it is when the map starts.

        Workers may still be joining when the executor connects (or come and
        go with an adaptive cluster): the scheduler is asked for the thread
        count at each map; if it cannot answer, the count at connect time.
        """
        try:
            workers = max(1, sum(self._client.nthreads().values()))
        except Exception:
            workers = self._max_workers
        return MapPlan(workers=workers)

    @property
    def client(self) -> Any:
        """The ``distributed.Client`` the executor submits through."""
        return self._client

    @property
    def cluster(self) -> Any:
        """The ``LocalCluster`` the executor started, or ``None`` when it was given an address."""
        return self._cluster

    # ------------------------------------------------------------ submit
    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> cf.Future[R]:
        """Schedule ``fn(*args, **kwargs)`` as one Dask task."""
        if not callable(fn):
            raise TypeError(f"fn must be callable, not {type(fn).__name__}")
        call: Callable[..., Any] = functools.partial(fn, **kwargs) if kwargs else fn
        key = f"{_task_name(fn)}-{uuid.uuid4().hex}"
        cf_future: cf.Future[R] = cf.Future()
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            try:
                dask_future = self._client.submit(call, *args, key=key, pure=False)
            except Exception as exc:
                if self._client.status in ("closing", "closed"):
                    raise RuntimeError("cannot schedule new futures: the Dask client is closed") from exc
                # e.g. an argument that cannot be pickled: like ProcessPoolExecutor,
                # the future fails (with the serializer's exception), not submit
                exc.add_note(f"Dask could not schedule {_task_name(fn)}")
                cf_future.set_exception(exc)
                return cf_future
            task = _Task(key, dask_future, cf_future)
            self._tasks[key] = task
        cf_future.add_done_callback(functools.partial(self._on_cf_done, task))
        dask_future.add_done_callback(functools.partial(self._on_dask_done, task))
        return cf_future

    def _claim(self, task: _Task) -> bool:
        """Make the caller the one that settles ``task`` (exactly once)."""
        with self._lock:
            if task.settled:
                return False
            task.settled = True
            return True

    def _forget(self, task: _Task) -> None:
        with self._lock:
            self._tasks.pop(task.key, None)
            if not self._tasks:
                self._idle.notify_all()

    def _on_cf_done(self, task: _Task, future: cf.Future[Any]) -> None:
        # Runs in the thread that finished or cancelled the cf future.
        if not future.cancelled() or not self._claim(task):
            return
        future.set_running_or_notify_cancel()  # wake wait()/as_completed()
        try:
            task.dask_future.cancel()
        except Exception:  # the client is closing: the task goes with it
            pass
        self._forget(task)

    def _on_dask_done(self, task: _Task, dask_future: Any) -> None:
        # Runs in Dask's (single, process-wide) callback thread.
        _callback_thread.active = True
        if not self._claim(task):
            return
        future = task.cf_future
        try:
            status = dask_future.status
            if status == "finished":
                try:
                    result = dask_future.result()
                except BaseException as exc:  # e.g. the result did not unpickle
                    self._set(future, exc)
                else:
                    self._set(future, None, result)
            elif status == "cancelled":
                future.cancel()
                future.set_running_or_notify_cancel()
            else:
                error: BaseException | None = dask_future.exception()
                tb = dask_future.traceback()
                if error is None:
                    error = RuntimeError(f"Dask task {task.key} ended with status {status!r}")
                elif tb is not None:
                    error = error.with_traceback(tb)
                    attach_traceback(error, "".join(traceback.format_exception(type(error), error, tb)))
                self._set(future, error)
        except BaseException as exc:  # the client went away while asking
            self._set(future, exc)
        finally:
            task.dask_future = None
            self._forget(task)

    @staticmethod
    def _set(future: cf.Future[Any], exc: BaseException | None, result: Any = None) -> None:
        try:
            if exc is not None:
                future.set_exception(exc)
            else:
                future.set_result(result)
        except cf.InvalidStateError:  # cancelled meanwhile by its owner
            pass

    # ------------------------------------------------------------ shutdown
    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting work; see the module documentation for the exact semantics."""
        with self._lock:
            first = not self._shutdown
            self._shutdown = True
            unfinished = [t for t in self._tasks.values() if not t.settled] if cancel_futures else []
        if unfinished:
            self._cancel_not_started(unfinished)
        if getattr(_callback_thread, "active", False):
            # Called from a done-callback: waiting here would block the very
            # thread that settles the other futures.
            wait = False
        if first:
            if wait:
                self._drain_and_close()
                return
            self._closer = threading.Thread(target=self._drain_and_close, name="manycore-dask-shutdown")
            self._closer.start()
        elif wait and self._closer is not None and self._closer is not threading.current_thread():
            self._closer.join()

    def _cancel_not_started(self, tasks: list[_Task]) -> None:
        executing = self._executing_keys()
        cancelled: list[_Task] = []
        for task in tasks:
            if task.key in executing or not self._claim(task):
                continue
            if task.cf_future.cancel():
                task.cf_future.set_running_or_notify_cancel()  # wake wait()/as_completed()
            cancelled.append(task)
        # One message for all of them (future.cancel() would be a round trip each).
        try:
            self._client.cancel([t.dask_future for t in cancelled if t.dask_future is not None])
        except Exception:  # the client is closing: the tasks go with it
            pass
        for task in cancelled:
            self._forget(task)

    def _executing_keys(self) -> set[str]:
        def executing(dask_worker: Any) -> list[str]:  # nested: pickled by value, no manycore on workers
            return [
                str(ts.key)
                for ts in list(dask_worker.state.tasks.values())
                if ts.state in ("executing", "long-running")
            ]

        try:
            per_worker = self._client.run(executing)
        except Exception:
            return set()
        return {key for keys in per_worker.values() for key in keys}

    def _drain_and_close(self) -> None:
        with self._idle:
            self._idle.wait_for(lambda: not self._tasks)
        self._close_client_and_cluster()

    def _close_client_and_cluster(self) -> None:
        try:
            self._client.close()
        finally:
            if self._cluster is not None:
                self._cluster.close()


_live_executors: weakref.WeakSet[DaskExecutor] = weakref.WeakSet()


def _profiler_settings() -> Any:
    """Dask config for the cluster a DaskExecutor starts.

    Dask's statistical profiler samples other threads' Python frames from a
    thread of its own (``sys._current_frames()``).  On a free-threaded build
    with the GIL off that reads frames while their threads run them, and the
    scheduler process segfaults (seen on 3.13t in distributed's
    ``profile.identifier``).  There it is switched off, for the scheduler in
    this process and for the workers, which get the config from their nannies.
    """
    import dask

    if _build.gil_enabled():
        return contextlib.nullcontext()
    return dask.config.set({"distributed.worker.profile.enabled": False})


def _finish_at_exit() -> None:
    # Dask settles futures through a thread pool that refuses work once the
    # interpreter shuts down: finish before that, as the stdlib's pools do
    # (an executor still open at exit completes its work, then closes).
    for executor in list(_live_executors):
        if executor._pid != os.getpid():
            continue  # a forked child's copy: the client and cluster are the parent's
        try:
            executor.shutdown(wait=True)
        except Exception:  # pragma: no cover - a cluster already gone
            pass


register_exit_hook(_finish_at_exit)
if hasattr(os, "register_at_fork"):
    # A forked child (a process pool's worker, say) does not own the parent's executors.
    os.register_at_fork(after_in_child=_live_executors.clear)
