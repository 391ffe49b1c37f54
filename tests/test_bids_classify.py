"""The BIDS classifier, rule by rule, on synthetic headers (volume.dicom.classify).

Each case writes a small session whose headers hold exactly the facts a rule reads, scans it,
and checks which rule decides for the stack it names, and where the stack goes. The traps of
issue 22 are cases too: a "T1" in the description of a T2 spin echo, a bold of one volume, a
DWI series of b=0 volumes only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import bids_synth as B
import pydicom
import pytest
from pydicom.dataset import Dataset
from synth import write_series

import volume
from volume.dicom.bids import sidecar_fields
from volume.dicom.classify import RULES, check_rules, classify, rules_table, session_facts, stack_facts

ASCCONV_TE = b"### ASCCONV BEGIN ###\nalTE[0] = 4920\nalTE[1] = 7380\n### ASCCONV END ###\n"


def decisions(folder: Path) -> dict[str, tuple[str, str, str]]:
    """Stack id -> (rule, datatype, suffix) for every stack under ``folder``."""
    found = volume.scan(folder)
    facts = session_facts([stack_facts(s, sidecar_fields(s) if not s.problem else {}, k)
                           for k, s in enumerate(found.stacks)])
    out = {}
    for f in facts:
        d = classify(f)
        out[f.stack_id] = (d.rule, d.datatype, d.suffix)
    return out


def _hz_map(folder: Path, number: int) -> None:
    """One series: a magnitude (TE 2 ms) and a field map in Hz (RealWorldValueMapping, TE 0)."""
    uid = pydicom.uid.generate_uid()
    B.mr_series(folder, number=number, description="B0map", sequence="GR", te=2.0, tr=10.0, series_uid=uid,
                acquisition="3D")
    unit = Dataset()
    unit.CodeValue = "Hz"
    unit.CodingSchemeDesignator = "UCUM"
    mapping = Dataset()
    mapping.RealWorldValueSlope = 1.0
    mapping.RealWorldValueIntercept = 0.0
    mapping.MeasurementUnitsCodeSequence = [unit]
    B.mr_series(folder, number=number, description="B0map", sequence="GR", te=0.0, tr=10.0, series_uid=uid,
                acquisition="3D", extra={"RealWorldValueMappingSequence": [mapping]})


def _no_geometry(folder: Path) -> None:
    B.t2w(folder, 5)
    for path in folder.iterdir():
        ds = pydicom.dcmread(path)
        del ds.ImagePositionPatient
        ds.save_as(path, enforce_file_format=True)


def _phasediff_with_protocol(folder: Path) -> None:
    B.gre_fieldmap(folder, 4)
    for path in folder.iterdir():
        ds = pydicom.dcmread(path)
        if "P" in ds.ImageType:
            ds.add_new(0x00210010, "LO", "SIEMENS MR SDS 01")
            ds.add_new(0x00211019, "OB", ASCCONV_TE)
            ds.save_as(path, enforce_file_format=True)


def _two_echo_phase(folder: Path) -> None:
    uid = pydicom.uid.generate_uid()
    for echo, te in ((1, 4.92), (2, 7.38)):
        B.mr_series(folder, number=9, description="fmap_two_phases", sequence="GR", name="*fm2d2r", te=te, tr=500,
                    echo=echo, series_uid=uid)
        B.mr_series(folder, number=9, description="fmap_two_phases", sequence="GR", name="*fm2d2r", te=te, tr=500,
                    echo=echo, series_uid=uid, image_type=("ORIGINAL", "PRIMARY", "P", "ND"))


def _fieldmap_phase_only(folder: Path) -> None:
    """A Siemens field map's phase series without its magnitudes or protocol: no EchoTime1/2."""
    B.mr_series(folder, number=5, description="gre_field_mapping", sequence="GR", variant="SP", name="*fm2d2r",
                te=7.38, tr=500, flip=60, echo=2, image_type=("ORIGINAL", "PRIMARY", "P", "ND"))


def _mp2rage(folder: Path) -> None:
    for number, ti in ((3, 700.0), (4, 2500.0)):
        B.mr_series(folder, number=number, description=f"mp2rage_INV{number - 2}", sequence=["GR", "IR"],
                    variant=["SK", "SP", "MP"], name="*tfl3d1_16", te=2.9, tr=5000, ti=ti, flip=4,
                    acquisition="3D", extra={"ProtocolName": "t1_mp2rage_sag"})


def _echoes(folder: Path, sequence: str, times: tuple[float, ...], name: str) -> None:
    uid = pydicom.uid.generate_uid()
    for k, te in enumerate(times):
        B.mr_series(folder, number=6, description="multi_echo", sequence=sequence, name=name, te=te, tr=50 if
                    sequence == "GR" else 3000, flip=15, echo=k + 1, series_uid=uid, acquisition="3D")


def _ct(folder: Path) -> None:
    write_series(folder, modality="CT", series_number=2, description="head CT")


# (rule, builder, stack id, datatype, suffix): the builder writes a session into a folder.
CASES: list[tuple[str, Callable[[Path], object], str, str, str]] = [
    ("not-convertible", _no_geometry, "5", "omit", ""),
    ("not-mr", _ct, "2", "sourcedata", ""),
    ("localizer", lambda d: B.localizer(d, 1), "1", "sourcedata", ""),
    ("scanner-diffusion-map", lambda d: B.mr_series(d, number=7, description="dwi_ADC", sequence="EP", te=80,
     image_type=("DERIVED", "PRIMARY", "DIFFUSION", "ADC")), "7", "sourcedata", ""),
    ("derived", lambda d: B.mr_series(d, number=8, description="t1_mpr_cor", sequence="GR", te=3,
     image_type=("DERIVED", "SECONDARY", "MPR")), "8", "sourcedata", ""),
    ("described-localizer", lambda d: B.mr_series(d, number=1, description="AAHead_Scout", sequence="GR",
     name="*fl3d1", te=1.4, tr=3.2, flip=8, acquisition="3D"), "1", "sourcedata", ""),
    ("dwi", lambda d: B.dwi(d, 12), "12", "dwi", "dwi"),
    ("dwi-one-volume", lambda d: B.dwi(d, 12, bvalues=(1000,)), "12", "sourcedata", ""),
    ("dwi-sbref", lambda d: (B.dwi(d / "ref", 11, description="dMRI_SBRef", bvalues=(0,), start=100),
                             B.dwi(d / "dwi", 12, start=200)), "11", "dwi", "sbref"),
    ("dwi-b0-epi", lambda d: B.dwi(d, 11, description="dMRI_AP", bvalues=(0, 0), ped="j"), "11", "fmap", "epi"),
    ("fieldmap-hz", lambda d: _hz_map(d, 13), "13_fieldmaphz", "fmap", "fieldmap"),
    ("fieldmap-magnitude", lambda d: _hz_map(d, 13), "13_e1", "fmap", "magnitude"),
    ("phasediff", _phasediff_with_protocol, "5", "fmap", "phasediff"),
    ("phase-echoes", _two_echo_phase, "9_e2_ph", "fmap", "phase2"),
    ("phasediff-magnitudes", lambda d: B.gre_fieldmap(d, 4), "5", "fmap", "phasediff"),
    ("fieldmap-magnitudes", lambda d: B.gre_fieldmap(d, 4), "4_e1", "fmap", "magnitude1"),
    ("fieldmap-incomplete", _fieldmap_phase_only, "5", "sourcedata", ""),
    ("asl", lambda d: B.mr_series(d, number=14, description="perfusion", volumes=4, sequence="EP", name="epfid2d1",
     te=13, tr=4000, image_type=("ORIGINAL", "PRIMARY", "ASL")), "14", "perf", "asl"),
    ("asl-m0", lambda d: B.mr_series(d, number=15, description="pcasl_M0", volumes=1, sequence="EP",
     name="epfid2d1", te=13, tr=4000, image_type=("ORIGINAL", "PRIMARY", "ASL")), "15", "perf", "m0scan"),
    ("perfusion-dsc", lambda d: B.mr_series(d, number=16, description="ep2d_perf", volumes=5, sequence="EP",
     name="epfid2d1", te=30, tr=1500, image_type=("ORIGINAL", "PRIMARY", "PERFUSION", "NONE")), "16", "sourcedata", ""),
    ("described-asl", lambda d: B.bold(d, 17, description="tgse_pcasl_PLD1800", volumes=4), "17", "perf", "asl"),
    ("described-dsc", lambda d: B.bold(d, 18, description="ep2d_DSC_bolus", volumes=5), "18", "sourcedata", ""),
    ("ge-epi-pepolar", lambda d: B.ge_epi_pepolar(d, 13), "13_rev", "fmap", "epi"),
    ("epi-spin-echo", lambda d: B.se_epi(d, 6, "j"), "6", "fmap", "epi"),
    ("described-epi-fmap", lambda d: B.bold(d, 6, description="fmap_topup_AP", volumes=3, ped="j"), "6", "fmap", "epi"),
    ("bold", lambda d: B.bold(d, 9), "9", "func", "bold"),
    ("sbref", lambda d: B.bold(d, 8, volumes=1), "8", "func", "sbref"),
    ("bold-gradient-echo", lambda d: B.mr_series(d, number=9, description="fMRI", volumes=3, sequence="GR",
     te=30, tr=2000, flip=70), "9", "func", "bold"),
    ("time-series", lambda d: B.mr_series(d, number=9, description="dynamic", volumes=3, sequence="GR", te=2,
     tr=5, flip=15), "9", "sourcedata", ""),
    ("mp2rage-uni", lambda d: B.mr_series(d, number=5, description="mp2rage_UNI_Images", sequence=["GR", "IR"],
     variant=["SK", "SP", "MP"], te=2.9, tr=5000, acquisition="3D",
     image_type=("DERIVED", "PRIMARY", "M", "ND", "UNI")), "5", "anat", "UNIT1"),
    ("mp2rage", _mp2rage, "4", "anat", "MP2RAGE"),
    ("angio", lambda d: B.mr_series(d, number=5, description="3D", sequence="GR", te=3.5, tr=22, flip=18,
     acquisition="3D", extra={"TimeOfFlightContrast": "YES"}), "5", "anat", "angio"),
    ("multi-echo-gradient-echo", lambda d: _echoes(d, "GR", (5.0, 10.0, 15.0), "*fl3d3"), "6_e2", "anat", "MEGRE"),
    ("multi-echo-spin-echo", lambda d: _echoes(d, "SE", (10.0, 20.0, 30.0), "*se2d3"), "6_e3", "anat", "MESE"),
    ("contrast-flair", lambda d: B.mr_series(d, number=5, extra={"AcquisitionContrast": "FLUID_ATTENUATED"}),
     "5", "anat", "FLAIR"),
    ("contrast-t2star", lambda d: B.mr_series(d, number=5, extra={"AcquisitionContrast": "T2_STAR"}), "5", "anat",
     "T2starw"),
    ("contrast-pd", lambda d: B.mr_series(d, number=5, extra={"AcquisitionContrast": "PROTON_DENSITY"}), "5",
     "anat", "PDw"),
    ("contrast-t2", lambda d: B.mr_series(d, number=5, te=12, extra={"AcquisitionContrast": "T2"}), "5", "anat",
     "T2w"),
    ("contrast-t1", lambda d: B.mr_series(d, number=5, te=100, tr=4000, extra={"AcquisitionContrast": "T1"}), "5",
     "anat", "T1w"),
    ("technique-t1", lambda d: B.mr_series(d, number=5, description="3D_T1", sequence="GR", te=3.7, tr=8.1, flip=8,
     acquisition="3D", manufacturer="Philips Medical Systems",
     extra={"PulseSequenceName": "T1TFE"}), "5", "anat", "T1w"),
    ("flair", lambda d: B.mr_series(d, number=5, description="t2_tirm", sequence=["SE", "IR"], te=90, tr=9000,
     ti=2500), "5", "anat", "FLAIR"),
    ("stir", lambda d: B.mr_series(d, number=5, description="stir", sequence=["SE", "IR"], te=60, tr=4000, ti=150),
     "5", "anat", "T2w"),
    ("t1-inversion", lambda d: B.t1w(d, 2), "2", "anat", "T1w"),
    ("angio-described", lambda d: B.mr_series(d, number=5, description="TOF_3D_multi-slab", sequence="GR",
     te=3.5, tr=22, flip=18, acquisition="3D"), "5", "anat", "angio"),
    ("t2star", lambda d: B.mr_series(d, number=5, description="gre", sequence="GR", te=20, tr=600, flip=20), "5",
     "anat", "T2starw"),
    ("pd-gradient-echo", lambda d: B.mr_series(d, number=5, description="pd", sequence="GR", te=2.5, tr=25,
     flip=6, acquisition="3D"), "5", "anat", "PDw"),
    ("t1-gradient-echo", lambda d: B.mr_series(d, number=5, description="flash", sequence="GR", te=2.5, tr=25,
     flip=20, acquisition="3D"), "5", "anat", "T1w"),
    ("t2-spin-echo", lambda d: B.t2w(d, 3, description="T1_axial"), "3", "anat", "T2w"),
    ("t1-spin-echo", lambda d: B.mr_series(d, number=5, description="T2_oops", sequence="SE", te=12, tr=500), "5",
     "anat", "T1w"),
    ("pd-spin-echo", lambda d: B.mr_series(d, number=5, description="pd_tse", sequence="SE", te=12, tr=3000), "5",
     "anat", "PDw"),
    ("described-flair", lambda d: B.mr_series(d, number=5, description="FLAIR_ax", sequence="", variant=""), "5",
     "anat", "FLAIR"),
    ("described-t2star", lambda d: B.mr_series(d, number=5, description="T2star_hemo", sequence="", variant=""),
     "5", "anat", "T2starw"),
    ("described-pd", lambda d: B.mr_series(d, number=5, description="PD_ax", sequence="", variant=""), "5", "anat",
     "PDw"),
    ("described-t2", lambda d: B.mr_series(d, number=5, description="T2_ax", sequence="", variant=""), "5", "anat",
     "T2w"),
    ("described-t1", lambda d: B.mr_series(d, number=5, description="T1_sag", sequence="", variant=""), "5",
     "anat", "T1w"),
    ("unrecognised", lambda d: B.mr_series(d, number=5, description="series", sequence="", variant=""), "5",
     "sourcedata", ""),
]

#: Rules no DICOM header of a test can reach, tested on facts instead (with the reason).
FACTS_ONLY = {"colour": "RGB MR images (a screen capture's colour pixels)"}


@pytest.mark.parametrize(("rule", "build", "stack_id", "datatype", "suffix"), CASES, ids=[c[0] for c in CASES])
def test_rule(tmp_path, rule, build, stack_id, datatype, suffix):
    build(tmp_path)
    found = decisions(tmp_path)
    assert stack_id in found, found
    assert found[stack_id] == (rule, datatype, suffix)


def test_colour_images_go_to_sourcedata(tmp_path):
    B.t2w(tmp_path, 3)
    [facts] = session_facts([stack_facts(s, {}, 0) for s in volume.scan(tmp_path).stacks])
    assert classify(facts).rule == "t2-spin-echo"
    decision = classify(dataclasses.replace(facts, rgb=True))
    assert (decision.rule, decision.datatype) == ("colour", "sourcedata")


def test_every_rule_has_a_case_and_the_table_is_sound():
    assert check_rules() == []
    tested = {c[0] for c in CASES} | set(FACTS_ONLY)
    assert tested == {r.name for r in RULES}


def test_trap_t1_in_the_description_of_a_t2_sequence(tmp_path):
    B.t2w(tmp_path, 3, description="T1w_MPRAGE_axial")
    assert decisions(tmp_path)["3"] == ("t2-spin-echo", "anat", "T2w")


def test_trap_a_bold_of_one_volume_is_an_sbref(tmp_path):
    B.bold(tmp_path / "a", 7, description="rest_bold", volumes=1, start=100)
    B.bold(tmp_path / "b", 8, description="rest_bold", volumes=3, start=200)
    found = decisions(tmp_path)
    assert found["7"] == ("sbref", "func", "sbref")
    assert found["8"] == ("bold", "func", "bold")


def test_trap_a_dwi_of_b0_volumes_only_is_no_dwi(tmp_path):
    B.dwi(tmp_path, 11, description="dMRI_dir98_b0only", bvalues=(0, 0, 0))
    assert decisions(tmp_path)["11"] == ("dwi-b0-epi", "fmap", "epi")


def test_fmri_files_with_b0_values_stay_bold(tmp_path):
    """Philips and GE write DiffusionBValue 0 into fMRI files: no diffusion sequence says so."""
    B.mr_series(tmp_path, number=9, description="fmri", volumes=3, sequence="EP", name="epfid2d1", te=30,
                tr=2000, bvalues=(0, 0, 0))
    assert decisions(tmp_path)["9"] == ("bold", "func", "bold")


def test_the_sequence_name_beats_scanning_sequence(tmp_path):
    """Siemens writes ScanningSequence SE\\EP for some FID EPIs (dcm_qa_12bit): epfid is a gradient echo,
    so a single volume is an SBRef, not a spin-echo field map."""
    B.mr_series(tmp_path, number=2, description="FMRI_AX_ASC", sequence=["SE", "EP"], name="*epfid2d1_64",
                te=30, tr=2200, ped="j")
    assert decisions(tmp_path)["2"] == ("sbref", "func", "sbref")


def test_description_breaks_ties_only(tmp_path):
    """A description saying field map turns a short gradient-echo EPI into an epi field map (the
    facts allow both), never a long run (the facts say bold)."""
    B.bold(tmp_path / "a", 6, description="fmap_AP", volumes=3, ped="j")
    B.bold(tmp_path / "b", 7, description="fmap_AP", volumes=40, ped="j", start=40000)
    found = decisions(tmp_path)
    assert found["6"][1:] == ("fmap", "epi")
    assert found["7"][1:] == ("func", "bold")


def test_a_field_map_missing_its_partner_is_no_anatomical_image(tmp_path):
    """The magnitudes of a field map whose phase is not in the session are no MEGRE, its phase
    alone no T1w: the sequence says field mapping (Siemens' ``fm`` sequence name, GE's B0map pulse
    sequence), so they go to sourcedata, saying why."""
    uid = pydicom.uid.generate_uid()
    for echo, te in ((1, 4.92), (2, 7.38)):
        B.mr_series(tmp_path / "mag", number=4, description="gre_field_mapping", sequence="GR", variant="SP",
                    name="*fm2d2r", te=te, tr=500, flip=60, echo=echo, series_uid=uid)
    B.mr_series(tmp_path / "ge", number=6, description="B0Map (GRE)", sequence="RM", variant="NONE", te=4.6, tr=200,
                flip=20, manufacturer="GE MEDICAL SYSTEMS", image_type=("ORIGINAL", "PRIMARY", "OTHER"))
    for path in (tmp_path / "ge").iterdir():
        ds = pydicom.dcmread(path)
        ds.private_block(0x0019, "GEMS_ACQU_01", create=True).add_new(0x9C, "LO", "B0map")
        ds.save_as(path, enforce_file_format=True)
    found = decisions(tmp_path)
    assert found["4_e1"] == found["4_e2"] == found["6"] == ("fieldmap-incomplete", "sourcedata", "")
    B.mr_series(tmp_path / "ph", number=5, description="gre_field_mapping", sequence="GR", variant="SP",
                name="*fm2d2r", te=7.38, tr=500, flip=60, echo=2, image_type=("ORIGINAL", "PRIMARY", "P", "ND"))
    found = decisions(tmp_path)
    assert found["4_e1"] == ("fieldmap-magnitudes", "fmap", "magnitude1")
    assert found["5"] == ("phasediff-magnitudes", "fmap", "phasediff")


def test_a_field_map_split_into_series_numbered_apart_is_one_acquisition(tmp_path):
    """Siemens XA's interoperable export writes a field map's magnitude echoes and phase as series
    9001, 9002 and 10001 (dcm_qa_xa30i), acquired 0.6 s apart, with no protocol to give
    EchoTime1/2: one protocol and grid acquired together is one acquisition, so the magnitudes are
    magnitude1/2 and the phase a phasediff with their echo times."""
    kw = {"description": "gre_field_mapping", "sequence": "GR", "name": "*fm2d2r", "tr": 600.0, "flip": 90.0}
    B.mr_series(tmp_path / "m1", number=9001, te=10.0, echo=1, start=1000.0, **kw)
    B.mr_series(tmp_path / "m2", number=9002, te=12.46, echo=2, start=1000.6, **kw)
    B.mr_series(tmp_path / "ph", number=10001, te=12.46, echo=2, start=1000.6,
                image_type=("ORIGINAL", "PRIMARY", "P", "DIS2D", "MFSPLIT"), **kw)
    B.mr_series(tmp_path / "later", number=9003, te=10.0, echo=1, start=1300.0, **kw)
    found = decisions(tmp_path)
    assert found["9001"] == ("fieldmap-magnitudes", "fmap", "magnitude1")
    assert found["9002"] == ("fieldmap-magnitudes", "fmap", "magnitude2")
    assert found["10001"] == ("phasediff-magnitudes", "fmap", "phasediff")
    assert found["9003"] == ("fieldmap-incomplete", "sourcedata", "")  # acquired 5 minutes later: another one


def test_an_echo_time_of_zero_is_no_short_echo_time(tmp_path):
    """EchoTime 0 (what some files write for "none") says nothing of the contrast: a spin echo
    without an echo time is not proton-density weighted for it."""
    B.mr_series(tmp_path, number=5, description="axial", sequence="SE", te=0.0, tr=3000)
    assert decisions(tmp_path)["5"] == ("unrecognised", "sourcedata", "")


def test_docs_show_the_rules_table_as_the_code_holds_it():
    text = (Path(__file__).resolve().parents[1] / "docs" / "bids.md").read_text(encoding="utf-8")
    shown = text.split("<!-- rules-table -->\n", 1)[1].split("\n<!-- /rules-table -->", 1)[0]
    assert shown.splitlines() == rules_table()
