"""Worker processes on this machine (executors.py's `processes`, `--jobs N`): each worker holds one task at a time,
so a worker that dies (SIGKILL, the out-of-memory killer) fails only the task it held, with the cause; the other
workers finish theirs, and a fresh worker takes the next task.

    pool = WorkerPool(run_one, workers=2, context=ctx, initializer=ignore_ctrl_c)
    handles = pool.submit(tasks)    # each: done(), and result(): run_one(task)'s value, or its error raised here
    pool.close()                    # or pool.stop(): kill the workers now (Ctrl-C)

concurrent.futures.ProcessPoolExecutor cannot do this: one dead worker breaks the whole pool (BrokenProcessPool),
terminating the healthy workers and failing their tasks with it, and it cannot tell which task killed its worker.
"""

from __future__ import annotations

import signal
import traceback
from collections import deque
from collections.abc import Callable
from multiprocessing.connection import wait

from ..core.errors import InvlabError, clip

WAIT_S = 0.2  # how long result() waits for any worker before looking again


class WorkerDied(InvlabError):
    """A worker process that died while it held a task (killed, out of memory): the task's cause, not its error."""


class _RemoteTraceback(Exception):
    """A task's traceback in its worker, kept as its error's cause (`invlab --debug` shows it)."""

    def __str__(self) -> str:
        return str(self.args[0])


def _serve(conn, fn: Callable, initializer: Callable | None) -> None:
    """A worker's loop: a task in, (ok, value or error, traceback) out, until told to stop or the pool is gone."""
    if initializer is not None:
        initializer()
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):  # the run's own process is gone
            return
        if task is None:
            return
        try:
            outcome = (True, fn(task), None)
        except BaseException as e:  # the task's own error (a worker's Ctrl-C included) goes back to the run
            outcome = (False, e, traceback.format_exc())
        try:
            conn.send(outcome)
        except (EOFError, OSError):
            return
        except Exception as e:  # a value or an error that cannot be pickled: say what it was
            conn.send((False, RuntimeError(f"{type(e).__name__}: {clip(e, 300)}"), outcome[2]))


class Handle:
    """One task's outcome, future-like: done() and result()."""

    def __init__(self, pool: WorkerPool, task):
        self.task, self._pool = task, pool
        self._done, self._value, self._error = False, None, None

    def _set(self, value=None, error: BaseException | None = None) -> None:
        self._done, self._value, self._error = True, value, error

    def done(self) -> bool:
        if not self._done:
            self._pool.poll()
        return self._done

    def result(self):
        while not self._done:
            self._pool.poll(WAIT_S)
        if self._error is not None:
            raise self._error
        return self._value


class _Worker:
    def __init__(self, pool: WorkerPool):
        self.conn, child = pool.context.Pipe()
        self.process = pool.context.Process(target=_serve, args=(child, pool.fn, pool.initializer))
        pool.everyone.append(self)  # before it starts: stop() must find it whenever Ctrl-C comes
        self.process.start()
        child.close()  # the worker's end lives in the worker alone: its death reads as the end of the pipe here

    def death(self) -> str:
        """Why the worker is gone, as far as can be known: the signal that killed it, or its exit code."""
        self.process.join(5)  # reaped (its exit code known) a moment after its pipe closed
        code, pid = self.process.exitcode, self.process.pid
        if code is not None and code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = "unknown signal"
            why = ": the out-of-memory killer sends it, as does kill -9" if -code == signal.SIGKILL else ""
            return f"its worker process (pid {pid}) died: killed by signal {-code} ({name}{why})"
        return f"its worker process (pid {pid}) died: it exited{'' if code is None else f' with code {code}'} " \
               "before finishing"


class WorkerPool:
    """At most `workers` processes from `context`, each running fn(task) for one task at a time."""

    def __init__(self, fn: Callable, workers: int, context, initializer: Callable | None = None):
        self.fn, self.size, self.context, self.initializer = fn, max(1, workers), context, initializer
        self.everyone: list[_Worker] = []
        self.idle: list[_Worker] = []
        self.busy: dict[_Worker, Handle] = {}
        self.queue: deque[Handle] = deque()

    def submit(self, tasks: list) -> list[Handle]:
        handles = [Handle(self, t) for t in tasks]
        self.queue.extend(handles)
        self.poll()
        return handles

    def poll(self, timeout: float = 0.0) -> None:
        """Collect what finished (or died), then hand queued tasks to free workers; wait up to `timeout` for one."""
        if timeout and self.busy:
            wait([w.conn for w in self.busy] + [w.process.sentinel for w in self.busy], timeout)
        for worker in list(self.busy):
            self._collect(worker)
        while self.queue and len(self.busy) < self.size:
            worker = self.idle.pop() if self.idle else _Worker(self)
            if not worker.process.is_alive():  # died while idle: it held no task
                self._retire(worker)
                continue
            handle = self.queue.popleft()
            try:
                worker.conn.send(handle.task)
            except (EOFError, OSError):  # died just now, before it took the task: another worker takes it
                self.queue.appendleft(handle)
                self._retire(worker)
                continue
            except Exception as e:  # a task that cannot be pickled
                handle._set(error=e)
                self.idle.append(worker)
                continue
            self.busy[worker] = handle

    def _collect(self, worker: _Worker) -> None:
        handle = self.busy[worker]
        if worker.conn.poll():  # an outcome, or the end of the pipe: a dead worker
            try:
                ok, value, remote = worker.conn.recv()
            except (EOFError, OSError):
                pass
            except Exception as e:  # an outcome that cannot be unpickled here
                handle._set(error=RuntimeError(f"the worker's outcome could not be read: {type(e).__name__}: "
                                               f"{clip(e, 300)}"))
                self._free(worker)
                return
            else:
                if not ok and remote:
                    value.__cause__ = _RemoteTraceback(remote)
                if ok:
                    handle._set(value=value)
                else:
                    handle._set(error=value)
                self._free(worker)
                return
        elif worker.process.is_alive():
            return
        del self.busy[worker]
        handle._set(error=WorkerDied(worker.death()))
        self._retire(worker)

    def _free(self, worker: _Worker) -> None:
        del self.busy[worker]
        self.idle.append(worker)

    def _retire(self, worker: _Worker) -> None:
        worker.conn.close()
        if worker in self.idle:
            self.idle.remove(worker)
        self.everyone.remove(worker)

    def stop(self) -> None:
        """Kill every worker now (Ctrl-C): SIGKILL, since a worker takes SIGTERM as the end of its task only."""
        for worker in self.everyone:
            try:
                worker.process.kill()
            except (AttributeError, OSError, ValueError):  # not started yet, or already closed
                pass
        for worker in self.everyone:
            try:
                worker.process.join(5)
            except (AssertionError, ValueError):
                pass
        self.queue.clear()

    def close(self) -> None:
        """Let each worker finish its task and stop."""
        for worker in self.everyone:
            try:
                worker.conn.send(None)
            except (EOFError, OSError):
                pass
        for worker in self.everyone:
            worker.process.join()
            worker.conn.close()
        self.everyone.clear()
        self.idle.clear()
