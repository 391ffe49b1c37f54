"""``volume bids`` and ``volume.plan_bids``: names, links, identity, safety, configuration, CLI.

Sessions are synthetic (tests/bids_synth.py); the validators' verdict on whole datasets is in
tests/test_bids_validate.py, the classifier's rules in tests/test_bids_classify.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import bids_synth as B
import numpy as np
import pydicom
import pytest

import volume
from volume.cli import main
from volume.errors import OutputExistsError, UsageError
from volume.jobs.bids import SOURCE_KEY, plan_bids
from volume.jobs.bids_config import load_config, match_value
from volume.jobs.bids_names import direction_label, task_label
from volume.jobs.bids_spec import (
    ENTITY_ORDER,
    FILES,
    METADATA,
    ValueRule,
    check_entities,
    file_stem,
    value_problem,
)
from volume.phi import is_identity

AXIAL = (1, 0, 0, 0, 1, 0)
SAGITTAL = (0, 1, 0, 0, 0, -1)
CORONAL = (1, 0, 0, 0, 0, -1)


def session(folder: Path, *, start: float = 100.0) -> Path:
    """A small session: a T1w, a spin-echo field-map pair and two runs of one task."""
    B.t1w(folder / "t1", 2, start=start)
    B.se_epi(folder / "ap", 3, "j", start=start + 100)
    B.se_epi(folder / "pa", 4, "j-", start=start + 110)
    B.bold(folder / "run1", 5, description="task-motor_bold", start=start + 200)
    B.bold(folder / "run2", 6, description="task-motor_bold", start=start + 300)
    return folder


@pytest.fixture(scope="module")
def dicom(tmp_path_factory):
    return session(tmp_path_factory.mktemp("dicom"))


def tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` (but the lock) -> its SHA-256."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != ".volume-bids.lock"}


# --- names ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("ped", "iop", "label"), [
    ("j", AXIAL, "AP"), ("j-", AXIAL, "PA"), ("i", AXIAL, "RL"), ("i-", AXIAL, "LR"),
    ("j", SAGITTAL, "SI"), ("j-", SAGITTAL, "IS"), ("i", SAGITTAL, "AP"), ("i-", CORONAL, "LR"),
    ("k", AXIAL, "IS"), ("k-", CORONAL, "PA"),
])
def test_dir_is_the_phase_encoding_in_patient_terms(ped, iop, label):
    """The PE vector in LPS (i: IOP's row direction, j: its column direction, k: their cross
    product) points towards the second letter: +y (posterior) is AP, +x (left) RL, +z (superior) IS."""
    assert direction_label(ped, iop) == label


def test_dir_of_an_oblique_image_follows_its_dominant_axis():
    row = np.array([1.0, 0.0, 0.0])
    col = np.array([0.0, np.cos(0.5), -np.sin(0.5)])  # 29 degrees from posterior towards inferior
    assert direction_label("j", (*row, *col)) == "AP"
    assert direction_label("", AXIAL) == "" and direction_label("j", None) == ""


@pytest.mark.parametrize(("description", "label"), [
    ("rfMRI_REST_AP", "rest"), ("Resting State fMRI", "rest"), ("func_task-nback_run-2", "nback"),
    ("ep2d_bold_motor", "motor"), ("EPI PE=AP", "unknown"), ("Axial EPI-FMRI (Interleaved I to S)", "unknown"),
    ("Zugfahrt", "zugfahrt"), ("REST1 w SMS PF7-8", "rest"),
])
def test_task_label_from_the_description(description, label):
    assert task_label(description)[0] == label


def test_file_names_follow_bids_entity_order():
    entities = {"run": "2", "sub": "01", "dir": "PA", "task": "rest", "ses": "1", "echo": "1", "acq": "mb4"}
    assert file_stem(entities, "bold") == "sub-01_ses-1_task-rest_acq-mb4_dir-PA_run-2_echo-1_bold"
    with pytest.raises(UsageError, match="does not take dir-"):
        check_entities("fmap", "phasediff", {"sub": "01", "dir": "AP"})
    with pytest.raises(UsageError, match="needs task-"):
        check_entities("func", "bold", {"sub": "01"})
    assert "MP2RAGE" in FILES["anat"] and "asl" in FILES["perf"]


def _schema_rule(obj: dict) -> ValueRule | None:
    """A schema metadata object (``objects/metadata``) as a :class:`ValueRule`, None when it is of
    another shape (an object, a format only)."""
    options = obj.get("anyOf", [obj])
    scalar = next((o for o in options if o.get("type") != "array"), None)
    array = next((o for o in options if o.get("type") == "array"), None)
    item = array["items"] if array else scalar
    if not isinstance(item, dict) or "type" not in item:
        return None
    kind = {"number": "numbers", "string": "strings"}[item["type"]] if array else item["type"]
    bound = "exclusiveMinimum" if "exclusiveMinimum" in item else "minimum"
    return ValueRule(kind, item.get(bound), bound == "exclusiveMinimum", item.get("maximum"),
                     tuple(item.get("enum", ())), array.get("minItems") if array else None,
                     bool(array and scalar))


def test_the_spec_tables_agree_with_the_bids_schema():
    """Every file name volume may write is one the BIDS schema allows (entities in its order, its
    required ones present), and each sidecar value rule is the schema's for that field (pybids
    ships the schema: ``bidsschematools``)."""
    schema = pytest.importorskip("bidsschematools.schema", reason="pybids (bidsschematools) is not installed")
    s = schema.load_schema()
    key = {name: ent["name"] for name, ent in s.objects.entities.items()}
    assert [key[e] for e in s.rules.entities if key[e] in ENTITY_ORDER] == list(ENTITY_ORDER)
    allowed: dict[tuple[str, str], set[str]] = {}
    required: dict[tuple[str, str], set[str]] = {}
    for group in s.rules.files.raw.values():
        for rule in group.values():
            for datatype in rule.get("datatypes", ()):
                for suffix in rule.get("suffixes", ()):
                    allowed.setdefault((datatype, suffix), set()).update(key[e] for e in rule.entities)
                    required.setdefault((datatype, suffix), set()).update(
                        key[e] for e, level in rule.entities.items() if level == "required")
    for datatype, suffixes in FILES.items():
        for suffix, (entities, needed) in suffixes.items():
            assert set(entities) <= allowed[(datatype, suffix)], (datatype, suffix)
            assert required[(datatype, suffix)] - {"sub", "ses"} <= set(needed), (datatype, suffix)
    for field_name, rule in METADATA.items():
        shapes = {_schema_rule(o.to_dict()) for o in s.objects.metadata.values() if o["name"] == field_name}
        assert rule in shapes, (field_name, shapes)


@pytest.mark.parametrize(("key", "value", "refused"), [
    ("EchoTime", 0.03, False), ("EchoTime", [0.01, 0.02], False), ("EchoTime", 0, True), ("FlipAngle", 0, True),
    ("FlipAngle", 400, True), ("SliceTiming", [0.0, 0.5], False), ("SliceTiming", [0.0, -0.1], True),
    ("PhaseEncodingDirection", "j-", False), ("PhaseEncodingDirection", "y", True), ("MTState", "no", True),
    ("RepetitionTime", True, True), ("TablePosition", [0, 0], True), ("ImageType", "anything", False),
    ("NumberOfVolumesDiscardedByScanner", 2.5, True),
])
def test_sidecar_values_bids_refuses(key, value, refused):
    assert bool(value_problem(key, value)) is refused


def test_the_plan_names_links_and_explains(dicom, tmp_path):
    plan = plan_bids([dicom], tmp_path / "ds", subject="sub-01", session="A_1")
    assert (plan.subject, plan.session) == ("01", "A1")
    paths = {i.stack.id: i.path for i in plan.items}
    assert paths == {
        "2": "sub-01/ses-A1/anat/sub-01_ses-A1_T1w",
        "3": "sub-01/ses-A1/fmap/sub-01_ses-A1_dir-AP_epi",
        "4": "sub-01/ses-A1/fmap/sub-01_ses-A1_dir-PA_epi",
        "5": "sub-01/ses-A1/func/sub-01_ses-A1_task-motor_dir-PA_run-1_bold",
        "6": "sub-01/ses-A1/func/sub-01_ses-A1_task-motor_dir-PA_run-2_bold",
    }
    items = {i.stack.id: i for i in plan.items}
    ident = items["3"].sidecar["B0FieldIdentifier"]
    assert items["4"].sidecar["B0FieldIdentifier"] == ident
    assert items["5"].sidecar["B0FieldSource"] == ident == items["6"].sidecar["B0FieldSource"]
    assert items["3"].sidecar["IntendedFor"] == [
        "ses-A1/func/sub-01_ses-A1_task-motor_dir-PA_run-1_bold.nii.gz",
        "ses-A1/func/sub-01_ses-A1_task-motor_dir-PA_run-2_bold.nii.gz"]
    assert items["5"].sidecar["TaskName"] == "motor"
    assert items["2"].rule == "t1-inversion"
    table = plan.table()
    assert "[epi-spin-echo]" in table and "dir-PA: PhaseEncodingDirection j-" in table
    assert json.loads(json.dumps(plan.to_dict()))["items"][0]["rule"] == "t1-inversion"


def test_an_epi_pair_on_another_axis_corrects_nothing(tmp_path):
    """A field-map pair encoded left-right does not correct a run encoded anterior-posterior."""
    B.se_epi(tmp_path / "rl", 3, "i", start=100)
    B.se_epi(tmp_path / "lr", 4, "i-", start=110)
    B.bold(tmp_path / "run", 5, start=200)
    items = {i.stack.id: i for i in plan_bids([tmp_path], tmp_path / "ds", subject="x").items}
    assert "B0FieldSource" not in items["5"].sidecar
    assert "IntendedFor" not in items["3"].sidecar and items["3"].sidecar["B0FieldIdentifier"]


def test_field_maps_with_other_shim_settings_correct_nothing(tmp_path):
    """Siemens' protocol carries the shim: a field map shimmed otherwise is not the run's."""
    shim = b"### ASCCONV BEGIN ###\nsGRADSPEC.asGPAData[0].lOffsetX = %d\n### ASCCONV END ###\n"

    def protocol(folder: Path, offset: int) -> None:
        import pydicom

        for path in folder.iterdir():
            ds = pydicom.dcmread(path)
            ds.add_new(0x00210010, "LO", "SIEMENS MR SDS 01")
            ds.add_new(0x00211019, "OB", shim % offset)
            ds.save_as(path, enforce_file_format=True)

    B.se_epi(tmp_path / "ap", 3, "j", start=100)
    B.se_epi(tmp_path / "pa", 4, "j-", start=110)
    B.bold(tmp_path / "run", 5, start=200)
    B.bold(tmp_path / "run2", 6, start=300)
    for name in ("ap", "pa", "run"):
        protocol(tmp_path / name, 10)
    protocol(tmp_path / "run2", 99)
    items = {i.stack.id: i for i in plan_bids([tmp_path], tmp_path / "ds", subject="x").items}
    assert items["5"].sidecar["B0FieldSource"] == items["3"].sidecar["B0FieldIdentifier"]
    assert "B0FieldSource" not in items["6"].sidecar


# --- writing, identity ---------------------------------------------------------------------------


def test_write_files_and_dataset_files_without_identity(dicom, tmp_path):
    root = tmp_path / "ds"
    results = volume.plan_bids([dicom], root, subject="01").write()
    assert {r.status for r in results} == {"converted"}
    description = json.loads((root / "dataset_description.json").read_text())
    assert description["BIDSVersion"] and description["DatasetType"] == "raw"
    assert description["GeneratedBy"][0] == {"Name": "volume", "Version": volume.__version__,
                                             "Description": description["GeneratedBy"][0]["Description"]}
    assert (root / "participants.tsv").read_text().split() == ["participant_id", "sub-01"]
    assert (root / "sub-01" / "sub-01_scans.tsv").read_text().splitlines()[0] == "filename"
    assert (root / "README.md").stat().st_size > 150
    bold = json.loads((root / "sub-01/func/sub-01_task-motor_dir-PA_run-1_bold.json").read_text())
    assert bold["TaskName"] == "motor" and bold["PhaseEncodingDirection"] == "j-"
    assert "AcquisitionTime" not in bold
    assert not [k for k in bold if is_identity(k)]
    assert "PatientName" not in (root / "sub-01/anat/sub-01_T1w.json").read_text()


def test_keep_phi_writes_age_sex_and_times(tmp_path):
    B.t1w(tmp_path / "dicom", 2, start=100, extra={"PatientAge": "034Y", "PatientSex": "F",
                                                   "AcquisitionDate": "20240102"})
    root = tmp_path / "ds"
    plan_bids([tmp_path / "dicom"], root, subject="01", keep_phi=True).write(keep_phi=True)
    rows = [line.split("\t") for line in (root / "participants.tsv").read_text().splitlines()]
    assert rows == [["participant_id", "age", "sex"], ["sub-01", "34", "F"]]
    scans = (root / "sub-01/sub-01_scans.tsv").read_text().splitlines()
    assert scans == ["filename\tacq_time", "anat/sub-01_T1w.nii.gz\t2024-01-02T00:01:40"]
    sidecar = json.loads((root / "sub-01/anat/sub-01_T1w.json").read_text())
    assert sidecar["AcquisitionTime"] == "00:01:40.000000"


# --- safety ------------------------------------------------------------------------------------


def test_a_rerun_skips_what_exists(dicom, tmp_path):
    root = tmp_path / "ds"
    plan_bids([dicom], root, subject="01").write()
    before = tree(root)
    results = plan_bids([dicom], root, subject="01").write()
    assert {r.status for r in results} == {"existing"}
    assert tree(root) == before


def test_another_scan_at_a_planned_name_is_refused_and_force_replaces(dicom, tmp_path):
    root = tmp_path / "ds"
    plan_bids([dicom], root, subject="01").write()
    other = tmp_path / "other"
    B.t1w(other, 2)  # the same protocol, another series
    before = tree(root)
    results = plan_bids([other], root, subject="01").write()
    assert [r.status for r in results] == ["skipped"]
    assert "converted from another series" in results[0].message and "--session" in results[0].message
    assert tree(root) == before
    results = plan_bids([other], root, subject="01").write(force=True)
    assert [r.status for r in results] == ["converted"]
    key = json.loads((root / "sub-01/anat/sub-01_T1w.json").read_text())[SOURCE_KEY]
    assert key == plan_bids([other], root, subject="01").items[0].sidecar[SOURCE_KEY]


def test_adding_a_session_and_a_subject_leaves_what_exists_untouched(dicom, tmp_path):
    root = tmp_path / "ds"
    plan_bids([dicom], root, subject="01", session="1").write()
    first = tree(root)
    plan_bids([dicom], root, subject="01", session="2").write()
    plan_bids([dicom], root, subject="02", session="1").write()
    now = tree(root)
    changed = {k for k in first if now.get(k) != first[k]}
    assert changed == {"participants.tsv"}
    assert (root / "participants.tsv").read_text().split() == ["participant_id", "sub-01", "sub-02"]
    assert {k.split("/")[1] for k in now if k.startswith("sub-01/")} == {"ses-1", "ses-2"}


def test_collisions_are_found_before_anything_is_written(dicom, tmp_path):
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"rules": [{"match": {"SeriesDescription": "SpinEcho*"}, "datatype": "fmap",
                                             "suffix": "epi", "entities": {"dir": "AP", "run": "1"}}]}))
    with pytest.raises(UsageError, match="would both be sub-01/fmap/sub-01_dir-AP_run-1_epi"):
        plan_bids([dicom], tmp_path / "ds", subject="01", config=config)
    assert not (tmp_path / "ds").exists()


CONCURRENT = """
import sys
from volume.jobs.bids import plan_bids
plan_bids([sys.argv[1]], sys.argv[2], subject=sys.argv[3]).write()
"""


def test_two_subjects_converted_at_once_both_land_whole(dicom, tmp_path):
    root = tmp_path / "ds"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    procs = [subprocess.Popen([sys.executable, "-c", CONCURRENT, str(dicom), str(root), s], env=env)
             for s in ("01", "02", "03")]
    assert [p.wait(timeout=300) for p in procs] == [0, 0, 0]
    rows = (root / "participants.tsv").read_text().split()
    assert rows[0] == "participant_id" and sorted(rows[1:]) == ["sub-01", "sub-02", "sub-03"]
    for s in ("01", "02", "03"):
        assert len(list((root / f"sub-{s}").rglob("*.nii.gz"))) == 5
        assert len((root / f"sub-{s}" / f"sub-{s}_scans.tsv").read_text().splitlines()) == 6
    assert not [p for p in root.rglob("*") if p.name.startswith(".volume-") and p.name != ".volume-bids.lock"]


# --- configuration -----------------------------------------------------------------------------


def test_config_rules_override_and_refine_the_guess(dicom, tmp_path):
    config = tmp_path / "rules.toml"
    config.write_text(
        '[dataset]\nName = "Motor study"\n\n'
        '[[rules]]\nname = "motor"\nmatch = { SeriesDescription = "task-motor*", ImageType = ["ORIGINAL"] }\n'
        'datatype = "func"\nsuffix = "bold"\nentities = { task = "fingertap", acq = "mb4" }\n'
        'sidecar = { TaskName = "finger tapping" }\n\n'
        '[[rules]]\nname = "t1 fields"\nmatch = { Rule = "t1-inversion" }\nsidecar = { PulseSequenceType = "MPRAGE" }\n')
    plan = plan_bids([dicom], tmp_path / "ds", subject="01", config=config)
    items = {i.stack.id: i for i in plan.items}
    assert items["5"].path.endswith("sub-01_task-fingertap_acq-mb4_dir-PA_run-1_bold")
    assert items["5"].rule == "config: motor" and items["5"].sidecar["TaskName"] == "finger tapping"
    assert items["2"].rule == "t1-inversion + config: t1 fields" and items["2"].path.endswith("sub-01_T1w")
    plan.write()
    assert json.loads((tmp_path / "ds/dataset_description.json").read_text())["Name"] == "Motor study"
    assert json.loads((tmp_path / "ds/sub-01/anat/sub-01_T1w.json").read_text())["PulseSequenceType"] == "MPRAGE"


@pytest.mark.parametrize(("pattern", "value", "matches"), [
    ("*rest*", "fMRI_REST_AP", True), ("re:^fMRI", "fMRI_REST", True), ("re:^rest", "fMRI_REST", False),
    ("M", ["ORIGINAL", "PRIMARY", "M"], True), (["ORIGINAL", "P"], ["ORIGINAL", "PRIMARY", "M"], False),
    (0.03, 0.030000001, True), (2, 3, False), (True, True, True),
])
def test_config_patterns(pattern, value, matches):
    assert match_value(pattern, value) is matches


@pytest.mark.parametrize(("text", "message"), [
    ('{"rules": [{"match": {}, "datatype": "anat", "suffix": "T1w"}]}', "'match' must name"),
    ('{"rules": [{"match": {"Rule": "x"}, "datatype": "anat", "suffix": "T1", "colour": 1}]}', "unknown key colour"),
    ('{"rules": [{"match": {"Rule": "x"}, "datatype": "anat", "suffix": "T1"}]}', "has no suffix 'T1'"),
    ('{"rules": [{"match": {"Rule": "x"}, "datatype": "func", "suffix": "bold", "entities": {"run": "a"}}]}',
     "wants a number"),
    ('{"rules": [{"match": {"Rule": "x"}, "datatype": "anat", "suffix": "T1w", "entities": {"sub": "2"}}]}',
     "come from --subject"),
    ('{"rule": []}', "unknown key rule"),
    ("{not json", "not valid JSON"),
    ('{"rules": [{"match": {"Rule": "x"}, "sidecar": {"M0Type": "separate"}}]}',
     "sidecar M0Type 'separate' is not one of Separate, Included, Estimate, Absent"),
    ('{"rules": [{"match": {"Rule": "x"}, "sidecar": {"RepetitionTimePreparation": -1}}]}', "BIDS wants at least 0"),
    ('{"rules": [{"match": {"Rule": "x"}, "datatype": "func", "suffix": "bold", "entities": {"rec": "a", '
     '"dir": "AP"}}]}', "cannot hold both rec- and dir-"),
    ('{"rules": [{"match": {"Rule": "x"}, "sidecar": {"RepetitionTime": 2.0}}]}', "RepetitionTime comes from the files"),
    ('{"dataset": {"Authors": "A. Researcher"}, "rules": []}', "Authors must be a list of texts"),
    ('{"dataset": {"BIDSVersion": "1.0"}, "rules": []}', "dataset field 'BIDSVersion' is not one"),
    ('{"dataset": {"Authors": ["Doe, J., Roe, R."]}, "rules": []}', "one author per entry"),
])
def test_bad_configurations_are_refused_by_name(tmp_path, text, message):
    """A rule BIDS or its validators would refuse (a name, a sidecar value) is refused when the file
    is read, naming the rule."""
    path = tmp_path / "c.json"
    path.write_text(text)
    with pytest.raises(UsageError, match=message):
        load_config(path)


def test_a_subject_without_bids_files_is_no_participant(tmp_path):
    """A session whose every stack goes to sourcedata (a localizer only) writes no participant row:
    participants.tsv lists the subjects the dataset holds."""
    B.localizer(tmp_path / "loc", 1)
    plan = plan_bids([tmp_path / "loc"], tmp_path / "ds", subject="02")
    assert [r.status for r in plan.write()] == ["converted"]
    assert (tmp_path / "ds" / "sourcedata" / "sub-02").is_dir()
    assert not (tmp_path / "ds" / "participants.tsv").exists() and not (tmp_path / "ds" / "sub-02").exists()


def test_asl_fields_bids_checks_against_each_other(tmp_path):
    """A configured ASL series whose per-volume field has another length than its volumes, or whose
    M0Type says Separate with no M0 scan in the dataset, goes to sourcedata saying why."""
    B.bold(tmp_path / "asl", 7, description="pcasl", volumes=4, acquisition="3D")
    fields = {"ArterialSpinLabelingType": "PCASL", "LabelingDuration": 1.8, "BackgroundSuppression": False,
              "TotalAcquiredPairs": 2, "RepetitionTimePreparation": 4.0}
    reasons = []
    for extra in ({"PostLabelingDelay": [1.8, 1.8], "M0Type": "Absent"}, {"PostLabelingDelay": 1.8, "M0Type": "Separate"},
                  {"PostLabelingDelay": [1.8] * 4, "M0Type": "Absent"}):
        rule = {"name": "asl", "match": {"Rule": "described-asl"}, "datatype": "perf", "suffix": "asl",
                "sidecar": {**fields, **extra}, "aslcontext": ["control", "label"] * 2}
        config = tmp_path / "c.json"
        config.write_text(json.dumps({"rules": [rule]}))
        [item] = plan_bids([tmp_path / "asl"], tmp_path / "ds", subject="01", config=config).items
        reasons.append(item.reason)
    assert reasons == ["ASL: PostLabelingDelay must hold one value, or one per volume (4)",
                       "ASL: M0Type Separate, but no M0 scan of it is in the dataset (BIDS requires one then)", ""]


def test_asl_without_its_fields_goes_to_sourcedata_and_says_which(tmp_path):
    B.bold(tmp_path / "asl", 7, description="pcasl", volumes=4, acquisition="3D")
    [item] = plan_bids([tmp_path], tmp_path / "ds", subject="01").items
    assert item.datatype == "sourcedata" and item.path == "sourcedata/sub-01/7_pcasl"
    assert item.reason.startswith("ASL: ArterialSpinLabelingType, PostLabelingDelay")
    assert "would be perf/asl" in item.notes


# --- command line --------------------------------------------------------------------------------


def run(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_plan_writes_nothing_and_json(dicom, tmp_path, capsys):
    root = tmp_path / "ds"
    code, out, err = run(["bids", str(dicom), "-o", str(root), "--subject", "01", "--plan"], capsys)
    assert code == 0 and not root.exists()
    assert "sub-01/func/sub-01_task-motor_dir-PA_run-2_bold  [bold]" in out
    code, out, _ = run(["bids", str(dicom), "-o", str(root), "--subject", "01", "--plan", "--json"], capsys)
    assert code == 0 and len(json.loads(out)["items"]) == 5


def test_cli_writes_reruns_and_refuses(dicom, tmp_path, capsys):
    root = tmp_path / "ds"
    code, out, err = run(["bids", str(dicom), "-o", str(root), "--subject", "01"], capsys)
    assert code == 0 and len(out.splitlines()) == 10 and "converted 5" in err
    code, out, err = run(["bids", str(dicom), "-o", str(root), "--subject", "01"], capsys)
    assert code == 0 and out == "" and "already there 5" in err
    other = tmp_path / "other"
    B.t1w(other, 2)
    code, out, err = run(["bids", str(other), "-o", str(root), "--subject", "01"], capsys)
    assert code == OutputExistsError.exit_code and "skipped" in err
    code, _, err = run(["bids", str(tmp_path / "missing"), "-o", str(root), "--subject", "01"], capsys)
    assert code == 2 and "no such file or folder" in err
    code, _, err = run(["bids", str(dicom), "-o", str(root), "--subject", "_-"], capsys)
    assert code == 2 and "letters or digits" in err


def test_an_image_without_its_sidecar_is_not_taken_for_done(dicom, tmp_path):
    root = tmp_path / "ds"
    plan_bids([dicom], root, subject="01").write()
    (root / "sub-01/anat/sub-01_T1w.json").unlink()
    results = {r.stack_id: r for r in plan_bids([dicom], root, subject="01").write()}
    assert results["2"].status == "skipped" and "without its sidecar" in results["2"].message
    assert plan_bids([dicom], root, subject="01").write(force=True)[0].status == "converted"
    assert (root / "sub-01/anat/sub-01_T1w.json").is_file()


def test_a_stack_whose_headers_cannot_be_read_goes_to_sourcedata(dicom, tmp_path, monkeypatch):
    import volume.jobs.bids as job

    real = job.stack_facts

    def failing(stack, sidecar, index=0):
        if stack.id == "2":
            raise ValueError("broken private element")
        return real(stack, sidecar, index)

    monkeypatch.setattr(job, "stack_facts", failing)
    items = {i.stack.id: i for i in plan_bids([dicom], tmp_path / "ds", subject="01").items}
    assert items["2"].datatype == "sourcedata" and "broken private element" in items["2"].reason
    assert items["5"].path.endswith("task-motor_dir-PA_run-1_bold")


def test_field_maps_name_only_the_runs_that_were_written(dicom, tmp_path, monkeypatch):
    import volume.jobs.bids as job
    from volume.jobs.convert import ConvertResult

    real = job.convert_stack

    def convert(stack, *args, **kw):
        if stack.id == "5":
            return ConvertResult(stack.id, "x", "failed", message="decoder crashed")
        return real(stack, *args, **kw)

    monkeypatch.setattr(job, "convert_stack", convert)
    root = tmp_path / "ds"
    results = plan_bids([dicom], root, subject="01").write()
    assert [r.status for r in results if r.stack_id == "5"] == ["failed"]
    epi = json.loads((root / "sub-01/fmap/sub-01_dir-AP_epi.json").read_text())
    assert epi["IntendedFor"] == ["func/sub-01_task-motor_dir-PA_run-2_bold.nii.gz"]
    scans = (root / "sub-01/sub-01_scans.tsv").read_text()
    assert "run-2_bold" in scans and "run-1_bold" not in scans


def test_fields_that_contradict_the_repetition_time_are_left_out_with_a_note(tmp_path):
    """BIDS checks TR >= EffectiveEchoSpacing x phase-encoding lines: a sidecar that breaks it
    loses EffectiveEchoSpacing (the plan says so) rather than failing the dataset."""
    B.mr_series(tmp_path, number=9, description="fast_epi", volumes=3, sequence="EP", name="epfid2d1_8", te=10,
                tr=20, ped="j-")
    [item] = plan_bids([tmp_path], tmp_path / "ds", subject="01").items
    assert item.suffix == "bold" and item.facts.sidecar["EffectiveEchoSpacing"] * 8 > 0.02
    assert item.sidecar["EffectiveEchoSpacing"] is None
    assert any(n.startswith("EffectiveEchoSpacing left out") for n in item.notes)


def test_repeats_are_runs_and_copies_are_not(tmp_path):
    """Two series of one protocol acquired minutes apart are two runs; acquired together (a copy,
    the same images saved twice) the second goes to sourcedata saying so; without acquisition
    times, two series of one protocol are repeats (runs), never taken for copies."""
    B.t1w(tmp_path / "a", 5, start=100.0)
    B.t1w(tmp_path / "b", 6, start=400.0)
    B.t1w(tmp_path / "c", 7, start=400.0)
    items = {i.stack.id: i for i in plan_bids([tmp_path], tmp_path / "ds", subject="01").items}
    assert items["5"].path.endswith("_run-1_T1w") and items["6"].path.endswith("_run-2_T1w")
    assert items["7"].datatype == "sourcedata" and "the same acquisition as series 6" in items["7"].reason
    for path in tmp_path.rglob("*"):
        if path.is_file() and "ds" not in path.parts:
            ds = pydicom.dcmread(path)
            del ds.AcquisitionTime
            ds.save_as(path, enforce_file_format=True)
    items = {i.stack.id: i for i in plan_bids([tmp_path], tmp_path / "ds2", subject="01").items}
    assert [items[k].path.rsplit("_", 2)[-2] for k in "567"] == ["run-1", "run-2", "run-3"]


@pytest.mark.parametrize(("field", "value", "why"), [
    ("FlipAngle", 0, "FlipAngle left out: is 0 (BIDS wants above 0)"),
    ("EchoTime", 0, "EchoTime left out: is 0 (BIDS wants above 0)"),
    ("InversionTime", 0, "InversionTime left out: is 0 (BIDS wants above 0)"),
])
def test_header_values_bids_refuses_are_left_out_with_a_note(tmp_path, field, value, why):
    """A value BIDS refuses (Philips writes InversionTime 0 for "no inversion", some files an echo
    time or flip angle of 0) is left out of the dataset's sidecar, with a note, not written."""
    B.bold(tmp_path / "in", 3, extra={field: value})
    plan = plan_bids([tmp_path / "in"], tmp_path / "ds", subject="01")
    [item] = plan.items
    assert item.is_bids and why in item.notes and item.sidecar[field] is None
    plan.write()
    assert field not in json.loads((tmp_path / "ds" / f"{item.path}.json").read_text())


def test_an_epi_field_map_whose_readout_contradicts_its_timing_goes_to_sourcedata(tmp_path, monkeypatch):
    """EffectiveEchoSpacing not below TotalReadoutTime: the files do not say which is wrong, so
    neither is kept, and an epi field map (BIDS requires one of them) goes to sourcedata."""
    import volume.jobs.bids as bids_job

    real = bids_job.sidecar_fields

    def contradicting(stack):
        return {**real(stack), "EffectiveEchoSpacing": 0.05, "TotalReadoutTime": 0.04}

    monkeypatch.setattr(bids_job, "sidecar_fields", contradicting)
    B.se_epi(tmp_path / "ap", 3, "j", start=100)
    [item] = plan_bids([tmp_path / "ap"], tmp_path / "ds", subject="01").items
    assert item.datatype == "sourcedata" and item.notes == ["would be fmap/epi"]
    assert "EffectiveEchoSpacing 0.05 s is not below TotalReadoutTime 0.04 s" in item.reason


def test_slice_times_of_another_count_than_the_slices_are_left_out(tmp_path, monkeypatch):
    """SliceTiming that does not hold one time per slice describes no slice of the image: left out
    of the dataset's sidecar with a note (BIDS warns; fMRIPrep would misuse it)."""
    import volume.jobs.bids as bids_job

    real = bids_job.sidecar_fields
    monkeypatch.setattr(bids_job, "sidecar_fields", lambda stack: {**real(stack), "SliceTiming": [0.0, 0.5, 1.0]})
    B.bold(tmp_path / "run", 3, description="task-motor", start=100)
    [item] = plan_bids([tmp_path / "run"], tmp_path / "ds", subject="01").items
    assert item.suffix == "bold" and item.sidecar["SliceTiming"] is None
    assert "SliceTiming left out: holds 3 times for 4 slices" in item.notes


def test_acq_is_what_a_protocols_runs_share_not_the_first_runs_slice_order(tmp_path):
    """Two protocols of one task (their grids differ), the first's runs described by their slice order
    (dcm2niix's GE test session): ``acq-`` names each protocol by the words its runs' descriptions
    begin with, never one run's "Interleaved" on a sequential run."""
    src = tmp_path / "dicom"
    B.bold(src / "a", 4, description="Axial EPI-FMRI (Interleaved I to S)", start=100.0)
    B.bold(src / "b", 5, description="Axial EPI-FMRI (Sequential I to S)", start=200.0)
    B.bold(src / "c", 6, description="EPI PE=AP", start=300.0, shape=(4, 12, 10))
    plan = plan_bids([src], tmp_path / "ds", subject="01")
    names = {i.stack.id: Path(i.path).name for i in plan.items}
    assert names["4"] == "sub-01_task-unknown_acq-axialepifmri_dir-PA_run-1_bold"
    assert names["5"] == "sub-01_task-unknown_acq-axialepifmri_dir-PA_run-2_bold"
    assert names["6"] == "sub-01_task-unknown_acq-epi_dir-PA_bold"
