"""The objects' settings: instances, tracks, 3D boxes and Hydra's instance image, declared once
with `setting` (the node's parameters, the CLI options and the docs come from here)."""

from __future__ import annotations

from dataclasses import dataclass

from ovseg_ros.core.settings import check_config, setting


@dataclass(frozen=True)
class ObjectsConfig:
    """How a frame's labels become objects (see doc/objects.md)."""

    objects: bool = setting(False, group="objects", doc="""
        Find the objects of every frame: the connected regions of each class present in the
        label image, with a track id per camera. The node publishes ~/instances and
        ~/detections, with use_depth also ~/detections_3d and ~/detection_markers; off: no
        object work at all.""")
    object_min_area: float = setting(0.001, group="objects", low=0.0, high=1.0, dynamic=True,
                                     doc="""
        Smallest object, as a fraction of the image's pixels (0.001 = 307 pixels at 640x480),
        so the same setting holds at any resolution; smaller regions are no objects.""")
    object_close_gaps_px: int = setting(0, group="objects", low=0, high=64, dynamic=True,
                                        doc="""
        Join regions of one class that are at most about this many pixels apart into one
        object (a morphological closing before the regions are found); its mask still holds
        only pixels of its class, so it may be several pieces. 0 = off: every object is one
        8-connected region.""")
    track_max_age_s: float = setting(2.0, group="objects", low=0.0, high=3600.0, dynamic=True,
                                     doc="""
        A track that no object matched for more than this many seconds of frame stamps ends
        (its id is never given again); until then an object that comes back takes its id
        again, through short occlusions and dropped frames. 0 = count frames instead.""")
    track_max_age_frames: int = setting(30, group="objects", low=0, high=100000, dynamic=True,
                                        doc="""
        The same limit in processed frames, for frames without stamps (a folder of images) or
        when track_max_age_s is 0.""")
    track_min_iou: float = setting(0.1, group="objects", low=0.01, high=1.0, dynamic=True,
                                   doc="""
        Least overlap (intersection over union of the masks) between an object and a track's
        predicted mask for them to be matched; tracks match only objects of their own class
        name.""")
    box_trim_percent: float = setting(5.0, group="objects", low=0.0, high=25.0, dynamic=True,
                                      doc="""
        3D boxes span the t-th to (100-t)-th percentile of an object's depth points on each
        axis, so stray points at mask edges do not stretch them; 0 = the full extent.""")
    box_min_points: int = setting(20, group="objects", low=1, high=10000000, dynamic=True,
                                  doc="""
        Objects with fewer valid depth points (after points_stride) get no 3D box; they are
        counted in /diagnostics.""")
    hydra_instances: bool = setting(False, group="objects", doc="""
        Also publish ~/hydra_instances: 32SC1, class id in the low 16 bits and the object's
        index in ~/detections in the high 16, as Hydra's InstanceImageReceiver decodes it.""")

    def __post_init__(self) -> None:
        check_config(self)

    @property
    def trim(self) -> tuple[float, float]:
        """(low, high) percentiles of the 3D boxes."""
        return self.box_trim_percent, 100.0 - self.box_trim_percent
