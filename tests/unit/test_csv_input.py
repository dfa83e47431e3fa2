"""What is not a CSV is named as such, with the fix, before pandas sees it."""

from __future__ import annotations

import io

import pytest

from churnguard.domain.csv_files import csv_problem
from churnguard.domain.errors import DataValidationError
from churnguard.domain.training import read_csv


@pytest.mark.parametrize(
    "head, says",
    [
        (b"", "is empty"),
        (b" \n\n", "is empty"),
        (b"PK\x03\x04rest-of-a-zip", "zip archive"),
        (b"\x1f\x8b\x08\x00", "gzip"),
        (b"\xff\xfec\x00u\x00s\x00", "binary (or UTF-16"),
        (b"caf\xe9,Churn\n", "not UTF-8"),
        (b'  {"tenure": 1}', "looks like JSON"),
        (b"[1, 2]", "looks like JSON"),
        (b"customerID;Churn\n1;Yes\n", "separated by semicolons"),
        (b"customerID\tChurn\n", "separated by tabs"),
        (b"just some words\n", "first line has no commas"),
    ],
)
def test_each_kind_of_non_csv_is_named(head, says):
    assert says in csv_problem(head)


def test_a_csv_passes_even_cut_inside_a_multibyte_character():
    head = "customerID,city,Churn\n1,Zürich,Yes\n".encode()
    assert csv_problem(head) is None
    assert csv_problem(head[: head.index("ü".encode()) + 1]) is None  # the sniffed head may end mid-character
    assert csv_problem(b"\xef\xbb\xbfcustomerID,Churn\n") is None  # Excel's UTF-8 byte-order mark


def test_read_csv_names_the_path_and_the_fix(tmp_path):
    with pytest.raises(DataValidationError, match=r"nope.csv does not exist: give the path of a CSV file"):
        read_csv(tmp_path / "nope.csv")
    with pytest.raises(DataValidationError, match=r"is a folder"):
        read_csv(tmp_path)
    (tmp_path / "x.json").write_text('{"a": 1}')
    with pytest.raises(DataValidationError, match=r"x.json looks like JSON"):
        read_csv(str(tmp_path / "x.json"))


def test_read_csv_reads_bytes_as_strings():
    df = read_csv(io.BytesIO(b"customerID,TotalCharges\n1, \n"))
    assert df.to_dict("records") == [{"customerID": "1", "TotalCharges": " "}]


def test_a_ragged_file_is_a_data_error_not_a_pandas_one():
    with pytest.raises(DataValidationError, match="not a readable CSV"):
        read_csv(io.BytesIO(b"a,b\n1,2\n1,2,3,4\n"))
