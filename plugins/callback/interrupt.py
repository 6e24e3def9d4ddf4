# -*- coding: utf-8 -*-
# Copyright: llmfleet maintainers
# Apache License 2.0 (see LICENSE)
"""Callback plugin: a Ctrl-C (SIGINT) that ansible-core loses is honoured at the playbook's next step.

Why: ansible-core (2.19 here) stops a playbook on SIGINT by raising KeyboardInterrupt from its signal
handler (TaskQueueManager._signal_handler), which first resets SIGINT to its default action. CPython
runs a signal handler at the next point the main thread executes Python code. When that point is
inside a function Python calls for itself and whose exceptions it reports as "Exception ignored in"
and drops - an os.register_at_fork() callback (logging's _releaseLock runs after every fork, and the
controller forks a worker per task and host), a __del__ or a weakref callback - the
KeyboardInterrupt is dropped. The handler has already signalled the workers that were running, but
the worker being forked is not among them, and the playbook goes on as if nobody had pressed
Ctrl-C; it ends with rc 0 when no worker was running. Found in CI: tests/integration/
test_rolling_update.py interrupts a rolling update, and the update carried on through every zone.
tests/unit/plugins/callback/test_interrupt.py loses a SIGINT that way on purpose, in a real
ansible-playbook, with and without this callback.

This callback wraps the SIGINT handler ansible-core installed: it notes the signal, then calls
ansible-core's handler as before. If the playbook is still running at its next step (a play, a task
or a handler starting, a host's task starting or its result coming back), the interrupt was lost, and
the callback raises the KeyboardInterrupt there, in the main thread, where ansible-core handles it as
its own: workers are stopped, "User interrupted execution", exit code 99. A second Ctrl-C ends the
process at once, as it does without this callback (ansible-core's handler set the default action).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: interrupt
type: aggregate
short_description: Stop the playbook on a Ctrl-C that ansible-core lost
description:
  - ansible-core stops a playbook on SIGINT (Ctrl-C) by raising C(KeyboardInterrupt) from its signal handler.
    Python drops that exception when the handler runs inside a callback that Python calls for itself, such as
    the ones run after each C(fork()) of a worker, and the playbook then carries on as if nobody had pressed
    Ctrl-C.
  - This callback notes every SIGINT that reaches ansible-core's handler. If the playbook is still running at
    its next step (a play, task or handler starting, a host's task starting or its result coming back), the
    interrupt was lost, and the callback raises it there, where ansible-core stops as on any Ctrl-C
    (C(User interrupted execution), exit code 99).
  - Enable it where rolling updates run (C(playbooks/rolling_update.yml)), so that an operator who stops an
    update stops it; the update leaves the zone it was in drained and a rerun puts it back.
requirements:
  - Enable in configuration, C(callbacks_enabled = llmfleet.cluster.interrupt) in the C([defaults]) section of
    C(ansible.cfg), or C(ANSIBLE_CALLBACKS_ENABLED=llmfleet.cluster.interrupt).
notes:
  - It changes nothing on a playbook that is not interrupted, and prints nothing.
  - Only SIGINT is concerned; ansible-core handles SIGTERM without raising an exception.
"""

import signal
import threading

from ansible.plugins.callback import CallbackBase


class InterruptGuard:
    """Wraps the process's SIGINT handler; check() raises a KeyboardInterrupt that the handler's own was lost.

    getsignal/setsignal and is_main_thread are injected so that tests run it without touching the test
    process's signals."""

    def __init__(self, getsignal=signal.getsignal, setsignal=signal.signal,
                 is_main_thread=lambda: threading.current_thread() is threading.main_thread()):
        self._getsignal = getsignal
        self._setsignal = setsignal
        self._is_main_thread = is_main_thread
        self._handler = None
        self.pending = False

    def install(self):
        """Wrap the current SIGINT handler if it is a Python function (ansible-core's); a default or ignored
        SIGINT is left as it is. Returns whether it wrapped."""
        current = self._getsignal(signal.SIGINT)
        if not callable(current) or current == self._on_signal:
            return False
        self._handler = current
        self._setsignal(signal.SIGINT, self._on_signal)
        return True

    def _on_signal(self, signum, frame):
        # Noted before ansible-core's handler runs: its KeyboardInterrupt may be dropped on the way out.
        self.pending = True
        self._handler(signum, frame)

    def check(self):
        """Raise the lost KeyboardInterrupt, once. Only in the main thread: callbacks for results that workers
        send are run by ansible-core's results thread, which must not die of it."""
        if self.pending and self._is_main_thread():
            self.pending = False
            raise KeyboardInterrupt()


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "llmfleet.cluster.interrupt"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super(CallbackModule, self).__init__(*args, **kwargs)
        self._guard = InterruptGuard()

    def v2_playbook_on_start(self, playbook):
        # ansible-core installed its handler with its TaskQueueManager, before any callback is loaded.
        self._guard.install()

    def v2_playbook_on_play_start(self, play):
        self._guard.check()

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._guard.check()

    def v2_playbook_on_handler_task_start(self, task):
        self._guard.check()

    def v2_runner_on_start(self, host, task):
        self._guard.check()

    def v2_runner_on_ok(self, result):
        self._guard.check()

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._guard.check()

    def v2_runner_on_skipped(self, result):
        self._guard.check()

    def v2_runner_on_unreachable(self, result):
        self._guard.check()
