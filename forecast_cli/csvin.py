"""Bytes to a raw table: DATA or standard input read with a bound and checked to be UTF-8 text as it comes in,
then parsed by pandas with the series id column kept as text. data.py makes a Panel of the table.

Bounds (limits.py): MAX_INPUT_BYTES of input, MAX_COLUMNS columns; the header line is at most _MAX_HEADER_BYTES.
The delimiter (comma, semicolon, tab or pipe) is detected from the header and the next few lines (at most
_HEAD_BYTES of them) unless one is given. A DATA path ending in .parquet is read by pandas with pyarrow (an
optional extra), refused above MAX_INPUT_BYTES on disk or uncompressed before it is read.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import stat
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from forecast_cli.errors import DataError
from forecast_cli.escapes import escape_controls
from forecast_cli.limits import MAX_COLUMNS, MAX_HEADER_BYTES, MAX_INPUT_BYTES

_HEAD_BYTES = 65536  # the first chunk of input: checked to be text before anything more is read
_CHUNK_BYTES = 1 << 20
_IN_MEMORY_BYTES = 64 << 20  # a regular file up to this is read into memory; a larger one is parsed from disk
_MAX_HEADER_BYTES = MAX_HEADER_BYTES  # (a module name, so that a test can lower it)
# pandas' default missing-value spellings, for every column but the series id (where only an empty cell is)
_SAMPLE_LINES = 20  # data lines after the header that delimiter detection looks at
_NA_TEXTS = ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>",
             "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"]


@dataclass(frozen=True)
class Text:
    """The input, checked to be UTF-8 text: all of it in `head`, or (a large regular file) its first bytes, as
    many as the header and delimiter detection can look at, and the file, which the parser reads again from
    disk so that no copy of it is held (2.5 GB for 100 million rows)."""

    head: bytes
    size: int  # bytes of the input in all
    path: str | None = None  # the regular file `head` begins, or None: `head` is all of the input

    def body(self, start: int):
        """A binary stream of the input from byte `start`, at most `size` bytes in all (a file that grew after
        it was checked is read as it was)."""
        if self.path is None:
            body = io.BytesIO(self.head)  # shares the bytes, no copy
            body.seek(start)
            return body
        stream = open(self.path, "rb")  # noqa: SIM115 (the parser reads it; _Bounded closes it)
        stream.seek(start)
        return _Bounded(stream, self.size - start)


class _Bounded(io.RawIOBase):
    """At most `left` bytes of `stream`, then the end."""

    def __init__(self, stream, left: int):
        self.stream, self.left = stream, left

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        view = memoryview(buffer)[: max(0, self.left)]
        got = self.stream.readinto(view) or 0
        self.left -= got
        return got

    def close(self) -> None:
        self.stream.close()
        super().close()


def read_text(source: str | Path) -> tuple[str, Text]:
    """(name, the input), checked to be UTF-8 text and at most MAX_INPUT_BYTES. In-memory bytes go to the
    parser as they are: a decoded copy in a StringIO would cost 4 bytes a character (CPython stores it as UCS-4),
    6x the file in all. A regular file larger than _IN_MEMORY_BYTES is checked as it streams past and read
    again by the parser, so that memory holds no copy of it."""
    if str(source) == "-":
        name = "<stdin>"
        stream = getattr(sys.stdin, "buffer", None)  # None when fd 0 was closed before Python started
        if stream is None:
            raise DataError(f"{name}: standard input is closed; pipe the CSV in or pass a file")
        try:
            raw = _read_bounded(name, stream)
        except (OSError, ValueError) as e:  # (ValueError: a closed file object)
            raise DataError(f"{name}: standard input cannot be read ({clip(e, 80)})") from e
        text = Text(raw, len(raw))
    else:
        name = clip(source, 200)
        try:
            with open(source, "rb") as stream:
                size = _remaining_size(stream)
                if size is not None and size > _IN_MEMORY_BYTES and stream.seekable():
                    if size > MAX_INPUT_BYTES:
                        raise DataError(_too_large(name))
                    return name, _checked_file(name, str(source), stream, size)
                raw = _read_bounded(name, stream)
        except FileNotFoundError as e:
            raise DataError(f"{name}: no such file") from e
        except IsADirectoryError as e:
            raise DataError(f"{name}: is a directory, not a CSV file") from e
        except OSError as e:
            raise DataError(f"{name}: cannot be read ({clip(e.strerror or e, 80)})") from e
        text = Text(raw, len(raw))
    nul = raw.find(b"\x00", _HEAD_BYTES)  # (memchr: the first chunk was checked as it came in)
    if nul >= 0:
        raise DataError(_not_text(name, nul))
    _check_utf8(name, raw, final=True)
    if not raw or raw.isspace():  # (no copy, unlike strip)
        raise DataError(f"{name}: the file is empty")
    return name, text


def _head_bytes() -> int:
    """Bytes of a streamed file that parse_csv may look at: a BOM, blank lines, the header, a sample after it."""
    return len(codecs.BOM_UTF8) + 2 * _HEAD_BYTES + _MAX_HEADER_BYTES + 2


def _checked_file(name: str, path: str, stream, size: int) -> Text:
    """The checks read_text makes of bytes in memory (NUL, UTF-8, not blank), made _CHUNK_BYTES at a time as a
    regular file of `size` bytes streams past; keeps only its first bytes."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    head, kept, blank, pos = [], 0, True, 0
    while pos < size:
        chunk = stream.read(min(_CHUNK_BYTES, size - pos))
        if not chunk:
            break  # (the file shrank: what is there is checked)
        nul = chunk.find(b"\x00")
        if nul >= 0:
            raise DataError(_not_text(name, pos + nul))
        pending = len(decoder.getstate()[0])
        if pending or not chunk.isascii():
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as e:
                raise DataError(_not_utf8(name, pos - pending + e.start)) from e
        blank = blank and chunk.isspace()
        if kept < _head_bytes():
            head.append(chunk[: _head_bytes() - kept])
            kept += len(head[-1])
        pos += len(chunk)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as e:
        raise DataError(_not_utf8(name, pos - len(decoder.getstate()[0]) + e.start)) from e
    if blank:
        raise DataError(f"{name}: the file is empty")
    return Text(b"".join(head), pos, path)


def _not_text(name: str, offset: int) -> str:
    return f"{name}: not a text file (a NUL byte at offset {offset}); expected UTF-8 CSV"


def _not_utf8(name: str, offset: int) -> str:
    return f"{name}: not UTF-8 text (invalid byte at offset {offset}); save it as UTF-8 CSV"


def _read_bounded(name: str, stream) -> bytes:
    """At most MAX_INPUT_BYTES from a binary stream. The first chunk is checked to be text before more is read
    (/dev/zero is refused at once); a regular file is sized first and read into one buffer; anything else
    (a pipe, a device) is read in chunks until it ends or passes the bound."""
    size = _remaining_size(stream)
    if size is not None and size > MAX_INPUT_BYTES:
        raise DataError(_too_large(name))
    head = stream.read(_HEAD_BYTES)
    if b"\x00" in head:
        raise DataError(_not_text(name, head.find(b"\x00")))
    _check_utf8(name, head, final=False)
    if size is not None and len(head) == _HEAD_BYTES and stream.seekable():
        stream.seek(-len(head), os.SEEK_CUR)
        head = stream.read(size + 1)  # the whole file in one buffer, no joined copy; 1 more byte if it grew
        if len(head) <= size:
            return head
    chunks, total = [head], len(head)
    while chunk := stream.read(_CHUNK_BYTES):
        total += len(chunk)
        if total > MAX_INPUT_BYTES:
            raise DataError(_too_large(name))
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _remaining_size(stream) -> int | None:
    """Bytes left in a regular file; None for pipes, devices and streams without a file descriptor."""
    try:
        info = os.fstat(stream.fileno())
        return info.st_size - stream.tell() if stat.S_ISREG(info.st_mode) else None
    except (OSError, ValueError):
        return None


def _too_large(name: str) -> str:
    return (f"{name}: larger than {MAX_INPUT_BYTES / 2**30:g} GiB, the most forecast reads from one file or "
            "from standard input; split it into smaller files")


def _check_utf8(name: str, raw: bytes, final: bool) -> None:
    """DataError naming the offset of the first byte that is not UTF-8. Decodes 1 MiB at a time, so that the
    check never holds a decoded copy of the whole input (up to 4 bytes a character); ASCII needs no decoding.
    final=False: a character cut at the end is not an error (the first chunk of a longer input)."""
    if raw.isascii():
        return
    view, pos = memoryview(raw), 0
    while pos < len(raw):
        end = pos + _CHUNK_BYTES
        try:
            _, used = codecs.utf_8_decode(view[pos:end], "strict", final and end >= len(raw))
        except UnicodeDecodeError as e:
            raise DataError(_not_utf8(name, pos + e.start)) from e
        if used == 0:  # (only a cut character is left, and final is False)
            return
        pos += used


def parse_csv(name: str, text: Text, id_column: Callable[[list[str]], str | None], sep: str | None = None,
              decimal: str = ".", thousands: str | None = None) -> pd.DataFrame:
    """All columns as read by pandas; the index is shifted so that line = index + 2 (line 1 is the header).
    The series id column is read as text, and only an empty cell in it is missing ('007' stays '007', 'NA' is a
    series called NA); the other columns keep pandas' default missing-value spellings. sep: the delimiter,
    detected when None (table.attrs["sep"] says which was used); decimal, thousands: how numbers are written."""
    raw = text.head
    start = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
    head = raw[start : start + _HEAD_BYTES]
    blank = head[: len(head) - len(head.lstrip(b"\r\n"))]
    skipped = blank.count(b"\n") + blank.count(b"\r") - blank.count(b"\r\n")  # blank lines above the header
    start += len(blank)
    end = _record_end(raw, start, text.size)
    if end is None:
        raise DataError(f"{name}: line 1 (the header) is longer than {_MAX_HEADER_BYTES:,} bytes")
    sep = sep or detect_sep(raw, start, end, text.size)
    header = _header(name, raw, start, end, sep)
    chosen = id_column(header)
    id_at = header.index(chosen) if chosen in header else None
    options = {}
    if id_at is not None:
        options = {"dtype": {id_at: str}, "keep_default_na": False,
                   "na_values": {i: [""] if i == id_at else _NA_TEXTS for i in range(len(header))}}
    read_as = f"read as {describe_sep(sep)}-separated"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)  # a row longer than the header
            with text.body(start) as body:
                table = pd.read_csv(body, sep=sep, decimal=decimal, thousands=thousands, skip_blank_lines=False,
                                    index_col=False, encoding="utf-8", **options)
    except pd.errors.ParserWarning as e:
        raise DataError(f"{name}: line 2 has more fields than the header ({len(header)} columns, {read_as}); "
                        "pass --sep if the delimiter is another") from e
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as e:
        raise DataError(f"{name}: not a valid CSV table ({read_as}): {clip(e, 120)}") from e
    table.index += skipped
    table.columns = [str(c).strip() for c in table.columns]
    table = table.dropna(how="all")  # blank lines
    if table.empty:
        raise DataError(f"{name}: has a header but no data rows")
    table.attrs["sep"] = sep
    return table


def describe_sep(sep: str) -> str:
    """How a delimiter is named in messages: ';' or tab."""
    return "tab" if sep == "\t" else f"'{sep}'"


def detect_sep(raw: bytes, start: int, end: int, size: int | None = None) -> str:
    """The delimiter of the header raw[start:end] and the lines after it: among comma, semicolon, tab and pipe,
    one that splits the header in two or more fields, preferring the one that gives the most of the next
    _SAMPLE_LINES lines the header's field count (then the order listed). Comma when none splits the header
    (a single column)."""
    header = raw[start:end].decode("utf-8", errors="replace")
    sample = raw[end : end + _HEAD_BYTES].decode("utf-8", errors="replace")
    cut = (len(raw) if size is None else size) > end + _HEAD_BYTES  # the sample's last line may be cut short
    best, best_score = ",", (-1, 0)
    for sep in (",", ";", "\t", "|"):
        fields = max(map(len, _rows(header, sep, 1)), default=0)
        if fields < 2:
            continue
        rows = [row for row in _rows(sample, sep, _SAMPLE_LINES + 1) if row]
        rows = rows[:-1] if cut or len(rows) > _SAMPLE_LINES else rows
        matching = sum(len(row) == fields for row in rows)
        if (matching, fields) > best_score:
            best, best_score = sep, (matching, fields)
    return best


def _rows(text: str, sep: str, most: int) -> list[list[str]]:
    """The first `most` records of `text` split by `sep` (as many as parse before a malformed one)."""
    rows: list[list[str]] = []
    try:
        for row in csv.reader(io.StringIO(text, newline=""), delimiter=sep):
            rows.append(row)
            if len(rows) >= most:
                break
    except csv.Error:
        pass
    return rows


def _header(name: str, raw: bytes, start: int, end: int, sep: str) -> list[str]:
    """The header's names, stripped, checked before pandas sees them: at most MAX_COLUMNS, none twice (pandas
    would rename an exact duplicate 'y.1' and keep ' y' beside 'y')."""
    delimiter = sep.encode()
    if raw.count(delimiter, start, end) >= MAX_COLUMNS and raw.find(b'"', start, end) < 0:  # exact: no quotes
        raise DataError(f"{name}: line 1 has {raw.count(delimiter, start, end) + 1:,} columns; forecast reads at "
                        f"most {MAX_COLUMNS:,}")
    text = raw[start:end].decode("utf-8", errors="replace")
    header = [h.strip() for h in next(csv.reader(io.StringIO(text, newline=""), delimiter=sep), [])]
    if len(header) > MAX_COLUMNS:
        raise DataError(f"{name}: line 1 has {len(header):,} columns; forecast reads at most {MAX_COLUMNS:,}")
    seen: set[str] = set()
    for h in header:
        if h in seen and h:  # (empty names become 'Unnamed: N', which differ)
            raise DataError(f"{name}: line 1: column '{clip(h)}' appears twice (names are compared without "
                            "their surrounding spaces); rename one")
        seen.add(h)
    return header


PARQUET_NEEDS = "reading .parquet needs pyarrow: pip install 'forecast-cli[parquet]'"


def read_parquet(source: str | Path, id_column: Callable[[list[str]], str | None]) -> tuple[str, pd.DataFrame]:
    """(name, the table) of a .parquet file, as parse_csv gives one: line = index + 2, column names as stripped
    text (at most MAX_COLUMNS, none twice), the series id column as text. Refused before it is read when the
    file, or its data uncompressed (from the footer), is over MAX_INPUT_BYTES."""
    name = clip(source, 200)
    try:
        size = os.stat(source).st_size
    except FileNotFoundError as e:
        raise DataError(f"{name}: no such file") from e
    except OSError as e:
        raise DataError(f"{name}: cannot be read ({clip(e.strerror or e, 80)})") from e
    if size > MAX_INPUT_BYTES:
        raise DataError(_too_large(name))
    try:
        import pyarrow.parquet as pq
    except ImportError as e:
        raise DataError(PARQUET_NEEDS) from e
    try:
        meta = pq.ParquetFile(source).metadata
        if meta.num_columns > MAX_COLUMNS:
            raise DataError(f"{name}: has {meta.num_columns:,} columns; forecast reads at most {MAX_COLUMNS:,}")
        if sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups)) > MAX_INPUT_BYTES:
            raise DataError(_too_large(name))
        table = pd.read_parquet(source, engine="pyarrow")
    except DataError:
        raise
    except Exception as e:  # pyarrow's errors (ArrowInvalid, OSError) for a file that is not Parquet
        raise DataError(f"{name}: not a valid Parquet file: {clip(e, 120)}") from e
    table = table.reset_index(drop=True)
    table.columns = [str(c).strip() for c in table.columns]
    twice = table.columns[table.columns.duplicated()]
    if len(twice):
        raise DataError(f"{name}: column '{clip(twice[0])}' appears twice (names are compared without their "
                        "surrounding spaces); rename one")
    chosen = id_column(list(table.columns))
    if chosen in table.columns:
        column = table[chosen]
        table[chosen] = column.where(column.isna(), column.astype(str))
    table = table.dropna(how="all")
    if table.empty:
        raise DataError(f"{name}: has no data rows")
    return name, table


def _record_end(raw: bytes, start: int, size: int) -> int | None:
    """Where the record starting at `start` ends: its first line end (CR, LF or CRLF) outside quotes; None when
    that is more than _MAX_HEADER_BYTES away. `raw` is the input's first bytes, `size` the input's length."""
    limit = min(len(raw), start + _MAX_HEADER_BYTES)
    pos, quotes = start, 0
    while True:
        lf = raw.find(b"\n", pos, limit)
        cr = raw.find(b"\r", pos, lf if lf >= 0 else limit)
        end = cr if cr >= 0 else lf
        if end < 0:
            return len(raw) if limit == len(raw) == size else None
        quotes += raw.count(b'"', pos, end)
        if quotes % 2 == 0:
            return end
        pos = end + 1


def clip(value, limit: int = 40) -> str:
    """A value as it can be shown inside a one-line message: control characters (C0, DEL, C1: ESC and so every
    terminal escape sequence; line separators and bidirectional overrides too) escaped, long ones cut."""
    text = str(value)[: 4 * limit + 16]
    text = escape_controls(text, named=True).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"
