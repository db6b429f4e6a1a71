"""Runs ``redundancy-verify-attestation`` (its ``main``) once per line of stdin, in one process.

The adversarial API suite verifies every hostile transaction it makes; starting the command
for each (about two seconds of imports) would cost more than the rest of a case. Each line of
stdin is a JSON list of arguments; each answer, one line of stdout, is a JSON object with the
exit code, what the command wrote to stdout and stderr (through the same encoding this
process's stdout has, so text it cannot write fails here as it would there), and the traceback
of any exception that escaped ``main`` (``crash``). A signal kills this process, which the
suite sees as end of file.

    python -P tests/adversarial/verify_driver.py
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import traceback

from redundancy.cli.verify_attestation import main


def _stream() -> io.TextIOWrapper:
    return io.TextIOWrapper(
        io.BytesIO(), encoding=sys.stdout.encoding, errors=sys.stdout.errors, newline=""
    )


def _text(stream: io.TextIOWrapper) -> str:
    stream.flush()
    raw = stream.buffer
    assert isinstance(raw, io.BytesIO)
    return raw.getvalue().decode(sys.stdout.encoding, "replace")


def run(argv: list[str]) -> dict[str, object]:
    out, err = _stream(), _stream()
    crash = None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 2
        except BaseException:  # what would have been a traceback and exit 1
            code, crash = 1, traceback.format_exc()
        try:
            out.flush()
            err.flush()
        except Exception:  # text the real streams could not have written either
            code, crash = 1, traceback.format_exc()
    return {"code": code, "stdout": _text(out), "stderr": _text(err), "crash": crash}


def serve() -> None:
    for line in sys.stdin:
        answer = run(json.loads(line))
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    serve()
