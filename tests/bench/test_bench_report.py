"""The report's table says how many pairs a cell averages when that is fewer than the bench's."""

from imposter.bench.report import markdown_report, summarize


def record(pair, method, metrics):
    return {"pair_id": pair, "method": method, "seed": 0, "metrics": metrics, "settings": {"model": "toy"}}


def test_cells_over_fewer_pairs_show_their_count():
    records = [
        record("p0", "imposter-guided", {"clip": 0.3, "dino": 0.5}),
        record("p1", "imposter-guided", {"clip": 0.4, "dino": 0.6}),
        record("p2", "imposter-guided", {"clip": 0.5}),  # dino failed to load when this pair ran
        record("p0", "hiper", {"clip": 0.2, "dino": 0.4}),
    ]
    table = markdown_report(summarize(records), records).split("## Settings")[0]
    rows = {
        line.split(" | ")[0].strip("| "): line.split(" | ")
        for line in table.splitlines()
        if line.startswith(("| imposter", "| hiper"))
    }
    clip, dino = rows["imposter-guided"][2], rows["imposter-guided"][3]
    assert "(n =" not in clip and dino.startswith("0.5500") and "(n = 2)" in dino
    assert "(n = 1)" in rows["hiper"][2] and "(n = 1)" in rows["hiper"][3]


def test_the_settings_table_says_where_sampling_starts():
    records = [record("p0", "imposter-guided", {"clip": 0.3}), record("p0", "imposter-sdedit", {"clip": 0.4})]
    records[1]["settings"]["sampling"] = {"driving_strength": 0.6}
    settings = markdown_report(summarize(records), records).split("## Settings")[1]
    header, _, *rows = [line for line in settings.splitlines() if line.startswith("|")]
    assert header.rstrip(" |").endswith("img2img strength")
    assert rows[0].endswith("| – |") and rows[1].endswith("| 0.6 |")  # pure noise; img2img at 0.6
