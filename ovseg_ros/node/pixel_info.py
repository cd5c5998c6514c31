"""~/pixel_classes: one pixel's classes on the latest processed frame (core/pixel.py), for
consoles that show what the node thinks of the pixel under the pointer.

Registered by the node at construction (`PixelInfoService(node, lane)`) on its service lane
(service_lane.py), beside ~/query: console pointers that call it again at once are slowed to
`request_rate_hz` in the middleware. It reads the camera's
latest-frame slot, the same reference ~/query answers from (features.FeatureOutputs), and is
admitted like a query: beyond `query_rate_hz`, or with the query worker's queue full, it is
refused at once with when to call again, never queued. The answer (one weighted sum over the
patch grid) runs on the query worker between frames, so it never holds up the frame path; it
never touches the vocabulary. Every bad request is answered with success=false and the reason.
"""

from __future__ import annotations

from typing import Any

from ovseg_ros.core.pixel import PixelError, pixel_classes
from ovseg_ros.core.query import QueryError
from ovseg_ros.node.background import Busy, Cancelled
from ovseg_ros.node.diagnostics import one_line
from ovseg_ros.node.messages import copy_header
from ovseg_ros.node.service_lane import ServiceLane
from ovseg_ros.srv import PixelClasses

DEFAULT_COUNT = 5


class PixelInfoService:
    """~/pixel_classes of one node (SegmentNode: state, outputs, heavy)."""

    def __init__(self, node: Any, lane: ServiceLane) -> None:
        self.node, self.lane = node, lane
        lane.create_service(PixelClasses, "~/pixel_classes", self._srv)

    async def _srv(self, req: PixelClasses.Request, res: PixelClasses.Response
                   ) -> PixelClasses.Response:
        try:
            await self.answer(req, res)
        except (QueryError, PixelError, Busy, Cancelled) as exc:
            res.success, res.message = False, str(exc)
        except Exception as exc:  # never into the executor: the client gets the reason
            res.success, res.message = False, f"pixel_classes failed: {one_line(exc)}"
        if not res.success:
            res.class_ids, res.class_names, res.probabilities = [], [], []
        return res

    def _latest(self, name: str) -> Any:
        node = self.node
        if node.state != "active" or node.outputs is None:
            raise QueryError(f"the node is {node.state}: ~/pixel_classes answers from the "
                             "latest frame of an active node (configure and activate it)")
        cameras = node.outputs.cameras
        cam = cameras[0] if not name else next((c for c in cameras if c.name == name), None)
        if cam is None:
            known = ", ".join(repr(c.name) for c in cameras if c.name) or "none (one input)"
            raise QueryError(f"unknown camera {name!r}: the node's cameras are {known}")
        latest = cam.extras.latest() if cam.extras is not None else None
        if latest is None:
            raise QueryError(f"no frame processed yet on {cam.input_topic}")
        return latest

    async def answer(self, req: PixelClasses.Request, res: PixelClasses.Response) -> None:
        latest = self._latest(req.camera)
        result = latest.result
        height, width = result.labels.shape
        if not (req.u < width and req.v < height):  # before admission: costs nothing
            raise PixelError(f"pixel (u={req.u}, v={req.v}) is outside the {width}x{height} "
                             "frame")
        self.node.heavy.admit_query()
        count = int(req.count) or DEFAULT_COUNT
        px = await self.lane.wait_for(self.node.heavy.answer(
            lambda: pixel_classes(result, int(req.u), int(req.v), count)))
        res.header, res.camera = copy_header(latest.header), latest.camera
        res.width, res.height = width, height
        res.vocabulary_version = int(result.vocabulary_version)
        res.class_id, res.class_name, res.confidence = px.class_id, px.class_name, px.confidence
        res.class_ids = [cid for cid, _, _ in px.ranked]
        res.class_names = [name for _, name, _ in px.ranked]
        res.probabilities = [p for _, _, p in px.ranked]
        res.success = True
        res.message = "" if px.ranked else ("no ranking in slide mode (the label and its "
                                            "confidence only)")
