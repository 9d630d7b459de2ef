# -*- coding: utf-8 -*-
# Shipped with buildstate (`buildstate ansible callback-dir` writes it out).
#
# Maps plays to buildstate milestones and records them. It must never break or slow a
# playbook: every event goes to a local append-only spool first (JSON Lines), and the
# spool is handed to `buildstate ansible record` only at milestone boundaries (play
# start, play end, playbook end). When buildstate cannot be reached the plugin warns
# once, stops calling it, and the spool is replayed later (`buildstate ansible replay`).
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = '''
    name: buildstate
    type: notification
    short_description: records plays as buildstate milestones
    description:
      - "Maps plays to milestones of a buildstate build (the play variable buildstate_milestone,
        or a play name starting with the code, such as '25 security baseline') and records
        play starts, completions, failed tasks and unreachable hosts."
      - "Reads BUILDSTATE_BUILD (without it the plugin does nothing), BUILDSTATE_BIN and
        BUILDSTATE_ANSIBLE_SPOOL."
    requirements:
      - "enable in configuration (callbacks_enabled = buildstate)"
'''

import json
import os
import re
import subprocess
import time

from ansible.plugins.callback import CallbackBase

try:
    from ansible.playbook.block import Block
except Exception:  # pragma: no cover - only an unusual Ansible lacks it
    Block = None

# The spool keeps bounded text: it is a failure record, not a log.
TAIL_LINES = 20
TAIL_BYTES = 4096
MSG_BYTES = 4096
# `buildstate ansible record` normally takes milliseconds; a hung store must not hang
# the playbook.
RECORD_TIMEOUT = 15
LEADING_CODE = re.compile(r'^\s*(\d{1,3})(?!\d)')


def _tail(text):
    if not text:
        return ''
    if not isinstance(text, str):
        text = str(text)
    lines = text.splitlines()[-TAIL_LINES:]
    out = '\n'.join(lines)
    if len(out.encode('utf-8', 'replace')) > TAIL_BYTES:
        out = out.encode('utf-8', 'replace')[-TAIL_BYTES:].decode('utf-8', 'replace')
    return out


def _short(text):
    if text is None:
        return ''
    if not isinstance(text, str):
        try:
            text = json.dumps(text, default=str)
        except Exception:
            text = str(text)
    if len(text) > MSG_BYTES:
        text = text[:MSG_BYTES] + '...'
    return text


def _safe_name(ref):
    return re.sub(r'[^A-Za-z0-9._-]', '_', ref) or 'build'


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'notification'
    CALLBACK_NAME = 'buildstate'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super(CallbackModule, self).__init__(*args, **kwargs)
        self._warned = set()
        self._build = os.environ.get('BUILDSTATE_BUILD', '').strip()
        self._bin = os.environ.get('BUILDSTATE_BIN', '').strip() or 'buildstate'
        self._spool = os.environ.get('BUILDSTATE_ANSIBLE_SPOOL', '').strip() or self._default_spool()
        self._seq = None
        self._unavailable = False
        self._playbook = None
        # The play running now: its own milestone (or None) and the milestone it
        # belongs to (its own, or the one running before it).
        self._play = None

    # -- plumbing ------------------------------------------------------------------

    def _default_spool(self):
        if not self._build:
            return None
        base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
        return os.path.join(base, 'buildstate', 'ansible-spool', _safe_name(self._build) + '.jsonl')

    def _warn_once(self, key, text):
        if key in self._warned:
            return
        self._warned.add(key)
        try:
            self._display.warning(text)
        except Exception:
            pass

    def _active(self):
        if self._build:
            return True
        self._warn_once('no-build', 'buildstate callback: BUILDSTATE_BUILD is not set, so nothing is '
                        'recorded (run the playbook with `buildstate ansible-playbook REF -- ...`)')
        return False

    def _next_seq(self):
        if self._seq is None:
            # Continue after the last event already in the spool: the cursor of
            # `record` is a sequence number, so numbers never repeat in one file.
            self._seq = 0
            try:
                with open(self._spool, 'rb') as f:
                    for line in f:
                        try:
                            self._seq = max(self._seq, int(json.loads(line).get('seq', 0)))
                        except Exception:
                            continue
            except (IOError, OSError):
                pass
        self._seq += 1
        return self._seq

    def _emit(self, event, **fields):
        fields['event'] = event
        fields['seq'] = self._next_seq()
        fields['at'] = time.time()
        line = json.dumps(fields, default=str, sort_keys=True) + '\n'
        directory = os.path.dirname(self._spool)
        if directory and not os.path.isdir(directory):
            os.makedirs(directory)
        with open(self._spool, 'a') as f:
            f.write(line)

    def _record(self):
        if self._unavailable:
            return
        try:
            done = subprocess.run([self._bin, 'ansible', 'record', self._spool],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, timeout=RECORD_TIMEOUT)
            why = done.stderr.decode('utf-8', 'replace').strip()
            why = '\n'.join(line[len('error: '):] if line.startswith('error: ') else line
                            for line in why.splitlines())
            failed = done.returncode != 0
        except subprocess.TimeoutExpired:
            failed, why = True, 'no answer in %d s' % RECORD_TIMEOUT
        except OSError as e:
            failed, why = True, str(e)
        if failed:
            self._unavailable = True
            self._warn_once('unavailable', 'buildstate is unavailable (%s); events are kept in %s; run '
                            '`buildstate ansible replay %s`' % (why.splitlines()[0] if why else 'no reason given',
                                                                self._spool, self._spool))
        elif why:
            for line in why.splitlines():
                self._warn_once('record:' + line, 'buildstate: ' + line)

    def _guard(self, hook, body):
        # Never raise into Ansible: a bug here must not change the playbook's result.
        if not self._active():
            return
        try:
            body()
        except Exception as e:
            self._warn_once('error', 'buildstate callback: %s failed (%s: %s); recording may be incomplete'
                            % (hook, type(e).__name__, e))

    # -- mapping -------------------------------------------------------------------

    @staticmethod
    def _milestone_of(play):
        value = None
        try:
            value = play.get_vars().get('buildstate_milestone')
        except Exception:
            value = None
        if value is not None and str(value).strip().isdigit():
            return int(str(value).strip())
        m = LEADING_CODE.match(play.get_name() or '')
        return int(m.group(1)) if m else None

    @staticmethod
    def _rescued(task):
        # A failure in the `block:` part of a block that has a `rescue:` is rescued
        # (Ansible counts it as `rescued`, not `failures`). Tasks are copies by the time
        # a callback sees them, so sections are compared by uuid.
        child = task
        parent = getattr(task, '_parent', None)
        while parent is not None:
            if Block is not None and isinstance(parent, Block) and parent.rescue:
                ids = [getattr(t, '_uuid', None) for t in (parent.block or [])]
                if getattr(child, '_uuid', None) in ids:
                    return True
            child = parent
            parent = getattr(parent, '_parent', None)
        return False

    def _end_play(self, next_milestone, last):
        p = self._play
        if p is None:
            return
        self._play = None
        self._emit('play_end', milestone=p['belongs'], play=p['name'], playbook=self._playbook,
                   failed_hosts=sorted(p['failed']), unreachable_hosts=sorted(p['unreachable']),
                   last_of_milestone=last or (next_milestone is not None and next_milestone != p['belongs']),
                   last=last)

    # -- hooks ---------------------------------------------------------------------

    def v2_playbook_on_start(self, playbook):
        def body():
            self._playbook = getattr(playbook, '_file_name', None)
            self._emit('playbook_start', build=self._build, playbook=self._playbook)
        self._guard('playbook start', body)

    def v2_playbook_on_play_start(self, play):
        def body():
            own = self._milestone_of(play)
            belongs = own if own is not None else (self._play['belongs'] if self._play else None)
            self._end_play(own, False)
            self._play = {'name': play.get_name(), 'belongs': belongs, 'failed': set(), 'unreachable': set()}
            self._emit('play_start', milestone=own, play=play.get_name(), playbook=self._playbook)
            self._record()
        self._guard('play start', body)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        def body():
            task = result._task
            host = result._host.get_name()
            res = result._result or {}
            role = task._role.get_name() if getattr(task, '_role', None) else None
            rescued = (not ignore_errors) and self._rescued(task)
            self._emit('task_failed', task=task.get_name(), role=role, host=host, module=task.action,
                       msg=_short(res.get('msg') or res.get('reason') or ''),
                       stderr_tail=_tail(res.get('stderr') or res.get('module_stderr') or ''),
                       ignored=bool(ignore_errors), rescued=rescued,
                       play=self._play['name'] if self._play else None, playbook=self._playbook)
            if self._play is not None and not ignore_errors and not rescued:
                self._play['failed'].add(host)
        self._guard('task failure', body)

    def v2_runner_on_unreachable(self, result):
        def body():
            task = result._task
            host = result._host.get_name()
            res = result._result or {}
            # `ignore_unreachable: true` on the task: the play goes on, as Ansible's does.
            ignored = bool(getattr(task, 'ignore_unreachable', False))
            self._emit('unreachable', task=task.get_name(), host=host, msg=_short(res.get('msg') or ''),
                       ignored=ignored, play=self._play['name'] if self._play else None, playbook=self._playbook)
            if self._play is not None and not ignored:
                self._play['unreachable'].add(host)
        self._guard('unreachable host', body)

    def v2_playbook_on_stats(self, stats):
        def body():
            self._end_play(None, True)
            hosts = {}
            for host in sorted(stats.processed.keys()):
                s = stats.summarize(host)
                hosts[host] = dict((k, int(s.get(k, 0))) for k in
                                   ('ok', 'changed', 'failures', 'unreachable', 'skipped', 'rescued', 'ignored'))
            self._emit('stats', hosts=hosts)
            self._emit('playbook_end', playbook=self._playbook)
            self._record()
        self._guard('playbook end', body)
