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
import uuid

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
# The code, then a space, a colon or the end: `25 security`, `25: security`, `25`.
# (`25.5 x`, `25x` and `25-30 x` name no milestone.)
LEADING_CODE = re.compile(r'^\s*(\d+)(?=[\s:]|$)')


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
    # The start of a message says what failed and its end often why (a traceback's
    # last line): a long one keeps both halves.
    if text is None:
        return ''
    if not isinstance(text, str):
        try:
            text = json.dumps(text, default=str)
        except Exception:
            text = str(text)
    if len(text) > MSG_BYTES:
        half = MSG_BYTES // 2
        text = text[:half] + '\n[...]\n' + text[-half:]
    return text


def _not_recorded():
    # `--check` changes nothing, and `--tags`, `--skip-tags`, `--start-at-task` and
    # `--step` leave tasks out: neither completes a milestone. The reason, or None.
    try:
        from ansible import context
        args = context.CLIARGS
    except Exception:
        return None
    if args.get('check'):
        return '--check changes nothing'
    tags = args.get('tags') or ()
    if [t for t in tags if t != 'all'] or args.get('skip_tags') or args.get('start_at_task') or args.get('step'):
        return 'a run of part of the playbook (--tags, --skip-tags, --start-at-task, --step) completes no milestone'
    return None


def _unprefixed(line):
    # buildstate's own `error: ` / `warning: ` go: Ansible's warning says it already.
    for prefix in ('error: ', 'warning: '):
        if line.startswith(prefix):
            return line[len(prefix):]
    return line


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
        given = os.environ.get('BUILDSTATE_ANSIBLE_SPOOL', '').strip()
        # A spool of the plugin's own naming is removed once all of it is recorded.
        self._own_name = not given
        self._spool = given or self._default_spool()
        self._spool_lock = None
        self._seq = None
        self._unavailable = False
        self._playbook = None
        # The play running now: its own milestone (or None) and the milestone it
        # belongs to (its own, or the one running before it).
        self._play = None

    # -- plumbing ------------------------------------------------------------------

    def _default_spool(self):
        # One file per run: two playbooks of one build at once (two CI jobs) would
        # otherwise number their events alike in one file and lose some.
        if not self._build:
            return None
        base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
        name = '%s-%s-%d.jsonl' % (_safe_name(self._build), time.strftime('%Y%m%dT%H%M%S'), os.getpid())
        return os.path.join(base, 'buildstate', 'ansible-spool', name)

    def _own_spool(self):
        # A spool given by name may be another running playbook's: its writer holds a
        # lock on it for its whole run, and a second writer takes a file of its own
        # beside it rather than mixing its events in.
        if self._spool_lock is not None:
            return
        directory = os.path.dirname(self._spool)
        if directory and not os.path.isdir(directory):
            os.makedirs(directory)
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not on the platforms Ansible runs on
            self._spool_lock = False
            return
        f = open(self._spool + '.lock', 'a')
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self._spool_lock = f
        except (IOError, OSError):
            f.close()
            taken = self._spool
            root, ext = os.path.splitext(taken)
            self._spool = '%s-%d%s' % (root, os.getpid(), ext or '.jsonl')
            self._warn_once('spool-busy', 'buildstate: the spool %s is in use by another playbook; this one '
                            'writes %s' % (taken, self._spool))
            self._spool_lock = None
            self._own_spool()

    def _warn_once(self, key, text):
        if key in self._warned:
            return
        self._warned.add(key)
        try:
            self._display.warning(text)
        except Exception:
            pass

    def _active(self):
        if not self._build:
            self._warn_once('no-build', 'buildstate callback: BUILDSTATE_BUILD is not set, so nothing is '
                            'recorded (run the playbook with `buildstate ansible-playbook REF -- ...`)')
            return False
        why = _not_recorded()
        if why:
            self._warn_once('not-recorded', 'buildstate callback: %s, so nothing is recorded' % why)
            return False
        return True

    def _next_seq(self):
        if self._seq is None:
            self._own_spool()
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
        self._own_spool()
        line = json.dumps(fields, default=str, sort_keys=True) + '\n'
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
            why = '\n'.join(_unprefixed(line) for line in why.splitlines())
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

    def _remove_spool(self):
        # Recorded to its end: the cursor and the build's `ansible.spool` say so, and
        # nothing is left to replay. (A spool named by the caller is the caller's.)
        for path in (self._spool, self._spool + '.done', self._spool + '.lock'):
            try:
                os.remove(path)
            except OSError:
                pass

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

    def _milestone_of(self, play):
        # `buildstate_milestone` as Ansible would see it at the play: play vars,
        # vars_files and extra vars (`-e` wins, as it does in Ansible), templated.
        found, value = self._play_var(play, 'buildstate_milestone')
        if found:
            text = str(value).strip()
            if text.isdigit() and int(text) <= 100:
                return int(text)
            self._warn_once('milestone:' + play.get_name() + text,
                            'buildstate: play "%s" has buildstate_milestone %r, which is not a milestone '
                            '(a code from 0 to 100); the play counts as part of the milestone before it'
                            % (play.get_name(), value))
            return None
        m = LEADING_CODE.match(play.get_name() or '')
        if not m:
            return None
        if len(m.group(1)) > 3 or int(m.group(1)) > 100:
            self._warn_once('name:' + play.get_name(),
                            'buildstate: play "%s" starts with %s, which is not a milestone (a code from 0 to '
                            '100); the play counts as part of the milestone before it' % (play.get_name(), m.group(1)))
            return None
        return int(m.group(1))

    @staticmethod
    def _play_var(play, name):
        try:
            manager = play.get_variable_manager()
            variables = manager.get_vars(play=play) if manager is not None else play.get_vars()
        except Exception:
            variables = play.get_vars()
        if name not in variables:
            return False, None
        value = variables[name]
        if isinstance(value, str) and ('{{' in value or '{%' in value):
            try:
                from ansible.template import Templar
                value = Templar(loader=getattr(play, '_loader', None), variables=variables).template(value)
            except Exception as e:
                value = '%s (cannot be templated: %s)' % (value, e)
        return True, value

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
            self._emit('playbook_start', build=self._build, playbook=self._playbook, run=uuid.uuid4().hex)
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
            if self._own_name and not self._unavailable:
                self._remove_spool()
        self._guard('playbook end', body)
