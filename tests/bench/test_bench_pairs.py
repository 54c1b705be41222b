"""A malformed pairs CSV is one clear error before any model loads."""

import csv
import shutil

import pytest

from imposter.bench.pairs import REQUIRED_COLUMNS, read_pairs
from imposter.cli import main
from imposter.errors import DataError


def copy_pairs(toy_pairs, tmp_path, edit=None, columns=None):
    """A copy of the toy pairs (images and CSV) with ``edit(rows)`` applied; returns the CSV."""
    folder = tmp_path / "pairs"
    shutil.copytree(toy_pairs.parent, folder)
    with open(folder / "pairs.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    if edit:
        edit(rows)
    columns = columns or list(rows[0])
    with open(folder / "pairs.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return folder / "pairs.csv"


def test_reads_rows_in_order_with_paths_resolved(toy_pairs):
    pairs = read_pairs(toy_pairs)
    assert [pair.pair_id for pair in pairs] == ["toy-000", "toy-001"]
    assert pairs[0].source_image == (toy_pairs.parent / "source" / "toy-000.png").resolve()
    assert pairs[0].target_image is not None and pairs[0].target_image.is_file()
    assert pairs[1].driving_keypoints == (toy_pairs.parent / "driving_keypoints" / "toy-001.json").resolve()
    assert pairs[0].target_prompt.endswith(pairs[0].driving_prompt.split(" ", 2)[-1])


def test_absolute_paths_no_target_column_and_a_composed_target_prompt(toy_pairs, tmp_path):
    def edit(rows):
        rows[0]["source_image"] = str(toy_pairs.parent / "source" / "toy-000.png")
        rows[0]["target_prompt"] = ""

    pairs = read_pairs(copy_pairs(toy_pairs, tmp_path, edit, list(REQUIRED_COLUMNS)))
    assert pairs[0].target_image is None
    action = " ".join(pairs[0].driving_prompt.split()[2:])  # toy captions: "a <class> <action>"
    assert pairs[0].target_prompt == f"{pairs[0].source_prompt} {action}"


@pytest.mark.parametrize(
    "edit, columns, message",
    [
        (None, [c for c in REQUIRED_COLUMNS if c != "driving_prompt"], r"lacks the column\(s\) driving_prompt"),
        (lambda rows: rows[1].update(driving_image="driving/nope.png"), None,
         r"line 3 \(pair toy-001\): driving_image 'driving/nope.png' not found at .*nope.png; fix the path"),
        (lambda rows: rows[1].update(pair_id="toy-000"), None,
         r"line 3: pair_id 'toy-000' is also on line 2; give every pair a unique id"),
        (lambda rows: rows[0].update(pair_id="../up"), None, r"pair_id '../up' must start with a letter"),
        (lambda rows: rows[0].update(source_prompt=" "), None, r"source_prompt is empty"),
        (lambda rows: rows[0].update(target_image="source/../pairs.csv"), None, r"is not a readable image"),
        (lambda rows: rows.clear(), list(REQUIRED_COLUMNS), r"holds no pairs"),
        (lambda rows: rows[0].update(source_keypoints="k.json"), None,
         r"line 2 \(pair toy-000\): source_keypoints 'k.json' not found at .*k.json; fix the path"),
    ],
)  # fmt: skip
def test_malformed_files_name_the_row_and_the_fix(toy_pairs, tmp_path, edit, columns, message):
    with pytest.raises(DataError, match=message):
        read_pairs(copy_pairs(toy_pairs, tmp_path, edit, columns))


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="not found; pass --pairs"):
        read_pairs(tmp_path / "pairs.csv")


def test_cli_fails_in_one_line_before_loading_the_model(toy_pairs, tmp_path, capsys):
    broken = copy_pairs(toy_pairs, tmp_path, lambda rows: rows[1].update(pair_id="toy-000"))
    argv = [
        "bench",
        "--pairs",
        str(broken),
        "--model",
        str(tmp_path / "no-model"),
        "--out",
        str(tmp_path / "o"),
    ]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and "unique id" in error and error.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_process_index_out_of_range(toy_pairs, tmp_path, capsys):
    argv = ["bench", "--pairs", str(toy_pairs), "--out", str(tmp_path / "o")]
    assert main([*argv, "--num-processes", "2", "--process-index", "2"]) == 2
    assert "--process-index 2 must be between 0 and" in capsys.readouterr().err
