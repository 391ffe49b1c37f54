"""Datasets ``volume bids`` writes, checked by the official BIDS validators and by pybids.

One dataset holds every session of ``../shared/data/peers`` (each as a subject or session) and a
synthetic session with each kind the classifier covers (anat, multi-echo, magnitude/phase, dwi,
every field-map kind, and ASL through a configuration): the validators run once on it.

Validators: the schema-based one (``bids-validator-deno`` from PyPI, the current validator that
fMRIPrep's container runs) and npm's ``bids-validator`` 1.15 (the legacy line, run with the
machine's Node.js; ``.ci/run`` installs it into ``.tools/``). Each test skips, saying why, when its
validator or node is absent.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import bids_synth as B
import pydicom
import pytest

from volume.jobs.bids import plan_bids

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
PEERS = DATA / "peers"
REPO = Path(__file__).resolve().parents[1]

LEGACY = os.environ.get("VOLUME_BIDS_VALIDATOR") or str(REPO / ".tools" / "node_modules" / ".bin" / "bids-validator")
"""npm's bids-validator (1.x): .ci/run installs it here; the environment variable names another."""

#: Peer sessions: (subject, session, folder under peers/).
PEER_SESSIONS = [
    ("nihsiemens", None, "dcm_qa_nih/In/20180918Si"),
    ("nihge", None, "dcm_qa_nih/In/20180918GE"),
    ("enh", None, "dcm_qa_enh/In"),
    ("stc", None, "dcm_qa_stc/In"),
    ("philipsdwi", None, "dcm_qa_philips_dwi/In"),
    ("ts", None, "dcm_qa_ts/In"),
    ("bit12", None, "dcm_qa_12bit/In"),
]

ASL_CONFIG = {
    "dataset": {"Name": "volume bids test dataset", "Authors": ["volume's tests", "volume's developers"]},
    "rules": [{
        "name": "pcasl", "match": {"Rule": "described-asl"}, "datatype": "perf", "suffix": "asl",
        "sidecar": {"ArterialSpinLabelingType": "PCASL", "PostLabelingDelay": 1.8, "LabelingDuration": 1.8,
                    "BackgroundSuppression": False, "M0Type": "Absent", "TotalAcquiredPairs": 2,
                    "RepetitionTimePreparation": 4.0},
        "aslcontext": ["control", "label", "control", "label"],
    }, {
        "name": "mp2rage fields", "match": {"Rule": "mp2rage"},
        "sidecar": {"RepetitionTimeExcitation": 0.0072, "RepetitionTimePreparation": 5.0, "NumberShots": 176},
    }],
}


def dicom2nifti_cases() -> list[Path]:
    root = PEERS / "dicom2nifti" / "tests" / "data"
    return sorted(p for p in root.glob("*/*/*") if p.is_dir())


def synthetic_session(folder: Path) -> None:
    """Every kind the classifier covers, in one session (acquisition times in order)."""
    B.localizer(folder / "loc", 1)
    B.t1w(folder / "t1", 2, start=100)
    B.t2w(folder / "t2", 3, description="T1_axial_trap", start=200)
    B.mr_series(folder / "flair", number=4, description="t2_flair", sequence=["SE", "IR"], te=90, tr=9000, ti=2500,
                start=300)
    B.mr_series(folder / "pd", number=5, description="pd_tse", sequence="SE", te=12, tr=3000, start=400)
    B.mr_series(folder / "t2s", number=6, description="gre_t2star", sequence="GR", te=20, tr=600, flip=20, start=500)
    for number, ti in ((7, 700.0), (8, 2500.0)):
        B.mr_series(folder / f"mp2rage{number}", number=number, description=f"mp2rage_INV{number - 6}",
                    sequence=["GR", "IR"], variant=["SK", "SP", "MP"], name="*tfl3d1_16", te=2.9, tr=5000, ti=ti,
                    flip=4, acquisition="3D", extra={"ProtocolName": "t1_mp2rage_sag"}, start=600)
    B.mr_series(folder / "uni", number=9, description="mp2rage_UNI", sequence=["GR", "IR"], variant=["SK", "SP", "MP"],
                te=2.9, tr=5000, ti=2500, acquisition="3D", image_type=("DERIVED", "PRIMARY", "M", "ND", "UNI"),
                extra={"ProtocolName": "t1_mp2rage_sag"}, start=600)
    megre = volume_uid()
    for echo, te in ((1, 5.0), (2, 15.0), (3, 25.0)):
        B.mr_series(folder / "megre", number=10, description="me_gre", sequence="GR", te=te, tr=50, flip=15, echo=echo,
                    series_uid=megre, acquisition="3D", start=700)
    B.gre_fieldmap(folder / "grefm", 11, start=800)
    B.se_epi(folder / "sefm_ap", 13, "j", start=900)
    B.se_epi(folder / "sefm_pa", 14, "j-", start=910)
    B.bold(folder / "sbref", 15, description="func_task-nback_run-1_SBRef", volumes=1, start=1000)
    B.bold(folder / "bold1", 16, description="func_task-nback_run-1", start=1010)
    B.bold(folder / "bold1ph", 17, description="func_task-nback_run-1", start=1010,
           image_type=("ORIGINAL", "PRIMARY", "P", "ND"))
    multi = volume_uid()
    for echo, te in ((1, 14.0), (2, 38.0)):
        B.bold(folder / "mebold", 18, description="rest_multiecho", echo=echo, te=te, series_uid=multi,
               start=1100)
    B.dwi(folder / "dwi_b0", 19, description="dMRI_b0_AP", bvalues=(0, 0), ped="j", start=1200)
    B.dwi(folder / "dwi_ref", 20, description="dMRI_SBRef", bvalues=(0,), start=1290)
    B.dwi(folder / "dwi", 21, start=1300)
    B.mr_series(folder / "adc", number=22, description="dMRI_ADC", sequence="EP", te=80,
                image_type=("DERIVED", "PRIMARY", "DIFFUSION", "ADC"), start=1400)
    B.bold(folder / "asl", 23, description="tgse_pcasl", volumes=4, start=1500, acquisition="3D")


def edge_session(folder: Path) -> None:
    """What a session a test never saw may hold: a DWI missing a gradient direction, a bold in two
    reconstructions (ND, DIS2D) whose names cannot hold dir-, an epi pair saved twice, a field map
    whose series are numbered apart (Siemens XA's 9001, 9002, 10001), the magnitudes of a field map
    without its phase, a multi-echo bold split into series, a T1w whose flip angle is 0, an ASL run
    without its labelling fields, a physiological log stored as an image."""
    B.dwi(folder / "dwi_nodir", 2, description="dwi_missing_direction", start=100)
    for path in (folder / "dwi_nodir").iterdir():
        ds = pydicom.dcmread(path)
        if int(ds.TemporalPositionIdentifier) == 3:
            del ds.DiffusionGradientOrientation
            ds.save_as(path, enforce_file_format=True)
    for number, rec in ((3, "ND"), (4, "DIS2D")):
        B.bold(folder / f"bold_{rec}", number, description="task-faces", start=200,
               image_type=("ORIGINAL", "PRIMARY", "M", rec))
    for number, (ped, start) in enumerate((("j", 300.0), ("j-", 310.0), ("j", 300.0)), 5):
        B.se_epi(folder / f"sefm{number}", number, ped, start=start)
    kw = {"description": "gre_field_mapping", "sequence": "GR", "name": "*fm2d2r", "tr": 600.0, "flip": 90.0}
    B.mr_series(folder / "fm1", number=9001, te=10.0, echo=1, start=400.0, **kw)
    B.mr_series(folder / "fm2", number=9002, te=12.46, echo=2, start=400.6, **kw)
    B.mr_series(folder / "fmph", number=10001, te=12.46, echo=2, start=400.6,
                image_type=("ORIGINAL", "PRIMARY", "P", "DIS2D", "MFSPLIT"), **kw)
    lone = volume_uid()
    for echo, te in ((1, 4.92), (2, 7.38)):
        B.mr_series(folder / "fm_lone", number=11, te=te, echo=echo, series_uid=lone, start=500.0,
                    **{**kw, "description": "fmap_lone"})
    for number, (echo, te) in zip((12001, 13001), ((1, 14.0), (2, 38.0)), strict=True):
        B.bold(folder / f"me{number}", number, description="rest_me", echo=echo, te=te, start=600.0)
    B.t1w(folder / "t1", 14, start=700.0)
    for path in (folder / "t1").iterdir():
        ds = pydicom.dcmread(path)
        ds.FlipAngle = 0
        ds.save_as(path, enforce_file_format=True)
    B.bold(folder / "asl", 15, description="asl_2d_tra", volumes=4, start=800.0,
           image_type=("ORIGINAL", "PRIMARY", "ASL", "NONE"))
    B.bold(folder / "physio", 16, description="task-faces_PhysioLog", volumes=1, start=900.0,
           image_type=("ORIGINAL", "PRIMARY", "RAWDATA", "PHYSIO"))


def volume_uid() -> str:
    import pydicom

    return pydicom.uid.generate_uid()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """(root, plans): the dataset built from every peer session and the synthetic session."""
    if not PEERS.is_dir():
        pytest.skip(f"{PEERS} is absent (the peers' test data)")
    work = tmp_path_factory.mktemp("bids")
    root = work / "dataset"
    config = work / "asl.json"
    config.write_text(json.dumps(ASL_CONFIG))
    synthetic_session(work / "synthetic")
    plans = [plan_bids([work / "synthetic"], root, subject="synthetic", session="1", config=config)]
    edge_session(work / "edge")
    plans.append(plan_bids([work / "edge"], root, subject="edge"))
    for subject, session, folder in PEER_SESSIONS:
        plans.append(plan_bids([PEERS / folder], root, subject=subject, session=session))
    for case in dicom2nifti_cases():
        subject = "d2n" + "".join(case.relative_to(case.parents[2]).parts).replace("_", "")
        plans.append(plan_bids([case], root, subject=subject))
    for plan in plans:
        results = plan.write()
        assert all(r.status in ("converted", "omitted") for r in results), [r for r in results if r.status != "converted"]
    return root, plans


def test_the_synthetic_session_holds_every_kind(dataset):
    root, plans = dataset
    written = {(i.datatype, i.suffix) for i in plans[0].items}
    assert {("anat", "T1w"), ("anat", "T2w"), ("anat", "FLAIR"), ("anat", "PDw"), ("anat", "T2starw"),
            ("anat", "MP2RAGE"), ("anat", "UNIT1"), ("anat", "MEGRE"), ("func", "bold"), ("func", "sbref"),
            ("dwi", "dwi"), ("dwi", "sbref"), ("fmap", "magnitude1"), ("fmap", "magnitude2"), ("fmap", "phasediff"),
            ("fmap", "epi"), ("perf", "asl"), ("sourcedata", "")} <= written
    paths = {i.path.rsplit("/", 1)[-1] for i in plans[0].items}
    assert "sub-synthetic_ses-1_task-nback_dir-PA_part-phase_bold" in paths
    assert "sub-synthetic_ses-1_task-rest_dir-PA_echo-2_bold" in paths
    assert "sub-synthetic_ses-1_inv-2_MP2RAGE" in paths
    context = root / "sub-synthetic/ses-1/perf/sub-synthetic_ses-1_dir-PA_aslcontext.tsv"
    assert context.read_text().split() == ["volume_type", "control", "label", "control", "label"]


def test_what_a_session_never_seen_may_hold_goes_where_bids_takes_it(dataset):
    root, plans = dataset
    plan = next(p for p in plans if p.subject == "edge")
    where = {i.stack.id: i for i in plan.items}
    assert where["2"].datatype == "sourcedata" and "bvec" in where["2"].reason  # no .bvec: no BIDS dwi
    assert [where[k].path.rsplit("/", 1)[1] for k in ("3", "4")] == [
        "sub-edge_task-faces_rec-nd_bold", "sub-edge_task-faces_rec-dis2d_bold"]
    assert where["5"].path.endswith("_dir-AP_epi") and where["6"].path.endswith("_dir-PA_epi")
    assert where["7"].datatype == "sourcedata" and "same acquisition as series 5" in where["7"].reason
    assert {where[k].suffix for k in ("9001", "9002", "10001")} == {"magnitude1", "magnitude2", "phasediff"}
    phasediff = json.loads((root / f"{where['10001'].path}.json").read_text())
    assert (phasediff["EchoTime1"], phasediff["EchoTime2"]) == (0.01, 0.01246)
    assert where["11_e1"].rule == where["11_e2"].rule == "fieldmap-incomplete"
    assert [where[k].path.rsplit("/", 1)[1] for k in ("12001", "13001")] == [
        "sub-edge_task-rest_dir-PA_echo-1_bold", "sub-edge_task-rest_dir-PA_echo-2_bold"]
    t1 = json.loads((root / f"{where['14'].path}.json").read_text())
    assert "FlipAngle" not in t1 and "FlipAngle left out: is 0 (BIDS wants above 0)" in where["14"].notes
    assert where["15"].datatype == "sourcedata" and "ArterialSpinLabelingType" in where["15"].reason
    assert where["16"].rule == "derived"


def test_every_stack_convert_writes_is_in_the_dataset(dataset):
    """Each stack convert would write is a file of the dataset or of sourcedata/; only stacks
    convert cannot write (no volume) are left out, and the plan says why."""
    root, plans = dataset
    for plan in plans:
        for item in plan.items:
            if item.stack.problem:
                assert item.datatype == "omit" and item.reason
                continue
            assert (root / f"{item.path}.nii.gz").is_file(), item.path
            assert (root / f"{item.path}.json").is_file(), item.path
        assert len(plan.items) == len({i.stack.id for i in plan.items})


def test_only_dwi_images_get_bval_and_bvec(dataset):
    """BIDS keeps .bval/.bvec beside dwi images only: a dwi sbref (one weighted volume with its
    direction, which volume convert gives a .bval/.bvec) and an epi field map made of b=0 volumes
    have none; every dwi image has both."""
    root, plans = dataset
    for plan in plans:
        for item in plan.items:
            bval, bvec = root / f"{item.path}.bval", root / f"{item.path}.bvec"
            if item.datatype == "dwi" and item.suffix == "dwi":
                assert bval.is_file(), item.path
            else:
                assert not bval.exists() and not bvec.exists(), item.path
    assert any(i.datatype == "dwi" and i.suffix == "sbref" and i.stack.diffusion is not None
               for plan in plans for i in plan.items)


def test_schema_validator_reports_no_error(dataset):
    root, _ = dataset
    exe = shutil.which("bids-validator-deno")
    if exe is None:
        pytest.skip("bids-validator-deno is not installed (pip install bids-validator-deno: the test extra)")
    run = subprocess.run([exe, "--format", "json", str(root)], capture_output=True, text=True, timeout=600)
    report = json.loads(run.stdout)
    errors = [(i["code"], i.get("subCode"), i.get("location")) for i in report["issues"]["issues"]
              if i.get("severity") == "error"]
    assert errors == []


def test_legacy_validator_reports_no_error(dataset):
    root, _ = dataset
    if shutil.which("node") is None:
        pytest.skip("no node on this machine: npm's bids-validator cannot run (.ci/run installs nodejs)")
    if not Path(LEGACY).exists():
        pytest.skip(f"npm's bids-validator is not at {LEGACY} (.ci/run installs it with npm)")
    run = subprocess.run([LEGACY, "--json", str(root)], capture_output=True, text=True, timeout=600)
    report = json.loads(run.stdout)
    errors = [(e["key"], [(f.get("file") or {}).get("relativePath") for f in e["files"]][:3])
              for e in report["issues"]["errors"]]
    assert errors == []


def test_pybids_finds_the_field_map_of_each_run(dataset):
    bids = pytest.importorskip("bids", reason="pybids is not installed (the test extra)")
    root, plans = dataset
    layout = bids.BIDSLayout(str(root), validate=False)
    assert "synthetic" in layout.get_subjects()
    checked = 0
    for plan in plans:
        for item in plan.items:
            source = item.sidecar.get("B0FieldSource")
            if not source or item.suffix != "bold":
                continue
            found = layout.get_fieldmap(str(root / f"{item.path}.nii.gz"), return_list=True)
            assert found, item.path
            maps = {Path(v).name for f in found for k, v in f.items() if k != "suffix"}
            members = [i for i in plan.items if i.sidecar.get("B0FieldIdentifier") == source]
            assert {Path(m.path).name + ".nii.gz" for m in members} & maps
            checked += 1
    assert checked >= 3


def test_dir_comes_from_the_phase_encoding_in_patient_terms(dataset):
    """dcm_qa_nih's Siemens EPIs are described PE=AP, PA, RL, LR: dir- says the same, from
    PhaseEncodingDirection and the image's axes (never from the description)."""
    _, plans = dataset
    plan = next(p for p in plans if p.subject == "nihsiemens")
    for item in plan.items:
        said = item.stack.series_description.split("PE=")[1]
        assert item.entities["dir"] == said
