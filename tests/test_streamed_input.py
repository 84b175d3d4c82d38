"""A large regular file is checked as it streams past and parsed from disk (csvin.Text with a path); smaller
inputs are read into memory. Both must read every input alike: the same Panel, or the same one-line error."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecast_cli import csvin
from forecast_cli.data import read_series
from forecast_cli.errors import DataError

HEAD = "unique_id,ds,y\n" + "".join(f"s{i % 3},2024-01-{1 + i // 3:02d},{i}.5\n" for i in range(30))


def outcome(path):
    try:
        panel = read_series(path)
    except DataError as e:
        return str(e)
    return panel.ids.tolist(), panel.ds.tolist(), np.nan_to_num(panel.values, nan=-1e300).tolist(), panel.freq


def both(tmp_path, monkeypatch, content: bytes, chunk: int):
    path = tmp_path / "data.csv"
    path.write_bytes(content)
    in_memory = outcome(path)
    with monkeypatch.context() as m:
        m.setattr(csvin, "_IN_MEMORY_BYTES", 0)
        m.setattr(csvin, "_CHUNK_BYTES", chunk)
        streamed = outcome(path)
    return in_memory, streamed


CASES = {
    "plain": HEAD.encode(),
    "bom and blank lines above the header": b"\xef\xbb\xbf\n\r\n" + HEAD.encode(),
    "crlf and semicolons": HEAD.replace(",", ";").replace("\n", "\r\n").encode(),
    "quoted header with a line break": b'"unique_id","d\ns",y\n' + HEAD.split("\n", 1)[1].encode(),
    "a NUL in the middle": HEAD.encode()[:200] + b"\x00" + HEAD.encode()[200:],
    "invalid UTF-8 at the end": HEAD.encode() + b"s1,2024-02-01,\xff\n",
    "a character cut at the end": HEAD.encode() + b"s\xc3",
    "ids of several bytes a character": HEAD.replace("s1", "sé€😀").encode(),
    "only blanks": b" \n\r\n\t \n",
    "a header alone": b"unique_id,ds,y",
    "text in y": HEAD.encode() + b"s0,2024-02-01,abc\n",
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("chunk", [1, 5, 1 << 20])
def test_streamed_and_in_memory_reads_agree(tmp_path, monkeypatch, case, chunk):
    in_memory, streamed = both(tmp_path, monkeypatch, CASES[case], chunk)
    assert streamed == in_memory


def test_the_streamed_file_is_not_held_in_memory(tmp_path, monkeypatch):
    """What is kept of a streamed file is its first bytes; the parser reads the rest from disk."""
    monkeypatch.setattr(csvin, "_IN_MEMORY_BYTES", 0)
    monkeypatch.setattr(csvin, "_HEAD_BYTES", 64)
    monkeypatch.setattr(csvin, "_MAX_HEADER_BYTES", 64)
    path = tmp_path / "data.csv"
    path.write_text(HEAD + "".join(f"s{9 + k},2024-01-{d:02d},1\n" for k in range(20) for d in range(1, 29)))
    _, text = csvin.read_text(path)
    assert text.path == str(path) and len(text.head) < 300 < text.size
    assert len(read_series(path).ids) == 23


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(["s1", "s2", ",", ";", "\n", "\r\n", "2024-01-0", "1", "2", "é", "\x00", '"',
                                 " ", "x"]), max_size=60),
       st.sampled_from([b"", b"\xff", b"\xc3", b"\xe2\x82"]), st.integers(1, 9))
def test_any_bytes_read_alike_streamed_or_in_memory(tmp_path_factory, pieces, tail, chunk):
    tmp_path = tmp_path_factory.mktemp("s")
    content = ("unique_id,ds,y\n" + "".join(pieces)).encode() + tail
    with pytest.MonkeyPatch.context() as monkeypatch:
        in_memory, streamed = both(tmp_path, monkeypatch, content, chunk)
    assert streamed == in_memory
