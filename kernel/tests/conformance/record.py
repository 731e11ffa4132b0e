#!/usr/bin/env python3
"""Records the golden traces of the conformance scenarios on a real Stackless Python.

Usage: python3 record.py PATH/TO/STACKLESS/python [AREA ...]

Each scenario of scenarios/AREA.txt runs in a fresh Stackless process (this script again, in
`--drive` mode); its event trace and final states go to golden/AREA.txt. The Rust interpreter
(kernel/tests/conformance.rs) runs the same scenarios on Spindle and compares. The scenario
language is described in scenarios/README.md.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


# ---- parsing (shared by both modes; plain Python 3) ------------------------------------------

class Scenario:
    def __init__(self, name):
        self.name = name
        self.channels = []   # (name, [options])
        self.bodies = {}     # tasklet name -> [op lines]
        self.main = []
        self.differs = None


def parse(text):
    scenarios = []
    current = None
    section = None
    for raw in text.splitlines():
        line = raw.split('#', 1)[0].rstrip()
        if raw.startswith('=== '):
            current = Scenario(raw[4:].strip())
            scenarios.append(current)
            section = None
            continue
        if not line.strip():
            continue
        stripped = line.strip()
        if stripped.startswith('differs:'):
            current.differs = stripped[len('differs:'):].strip()
        elif not line.startswith(' '):
            words = stripped.split()
            if words[0] == 'chan':
                current.channels.append((words[1], words[2:]))
                section = None
            elif words[0] == 'task':
                section = current.bodies.setdefault(words[1], [])
            elif words[0] == 'main':
                section = current.main
            else:
                raise SystemExit('%s: unknown line %r' % (current.name, raw))
        else:
            section.append(stripped)
    return scenarios


# ---- driving one scenario under Stackless ------------------------------------------------------

def drive(path, name):
    import stackless

    with open(path) as f:
        scenario = [s for s in parse(f.read()) if s.name == name][0]

    class ThrownError(Exception):
        pass

    out = []

    def emit(line):
        out.append(line)

    def kind(exc):
        if isinstance(exc, TaskletExit):
            return 'Killed'
        if isinstance(exc, ThrownError):
            return 'Thrown(%d)' % exc.args[0]
        message = str(exc)
        if isinstance(exc, ValueError) and 'closed channel' in message:
            return 'Closed'
        if 'Deadlock' in message or 'without a sender' in message \
                or 'without a receiver' in message:
            return 'Deadlock'
        if 'like to be blocked' in message:
            return 'BlockTrap'
        if 'dead' in message:
            return 'Dead'
        if 'blocked tasklet' in message or 'current tasklet cannot' in message:
            return 'Invalid'
        if 'switch_trap' in message:
            return 'SwitchTrap'
        return 'Other(%s: %s)' % (type(exc).__name__, message)

    channels = {}
    for cname, options in scenario.channels:
        ch = stackless.channel()
        for option in options:
            key, value = option.split('=')
            if key == 'pref':
                ch.preference = int(value)
            elif key == 'all':
                ch.schedule_all = int(value)
        channels[cname] = ch
    tasklets = {}
    names = {}

    def who():
        current = stackless.getcurrent()
        return 'main' if current.is_main else names[id(current)]

    def state(t):
        return 'alive=%d scheduled=%d paused=%d blocked=%d' % (
            t.alive, t.scheduled, t.paused, t.blocked)

    def spin(n):
        x = 0
        for i in range(n * 1000):
            x += i
        return x

    def run_op(me, op):
        words = op.split()
        verb, args = words[0], words[1:]
        if verb == 'send':
            channels[args[0]].send(int(args[1]))
            return 'ok'
        if verb == 'recv':
            return str(channels[args[0]].receive())
        if verb == 'send_throw':
            channels[args[0]].send_exception(ThrownError, int(args[1]))
            return 'ok'
        if verb == 'schedule':
            stackless.schedule()
            return 'ok'
        if verb == 'schedule_remove':
            stackless.schedule_remove()
            return 'ok'
        if verb == 'spawn' or verb == 'spawn_paused':
            t = stackless.tasklet(make_body(args[0]))()
            if verb == 'spawn_paused':
                t.remove()
            tasklets[args[0]] = t
            names[id(t)] = args[0]
            return 'ok'
        if verb in ('run', 'switch', 'kill', 'kill_pending', 'throw', 'throw_pending',
                    'insert', 'remove', 'state') and args:
            t = stackless.getmain() if args[0] == 'main' else tasklets[args[0]]
            if verb == 'run':
                t.run()
            elif verb == 'switch':
                t.switch()
            elif verb == 'kill':
                t.kill()
            elif verb == 'kill_pending':
                t.kill(pending=True)
            elif verb == 'throw':
                t.throw(ThrownError, int(args[1]), None, pending=False)
            elif verb == 'throw_pending':
                t.throw(ThrownError, int(args[1]), None, pending=True)
            elif verb == 'insert':
                t.insert()
            elif verb == 'remove':
                t.remove()
            elif verb == 'state':
                return state(t)
            return 'ok'
        if verb == 'run':
            interrupted = stackless.run()
            return 'ok' if interrupted is None else 'interrupted ' + names[id(interrupted)]
        if verb == 'runwatch':
            interrupted = stackless.run(int(args[0]))
            return 'ok' if interrupted is None else 'interrupted ' + names[id(interrupted)]
        if verb == 'spin':
            spin(int(args[0]))
            return 'ok'
        if verb == 'atomic':
            previous = stackless.getcurrent().set_atomic(int(args[0]))
            return 'was %d' % previous
        if verb in ('next', 'prev'):
            t = stackless.getmain() if args[0] == 'main' else tasklets[args[0]]
            other = t.next if verb == 'next' else t.prev
            if other is None:
                return 'none'
            return 'main' if other.is_main else names[id(other)]
        if verb == 'raise_unhandled':
            # Stackless always raises a tasklet's uncaught exception in main.
            return 'ok'
        if verb == 'block_trap':
            stackless.getcurrent().block_trap = bool(int(args[0]))
            return 'ok'
        if verb == 'close':
            channels[args[0]].close()
            return 'ok'
        if verb == 'open':
            channels[args[0]].open()
            return 'ok'
        if verb == 'pref':
            channels[args[0]].preference = int(args[1])
            return 'ok'
        if verb == 'all':
            channels[args[0]].schedule_all = int(args[1])
            return 'ok'
        if verb == 'chan':
            ch = channels[args[0]]
            return 'balance=%d closing=%d closed=%d' % (ch.balance, ch.closing, ch.closed)
        if verb == 'runcount':
            return str(stackless.getruncount())
        if verb == 'current':
            return who()
        raise SystemExit('%s: unknown op %r' % (name, op))

    def run_ops(me, ops):
        for op in ops:
            stop = op.endswith(' ?')
            text = op[:-2] if stop else op
            try:
                result = run_op(me, text)
            except (Exception, TaskletExit) as exc:
                result = 'err ' + kind(exc)
                emit('%s: %s -> %s' % (me, text, result))
                if stop:
                    emit('%s: stop' % me)
                    return
                continue
            emit('%s: %s -> %s' % (me, text, result))

    def make_body(tname):
        def body():
            emit('%s: start' % tname)
            run_ops(tname, scenario.bodies[tname])
            emit('%s: end' % tname)
        return body

    try:
        run_ops('main', scenario.main)
    except (Exception, TaskletExit) as exc:
        emit('main: escaped %s' % kind(exc))
    for tname in sorted(tasklets):
        emit('final %s %s' % (tname, state(tasklets[tname])))
    for cname in sorted(channels):
        ch = channels[cname]
        emit('final chan %s balance=%d closing=%d closed=%d' % (cname, ch.balance, ch.closing,
                                                               ch.closed))
    emit('final runcount %d' % stackless.getruncount())
    sys.stdout.write('\n'.join(out) + '\n')
    sys.stdout.flush()
    # Blocked tasklets would complain at interpreter exit: leave without cleanup.
    os._exit(0)


# ---- recording --------------------------------------------------------------------------------

def record(python, areas):
    import subprocess  # not in a `make python` build, which only records

    scenario_dir = os.path.join(HERE, 'scenarios')
    if not areas:
        areas = sorted(f[:-4] for f in os.listdir(scenario_dir) if f.endswith('.txt'))
    for area in areas:
        path = os.path.join(scenario_dir, area + '.txt')
        with open(path) as f:
            scenarios = parse(f.read())
        lines = []
        for scenario in scenarios:
            try:
                done = subprocess.run([python, os.path.abspath(__file__), '--drive', path,
                                       scenario.name], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, timeout=60)
                trace = done.stdout.decode()
                if done.returncode != 0:
                    trace += 'process failed: %s\n' % done.stderr.decode().strip().replace('\n', ' | ')
            except subprocess.TimeoutExpired:
                trace = 'hang\n'
            lines.append('=== %s\n%s' % (scenario.name, trace))
        with open(os.path.join(HERE, 'golden', area + '.txt'), 'w') as f:
            f.write(''.join(lines))
        print('%s: %d scenarios' % (area, len(scenarios)))


if __name__ == '__main__':
    if len(sys.argv) >= 4 and sys.argv[1] == '--drive':
        drive(sys.argv[2], sys.argv[3])
    elif len(sys.argv) >= 2:
        record(sys.argv[1], sys.argv[2:])
    else:
        raise SystemExit(__doc__)
