from flows.etl.ingest import Landed, landed_totals


def test_landed_totals_add_up_every_unit():
    units = [Landed("a", 10, 9, 1, 7, 2), Landed("b", 5, 5, 0, 5, 0)]
    assert landed_totals(units) == {
        "rows": 15, "valid": 14, "quarantined": 1, "inserted": 12, "updated": 2
    }  # fmt: skip
    assert landed_totals([]) == dict.fromkeys(
        ("rows", "valid", "quarantined", "inserted", "updated"), 0
    )
