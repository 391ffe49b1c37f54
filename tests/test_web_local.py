"""``volume serve --local``: what is sent to the browser, which draws the view itself (vtk.js).

The volume is reduced by block means to a size a browser can draw while dragging; its voxels keep
their place in patient space; the scene carries voxel values only (no patient identity).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from synth import AXIAL, linear_field, oblique_iop, synthetic_volume

from volume.render.local import LOCAL_MAX_VOXELS, LocalScene, block_factors, reduced_volume
from volume.render.scene import Scene


def test_block_factors_halve_the_finest_axes_first():
    assert block_factors((300, 512, 512), (1.0, 0.68, 0.68), LOCAL_MAX_VOXELS) == (2, 2, 2)  # the 300-slice CT
    assert block_factors((22, 512, 512), (6.0, 0.45, 0.45), LOCAL_MAX_VOXELS) == (1, 1, 1)  # BRAINIX: sent whole
    fs, fr, fc = block_factors((20, 400, 400), (6.0, 0.5, 0.5), 1_000_000)
    assert fs == 1 and fr == fc > 1  # the thick slices are left alone
    assert 20 * (400 // fr) * (400 // fc) <= 1_000_000


def test_reduced_volume_keeps_every_block_at_its_place():
    """A linear field is its own block mean: each reduced voxel holds the field at its world position."""
    vol = synthetic_volume(shape=(12, 30, 40), iop=oblique_iop(AXIAL, degrees=20.0), spacing=(2.0, 1.0, 1.0),
                           field_fn=linear_field, dtype=np.float32)
    small = reduced_volume(vol, max_voxels=12 * 30 * 40 // 5)
    assert np.prod(small.shape) <= 12 * 30 * 40 // 5
    k, j, i = np.meshgrid(*(np.arange(n) for n in small.shape), indexing="ij")
    world = small.world(np.stack([k, j, i], axis=-1))
    np.testing.assert_allclose(np.asarray(small.array), linear_field(*np.moveaxis(world, -1, 0)), atol=1e-3)
    assert small.array.dtype == vol.array.dtype


def test_local_scene_sends_voxel_values_only_and_follows_the_mode():
    vtk = pytest.importorskip("vtkmodules")
    assert vtk
    vol = synthetic_volume(shape=(10, 16, 16), meta={"modality": "MR", "series_description": "t1",
                                                      "identity": {"PatientName": "Doe^Jane"}})
    scene = Scene(vol, mode="vr")
    local = LocalScene(scene, outlines=[])
    image = local.mapper.GetInput()
    names = [image.GetPointData().GetArrayName(k) for k in range(image.GetPointData().GetNumberOfArrays())]
    assert names == ["values"] and image.GetFieldData().GetNumberOfArrays() == 0
    scene.set_mode("mip")
    local.sync()
    assert local.mapper.GetBlendMode() == local.mapper.MAXIMUM_INTENSITY_BLEND
    scene.set_mode("iso")
    local.sync()
    assert not local.volume.GetVisibility() and local.renderer.HasViewProp(scene.surface)
    np.testing.assert_allclose(local.renderer.GetActiveCamera().GetFocalPoint(),
                               scene.renderer.GetActiveCamera().GetFocalPoint())


def test_the_mapper_is_sent_with_vtkjs_settings_for_dragging():
    """vtk.js samples less while the mouse drags, from the first drag on (a browser without a GPU)."""
    pytest.importorskip("trame_vtk", reason="the web extra is not installed (pip install 'volume[web]')")
    from trame_vtk.modules.vtk.serializers import SynchronizationContext, initialize_serializers

    from volume.render.local import DRAG_PROPERTIES, local_sample_distance, volume_mapper_serializer

    initialize_serializers()  # trame-vtk sets them up with its protocols

    local = LocalScene(Scene(synthetic_volume(shape=(10, 16, 16)), mode="vr"), outlines=[])
    out = volume_mapper_serializer(local.volume, local.mapper, "mapper-1", SynchronizationContext(), 1)
    assert out["type"] == "vtkVolumeMapper"
    props = out["properties"]
    assert {k: props[k] for k in DRAG_PROPERTIES} == DRAG_PROPERTIES
    assert props["sampleDistance"] == pytest.approx(local_sample_distance(local.grid.spacing))
    assert local_sample_distance((6.0, 0.45, 0.45)) == pytest.approx(1.15)  # thick slices: VTK's default
    assert local_sample_distance((1.0, 1.0, 1.0)) == 1.0  # at least one voxel side
    assert props["autoAdjustSampleDistances"] == 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
