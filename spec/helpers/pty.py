#!/usr/bin/env python3
"""spec/helpers/pty.py -- drive an interactive program through a pty.

Used by spec/repl_spec.lua to test what only a terminal shows: readline tab
completion, Ctrl-C handling and the history file.  Standard library only.

usage: pty.py [options] [steps] -- command [args...]

options:
  -t SEC      seconds to wait for each expectation (default 10)
  -E K=V      set an environment variable for the command (repeatable);
              TERM defaults to dumb and INPUTRC to /dev/null
  --no-eof    do not send Ctrl-D at the end
steps, run in order (TEXT takes backslash escapes such as \\t \\n \\x03):
  -s TEXT     send TEXT to the terminal
  -x TEXT     wait until TEXT appears in the output after the previous match
  -w SEC      sleep SEC seconds, collecting output meanwhile

After the steps Ctrl-D is sent and the command is given the same timeout
to exit; it is killed (SIGKILL) if it does not, or at once when an
expectation failed.  The transcript, rendered the way a screen would show
it, is written to stdout, followed by a line "EXIT: <code>" (minus the
signal number when killed by a signal).  The exit status is 0 when every
expectation was met, 1 otherwise (the reason goes to stderr), 2 for bad
usage.
"""

import os
import sys

# This file is itself named pty.py: keep its folder off the import path so
# that `import pty` below finds the standard library module.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import pty  # noqa: E402
import re  # noqa: E402
import select  # noqa: E402
import signal  # noqa: E402
import struct  # noqa: E402
import time  # noqa: E402

try:
    import fcntl
    import termios
except ImportError:  # pragma: no cover - not on POSIX
    fcntl = termios = None

# One terminal output token: an escape sequence or a single character.
TOKENS = re.compile(r"\x1b\[([0-9;?]*)[ -/]*([@-~])"
                    r"|\x1b[()][A-Za-z0-9]|\x1b[=>78]|.", re.DOTALL)


def render(data):
    """Plays terminal output onto lines, the way a screen would show it.

    Handles what readline emits for a dumb or simple terminal: carriage
    return, backspace, bell (dropped), cursor left/right and erase to end of
    line; other escape sequences are dropped.  Text overwrites what is under
    the cursor.
    """
    lines, line, col = [], [], 0
    for m in TOKENS.finditer(data):
        tok = m.group(0)
        if m.group(2):                      # CSI sequence
            arg = m.group(1).lstrip("?").split(";")[0]
            n = int(arg) if arg.isdigit() else 1
            if m.group(2) == "K":
                del line[col:]
            elif m.group(2) == "C":
                col += n
            elif m.group(2) == "D":
                col = max(0, col - n)
        elif tok == "\n":
            lines.append("".join(line))
            line, col = [], 0
        elif tok == "\r":
            col = 0
        elif tok == "\b":
            col = max(0, col - 1)
        elif len(tok) == 1 and (tok >= " " or tok == "\t"):
            line.extend(" " * (col - len(line)))
            if col < len(line):
                line[col] = tok
            else:
                line.append(tok)
            col += 1
    lines.append("".join(line))
    return "\n".join(lines)


def unescape(text):
    """Decodes backslash escapes (\\t, \\n, \\x03, ...) in a step argument."""
    return text.encode("latin-1", "backslashreplace").decode("unicode_escape")


def usage_error(message):
    sys.stderr.write("pty.py: %s (try --help)\n" % message)
    raise SystemExit(2)


def parse_args(argv):
    opts = {"timeout": 10.0, "env": {}, "eof": True, "steps": [], "cmd": None}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            opts["cmd"] = argv[i + 1:]
            break
        if a == "--no-eof":
            opts["eof"] = False
            i += 1
            continue
        if a not in ("-t", "-E", "-s", "-x", "-w") or i + 1 >= len(argv):
            usage_error("bad argument %r" % a)
        val = argv[i + 1]
        if a == "-t":
            opts["timeout"] = float(val)
        elif a == "-E":
            key, _, value = val.partition("=")
            opts["env"][key] = value
        elif a == "-w":
            opts["steps"].append(("sleep", float(val)))
        else:
            kind = "send" if a == "-s" else "expect"
            opts["steps"].append((kind, unescape(val)))
        i += 2
    if not opts["cmd"]:
        usage_error("no command given after --")
    return opts


class Session:
    """A child process on a pty, with its output accumulated as text."""

    def __init__(self, cmd, env):
        self.raw = b""
        self.mark = 0
        self.closed = False
        self.status = None
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            try:
                os.execvpe(cmd[0], cmd, env)
            finally:
                os._exit(127)
        if fcntl is not None:
            size = struct.pack("HHHH", 40, 200, 0, 0)
            fcntl.ioctl(self.fd, termios.TIOCSWINSZ, size)

    def text(self):
        return render(self.raw.decode("utf-8", "replace"))

    def pump(self, seconds):
        """Reads whatever arrives within `seconds`; False once closed."""
        if self.closed:
            return False
        ready, _, _ = select.select([self.fd], [], [], max(seconds, 0))
        if not ready:
            return True
        try:
            data = os.read(self.fd, 65536)
        except OSError:
            data = b""
        if not data:
            self.closed = True
            return False
        self.raw += data
        return True

    def send(self, text):
        os.write(self.fd, text.encode("utf-8"))

    def expect(self, needle, timeout):
        """Waits for `needle` after the previous match; True when seen."""
        deadline = time.monotonic() + timeout
        while True:
            pos = self.text().find(needle, self.mark)
            if pos >= 0:
                self.mark = pos + len(needle)
                return True
            left = deadline - time.monotonic()
            if left <= 0 or self.closed:
                return False
            self.pump(min(left, 0.2))

    def sleep(self, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not self.pump(deadline - time.monotonic()):
                break

    def wait(self, timeout):
        """Waits for the child to exit; kills it after `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.pump(0.05):
                time.sleep(0.02)
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = status
                self.pump(0.05)
                return True
        self.kill()
        return False

    def kill(self):
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                _, self.status = os.waitpid(self.pid, 0)
            except OSError:
                pass
        try:
            os.close(self.fd)
        except OSError:
            pass


def exit_text(status):
    if status is None:
        return "timeout"
    if os.WIFEXITED(status):
        return str(os.WEXITSTATUS(status))
    return str(-os.WTERMSIG(status))


def main(argv):
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    opts = parse_args(argv)
    env = dict(os.environ)
    env["TERM"] = "dumb"
    env["INPUTRC"] = "/dev/null"
    env.update(opts["env"])
    failure = None
    session = Session(opts["cmd"], env)
    try:
        for kind, arg in opts["steps"]:
            if kind == "send":
                session.send(arg)
            elif kind == "sleep":
                session.sleep(arg)
            elif not session.expect(arg, opts["timeout"]):
                failure = "expected %r within %gs" % (arg, opts["timeout"])
                break
        if failure is None:
            if opts["eof"]:
                session.send("\x04")
            if not session.wait(opts["timeout"]):
                failure = "command did not exit within %gs" % opts["timeout"]
    finally:
        session.kill()
    sys.stdout.write(session.text())
    sys.stdout.write("\nEXIT: %s\n" % exit_text(session.status))
    if failure:
        sys.stderr.write("pty.py: %s\n--- output after last match ---\n%r\n"
                         % (failure, session.text()[session.mark:]))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
