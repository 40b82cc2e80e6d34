"""An analyst exports the history to Parquet and CSV: by month, versioned, with no personal data."""

from __future__ import annotations

import asyncio
import csv
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from shared.analytics.export import (
    MANIFEST,
    Exporter,
    ExportNotReadable,
    export,
    read_manifest,
)
from shared.analytics.replay import Batch, Replay
from shared.kernel.privacy import REDACTED_ID, REDACTED_PHONE, REDACTED_PLATE
from shared.settings import Settings
from tests.analytics.support import (
    HARDSHIP,
    HUAMU,
    PHONE,
    CaseStory,
    at,
    month_of_march_stories,
    publish,
)


async def test_per_type_parquet_by_month_with_versions_and_no_personal_data(
        settings: Settings, tmp_path: Path) -> None:
    stories = month_of_march_stories()
    published = await publish(settings, stories)

    result = await export(settings, tmp_path / "x")
    assert result.events == published and not result.stopped

    root = tmp_path / "x"
    manifest = read_manifest(root)
    assert manifest["contracts"]["ConcernsNoted"]["version"] == 2
    assert sum(f["rows"] for f in manifest["files"]) == published
    months = {(f["table"], f["month"]) for f in manifest["files"]}
    assert ("CaseOpened", "2026-02") in months and ("CaseOpened", "2026-03") in months

    opened = pq.read_table(root / "CaseOpened").to_pylist()  # hive month= partitions
    assert len(opened) == len(stories)
    assert "resident_id" not in opened[0], "the opaque resident id is never exported"
    assert {"payload_center_id", "center_id", "clerk_id", "stream_seq"} <= set(opened[0])

    concerns_file = next(f for f in manifest["files"] if f["table"] == "ConcernsNoted"
                         and f["month"] == "2026-03")
    meta = pq.read_schema(root / concerns_file["path"]).metadata
    assert meta[b"sixstep.schema_version"] == b"2"
    concerns = pq.read_table(root / "ConcernsNoted").to_pylist()
    v1 = [r for r in concerns if r["stored_version"] == 1]
    assert len(v1) == 1 and v1[0]["schema_version"] == 2 and v1[0]["needs_defusing"] is True
    assert all(r["needs"] == ["生活费"] for r in concerns)

    # The resident said a phone number at the counter; this event predates the redaction
    # rule (it was put on the log as is), and the export still never carries it.
    heard = pq.read_table(root / "RequestHeard").to_pylist()
    words = " ".join(r["words"] for r in heard)
    assert PHONE not in words and REDACTED_PHONE in words
    for path in root.rglob("*.parquet"):
        assert PHONE.encode() not in path.read_bytes()


async def test_wide_csv_has_every_event_in_one_table(settings: Settings,
                                                     tmp_path: Path) -> None:
    published = await publish(settings, month_of_march_stories())
    root = tmp_path / "wide"
    result = await export(settings, root, fmt="csv", layout="wide")
    assert result.events == published
    rows = []
    for path in sorted(root.rglob("*.csv")):
        assert path.parent.name.startswith("month=")
        with path.open(newline="") as f:
            rows += list(csv.DictReader(f))
    assert len(rows) == published
    assert {"type", "schema_version", "stored_version", "needs_defusing", "outcome",
            "words"} <= set(
        rows[0])
    assert "resident_id" not in rows[0]
    assert all(PHONE not in r["words"] for r in rows)
    needs = [json.loads(r["needs"]) for r in rows if r["type"] == "ConcernsNoted"]
    assert needs and all(n == ["生活费"] for n in needs)


async def test_an_interrupted_export_resumes_without_duplicates(settings: Settings,
                                                                tmp_path: Path) -> None:
    published = await publish(settings, month_of_march_stories())
    root = tmp_path / "resumed"
    stop = asyncio.Event()

    def stop_after_two(replay: Replay, batch: Batch) -> None:
        if replay.scanned >= 16:
            stop.set()

    first = await Exporter(settings, root, batch_size=8, stop=stop, commit_every=5,
                           on_batch=stop_after_two).run()
    assert first.stopped and 0 < first.events < published
    # Debris of a crash in the next segment: an unfinished file the manifest does not list.
    stray = root / "CaseOpened" / "month=2026-03" / "part-999999999999-0001.parquet.tmp"
    stray.write_bytes(b"half a file")

    second = await export(settings, root, batch_size=8)
    assert second.resumed_from == first.last_seq + 1
    assert first.events + second.events == published
    assert not stray.exists()
    seqs = sorted(s for path in root.rglob("*.parquet")
                  for s in pq.read_table(path, columns=["stream_seq"]).column(0).to_pylist())
    assert seqs == list(range(1, published + 1))
    assert json.loads((root / MANIFEST).read_text())["completed_at"]

    # An export begun by a sixstep that wrote optional moments as JSON text (export version
    # 1) is not resumed with typed files beside its own: another folder, or --restart.
    manifest = json.loads((root / MANIFEST).read_text())
    (root / MANIFEST).write_text(json.dumps({**manifest, "export_version": 1}))
    with pytest.raises(ValueError, match="export_version=1"):
        await export(settings, root, batch_size=8)


async def test_an_export_into_a_folder_of_other_files_is_refused_and_deletes_nothing(
        settings: Settings, tmp_path: Path) -> None:
    # An analyst types the parent folder (`sixstep sql /tmp --export`): it holds another
    # export and someone's notes. Starting an export there deleted every part-* file beneath.
    other = tmp_path / "march" / "CaseOpened" / "month=2026-03" / "part-000000000001-0001.parquet"
    other.parent.mkdir(parents=True)
    other.write_bytes(b"someone's export")
    mine = tmp_path / "part-1-notes.txt"
    mine.write_text("notes")
    with pytest.raises(ValueError, match=r"not an export .* not empty"):
        await export(settings, tmp_path)
    with pytest.raises(ValueError, match=r"not an export .* not empty"):
        await Exporter(settings, tmp_path).run(restart=True)
    assert other.read_bytes() == b"someone's export" and mine.read_text() == "notes"
    assert not (tmp_path / MANIFEST).exists()
    # A file typed for the folder: said so, not a traceback; nor read as an export.
    with pytest.raises(ValueError, match="is a file, not a folder"):
        await export(settings, mine)
    with pytest.raises(ExportNotReadable, match="is not an export"):
        read_manifest(mine)


async def test_an_empty_volume_or_a_folder_a_mac_has_shown_is_exported_into(
        settings: Settings, tmp_path: Path) -> None:
    # A disk mounted for the export (its lost+found), a folder Finder has opened (.DS_Store,
    # also inside a table's folder an export stopped before its first manifest left, with a
    # part it did not finish): nobody's data, refused as "not empty" before.
    (tmp_path / "lost+found").mkdir()
    (tmp_path / ".DS_Store").write_bytes(b"finder")
    left = tmp_path / "CaseOpened" / "month=2026-03" / "part-000000000001-0001.parquet.tmp"
    left.parent.mkdir(parents=True)
    left.write_bytes(b"unfinished")
    (tmp_path / "CaseOpened" / ".DS_Store").write_bytes(b"finder")
    published = await publish(settings, month_of_march_stories()[:1])
    result = await export(settings, tmp_path)
    assert result.events == published and not result.stopped
    assert not left.exists(), "the stopped export's own remains are cleaned"
    assert (tmp_path / "lost+found").is_dir() and (tmp_path / ".DS_Store").exists()


async def test_no_column_of_an_export_holds_a_residents_opaque_id(settings: Settings,
                                                                  tmp_path: Path) -> None:
    """Not ``resident_id`` alone: the applicant a case names (the resident themselves when
    they came for themselves), and the aggregate of a resident's own record (their consent,
    their need for more care, their erasure). Any of them would let an analyst join a
    vulnerable resident's record to their cases."""
    from services.intake.main import create_app
    from shared.security.principals import Role
    from tests.support import TEST_CENTER, headers, register_resident, running, wait_until

    async with running(create_app(settings), role=Role.SUPERVISOR) as intake:
        beneficiary = await register_resident(intake)
        applicant = await register_resident(intake)
        r = await intake.put(f"/residents/{beneficiary}/facts", headers=headers("facts-export"),
                             json={"facts": ["lives_alone"], "consent": True})
        assert r.status_code == 200, r.text
        for n, body in enumerate(({"resident_id": beneficiary},
                                  {"resident_id": beneficiary, "applicant_id": applicant,
                                   "relation": "child", "proof_seen": "household_register"})):
            r = await intake.post("/cases", headers=headers(f"export-open-{n}"), json={
                "center_id": TEST_CENTER, "counter_id": "window-3",
                "service_item": "SA-HARDSHIP-SUBSIDY", **body})
            assert r.status_code == 201, r.text
        r = await intake.delete(f"/residents/{applicant}")
        assert r.status_code == 200, r.text

        async def all_on_the_stream() -> bool:
            from tests.support import stream_envelopes
            types = [e.type for e in await stream_envelopes(settings)]
            return types.count("CaseOpened") == 2 and "ResidentErased" in types \
                and "CareNeedChanged" in types
        await wait_until(all_on_the_stream, what="the residents' and the cases' events")

    for fmt, layout in (("parquet", "per-type"), ("csv", "wide")):
        root = tmp_path / fmt
        await export(settings, root, fmt=fmt, layout=layout)
        files = list(root.rglob(f"*.{fmt}"))
        assert files
        for path in files:  # every value, as read back (Parquet pages are compressed)
            text = (path.read_text(encoding="utf-8") if fmt == "csv"
                    else str(pq.read_table(path).to_pylist()))
            for resident in (beneficiary, applicant):
                assert resident not in text, (fmt, path.parent.parent.name)
    opened = pq.read_table(tmp_path / "parquet" / "CaseOpened").to_pylist()
    assert sorted(r["applicant_id_known"] for r in opened) == [True, True]
    cared = pq.read_table(tmp_path / "parquet" / "CareNeedChanged").to_pylist()
    assert cared and all(r["aggregate_id"] is None for r in cared)


async def test_a_plate_and_numbers_parted_by_semicolons_logged_before_their_rule_are_not_exported(
        settings: Settings, tmp_path: Path) -> None:
    """Events put on the log before the scrubbing knew licence plates and numbers whose
    groups a clerk parted with a semicolon, a wave dash or a line end: the export scrubs them
    on the way out. Written at 23:30 on 31 December in Shanghai (15:30 UTC) and in 2027: each
    lands in its center-clock month."""
    said = "车牌沪A·52917，电话138；0013；8000，证件310115～19850312～123X，座机021\n5432\n1234"
    stories = [CaseStory(HUAMU, HARDSHIP, at("2026-12-31", 23, 30), words=said),
               CaseStory(HUAMU, HARDSHIP, at("2027-01-04", 9), words=said)]
    published = await publish(settings, stories)
    want = (f"车牌{REDACTED_PLATE}，电话{REDACTED_PHONE}，证件{REDACTED_ID}，"
            f"座机{REDACTED_PHONE}")
    clear = ("52917", "0013", "19850312", "5432")

    result = await export(settings, tmp_path / "p")
    assert result.events == published
    files = [f for f in read_manifest(tmp_path / "p")["files"] if f["table"] == "RequestHeard"]
    assert sorted(f["month"] for f in files) == ["2026-12", "2027-01"]
    heard = pq.read_table(tmp_path / "p" / "RequestHeard").to_pylist()
    assert [r["words"] for r in heard] == [want, want]

    result = await export(settings, tmp_path / "c", fmt="csv", layout="wide")
    assert result.events == published
    exported = "".join(path.read_text() for path in (tmp_path / "c").rglob("*.csv"))
    assert want in exported and not [c for c in clear if c in exported]
