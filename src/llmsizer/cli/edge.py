"""The CLI's edge: every error becomes one line on stderr and its exit code (CONTRACT.md), once; notes go to stderr
and results to stdout (or ``--output``).

``Root`` holds the root flags (``--debug``, ``--quiet``, ``--verbose``) of one invocation; both parsers build it
and hand it to the commands.

Everything printed passes through here, and nothing a user, a file or a server supplied reaches the terminal raw:
control characters (terminal escape sequences, carriage returns, C1 controls, bidirectional overrides, the
undecodable bytes of a non-UTF-8 argument) are written as ``\\x1b``-style escapes in tables, Markdown, HTML, launch
configs, notes and errors. Only in a colour table (Rich's own output to a terminal) are colour sequences
(``ESC [ ... m``, SGR) kept. JSON is ASCII with every control character escaped by ``json.dumps`` already; DEL is
the one it leaves raw, written here as ``\\u007f``. An error is one line: newlines become spaces and a value
longer than 200 characters is shortened, saying how long it was.

``--output FILE`` is written atomically: to a new temporary file in the same folder, flushed to disk (fsync) and
renamed over ``FILE``; a write that fails (a full disk, a file-size limit) leaves the old file as it was and no
temporary file. A target that exists and is not a regular file (a FIFO, a device, a folder) is refused with one
line instead of blocking on it. A closed stdout (``llmsizer gpus | head -1``) ends the command quietly, exit 0.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from llmsizer.cli import interrupt_pending
from llmsizer.cli.options import flag
from llmsizer.errors import (
    EXIT_OK,
    EXIT_USAGE,
    InvalidInputError,
    LlmsizerError,
    literal,
)
from llmsizer.record import record

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it

# C0 controls but tab and newline, DEL, C1 controls, bidi embeddings/overrides/isolates, lone surrogates (the
# undecodable bytes of an argument, os.fsdecode's surrogateescape)
_UNSAFE = "\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_CONTROL = re.compile(f"[{_UNSAFE}]")
_CONTROL_KEEP_SGR = re.compile(f"(\x1b\\[[0-9;]*m)|[{_UNSAFE}]")
_LONG_TOKEN = re.compile(r"[^\s:;,'\"]{201,}")


@record
class Root:
    debug: bool = False
    quiet: bool = False
    verbose: bool = False


def _escape(c: str) -> str:
    n = ord(c)
    if 0xDC80 <= n <= 0xDCFF:  # a byte that was not UTF-8, as os.fsdecode keeps it
        return f"\\x{n - 0xDC00:02x}"
    return f"\\x{n:02x}" if n <= 0xFF else f"\\u{n:04x}"


def _sub(m: re.Match[str]) -> str:
    if m.lastindex:  # the SGR group of _CONTROL_KEEP_SGR: a colour sequence, kept
        return m.group(1)
    return _escape(m.group(0))


def printable(text: str, *, keep_color: bool = False) -> str:
    """``text`` with every control character escaped (``\\x1b``); ``keep_color`` keeps SGR colour sequences."""
    pattern = _CONTROL_KEEP_SGR if keep_color else _CONTROL
    if pattern.search(text) is None:
        return text
    return pattern.sub(_sub, text)


def _shorten(m: re.Match[str]) -> str:
    token = m.group(0)
    return f"{token[:80]}...({len(token):,} characters)"


def one_line(message: str) -> str:
    """An error or note as one printable line: control characters escaped, newlines folded, long values cut."""
    text = printable(" ".join(message.split("\n")).replace("\t", " "))
    return _LONG_TOKEN.sub(_shorten, text) if len(text) > 200 else text


def error(message: str) -> None:
    """``llmsizer: error: <message>`` on stderr, as one printable line."""
    _stderr(f"llmsizer: error: {one_line(message)}")


def _stderr(line: str) -> None:
    if sys.stderr is None:  # started with stderr closed (2>&-): nobody to tell (print would fall back to stdout)
        return
    try:
        print(line, file=sys.stderr, flush=True)
    except (OSError, ValueError):  # stderr closed too: nobody to tell
        pass


def stdout_closed() -> int:
    """The reader of stdout went away (``| head -1``): stop quietly, exit 0. Whatever is still buffered goes to
    the null device, so that the interpreter's own flush at exit neither fails nor prints."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass
    return EXIT_OK


def interrupted() -> int:
    """Ctrl-C: one line, exit 130, no traceback."""
    _stderr("llmsizer: aborted")
    return EXIT_INTERRUPTED


def _edge_message(e: BaseException) -> str | None:
    """The one-line message for an error of the environment or of the input's shape that reached the edge
    without becoming an ``LlmsizerError`` (a safety net: the floors below name the field where they can)."""
    if isinstance(e, RecursionError):
        return "the input is nested too deeply to read (recursion limit); simplify the file or value given"
    if isinstance(e, OSError) and e.errno is not None:
        name = f" {os.fsdecode(e.filename)}" if isinstance(e.filename, (str, bytes)) else ""
        return f"cannot use{name}: {e.strerror or e}"
    if isinstance(e, UnicodeEncodeError):
        return f"cannot print this text in the terminal's encoding {e.encoding}; set a UTF-8 locale (LANG=C.UTF-8)"
    if isinstance(e, UnicodeDecodeError):
        return f"text that is not UTF-8 ({e.reason} at byte {e.start})"
    if isinstance(e, OverflowError):
        return f"a number given is too large to compute with ({e}); use a smaller value"
    return None


def run_guarded(call: Callable[[], Any], *, debug: bool) -> int:
    """Run a command; every error becomes one line on stderr and its exit code (never a traceback)."""
    try:
        rv = call()
        return rv if isinstance(rv, int) else EXIT_OK
    except LlmsizerError as e:
        error(e.render(flag))
        return e.exit_code
    except KeyboardInterrupt:
        return interrupted()
    except BrokenPipeError:
        return stdout_closed()
    except Exception as e:
        if debug:
            raise
        known = _edge_message(e)
        if known is not None:
            error(known)
            return EXIT_USAGE
        _stderr(one_line(f"llmsizer: internal error: {type(e).__name__}: {e} (rerun with --debug and report it)"))
        return EXIT_USAGE


def note(root: Root, msg: str) -> None:
    """A note for the user on stderr, unless --quiet."""
    if not root.quiet and sys.stderr is not None:
        print(printable(msg), file=sys.stderr)


def _colored_table(fmt: str) -> bool:
    """Whether the renderer drew colour (the rule of ``render.table.want_color`` for the colour ``color()``
    passes): only tables, only then are SGR sequences Rich's own."""
    if fmt != "table" or os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return bool(getattr(sys.stdout, "isatty", lambda: False)())


def safe_text(text: str, fmt: str) -> str:
    """What may be printed of a rendered ``text`` in ``fmt`` (see the module docstring)."""
    if fmt == "json":
        return text.replace("\x7f", "\\u007f") if "\x7f" in text else text
    return printable(text, keep_color=_colored_table(fmt))


def emit(root: Root, text: str, output: Path | None, fmt: str = "text") -> None:
    """The result (rendered in ``fmt``) on stdout, or into ``--output``, atomically; nothing once Ctrl-C was
    pressed (an interrupt Python swallowed on the way still stops the command here)."""
    if interrupt_pending():
        raise KeyboardInterrupt
    text = safe_text(text if text.endswith("\n") else text + "\n", fmt)
    if output is None:
        if sys.stdout is None:  # started with stdout closed (>&-): as if its reader had gone
            return
        try:
            sys.stdout.write(text)
        except UnicodeEncodeError:  # a terminal that is not UTF-8: the box characters as escapes, not a crash
            sys.stdout.flush()
            encoding = getattr(sys.stdout, "encoding", None) or "ascii"
            sys.stdout.buffer.write(text.encode(encoding, "backslashreplace"))
        sys.stdout.flush()
        return
    try:
        write_atomic(output, text.encode("utf-8"))
    except OSError as e:
        reason = e.strerror or str(e)
        raise InvalidInputError("cannot write {output} " + literal(f"{os.fsdecode(output)}: {reason}"),
                                fields=("output",)) from None
    note(root, f"wrote {os.fsdecode(output)}")


def write_atomic(path: Path, data: bytes) -> None:
    """``data`` into ``path``: a new file in the same folder, fsync, rename over ``path`` (its permission bits
    kept). ``OSError`` when it cannot be done; then ``path`` is untouched and no temporary file is left."""
    try:
        st: os.stat_result | None = os.stat(path)  # through a symlink: its target is what gets replaced
    except FileNotFoundError:
        st = None
    if st is not None:
        if not stat.S_ISREG(st.st_mode):
            kind = "a folder" if stat.S_ISDIR(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode) else \
                "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "not a regular file"
            raise OSError(f"it is {kind}; give the path of a regular file" if kind != "not a regular file"
                          else "not a regular file; give the path of a regular file")
        if not os.access(path, os.W_OK):
            raise PermissionError(13, os.strerror(13))
    target = Path(os.path.realpath(path)) if os.path.islink(path) else Path(path)
    folder = target.parent
    tmp = folder / f".{target.name[:64]}.{os.getpid()}.{os.urandom(6).hex()}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) \
        | getattr(os, "O_BINARY", 0)
    previous = _ignore_file_size_signal()
    try:
        fd = os.open(tmp, flags, 0o666)
        try:
            try:
                if st is not None and hasattr(os, "fchmod"):
                    os.fchmod(fd, stat.S_IMODE(st.st_mode))
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, target)
        except BaseException:  # a full disk, a file-size limit, Ctrl-C: the old file stays, the temporary goes
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        _fsync_folder(folder)
    finally:
        _restore_file_size_signal(previous)


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable too (POSIX; a best effort)."""
    directory = getattr(os, "O_DIRECTORY", 0)
    if not directory:
        return
    try:
        fd = os.open(folder, os.O_RDONLY | directory)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _ignore_file_size_signal() -> Any:
    """Past a file-size limit (``ulimit -f``) the kernel sends SIGXFSZ, which kills the process and would leave the
    temporary file behind; ignored, the write fails with EFBIG instead and is cleaned up."""
    import signal

    if not hasattr(signal, "SIGXFSZ"):
        return None
    try:
        return signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    except (ValueError, OSError):  # not the main thread
        return None


def _restore_file_size_signal(previous: Any) -> None:
    if previous is None:
        return
    import signal

    try:
        signal.signal(signal.SIGXFSZ, previous)
    except (ValueError, OSError, TypeError):
        pass


def color() -> bool | None:
    """False when NO_COLOR is set (https://no-color.org), else let the renderer decide."""
    return False if os.environ.get("NO_COLOR") else None
