"""~/query (phrases against the latest frame), ~/encode_text (phrases -> embeddings in the
space of ~/features) and ~/query_markers: the node's open-vocabulary question answering.

Registered by the node at construction (`QueryServices(node, lane)`) on its service lane
(service_lane.py: a thread of their own, at most `request_rate_hz` requests taken per second);
the callbacks are coroutines: they check the request and read the camera's latest-frame slot (a
reference, see features.FeatureOutputs) on the lane's thread, then await the node's heavy
work (heavy_work.HeavyWork): new phrases on the text worker, the answer itself on the query
worker, between frames. Beyond `query_rate_hz`, or with a full queue, a query is refused at
once with when to call again. They never touch the frame path or the vocabulary. Every bad
request is answered with success=false and the reason; nothing raises into the executor.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import numpy as np
import torch
from geometry_msgs.msg import Point
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from ovseg_ros.core.features import LOGIT_SCALE
from ovseg_ros.core.query import QueryError, relevance_maps, validate_phrases
from ovseg_ros.geometry import mask_point
from ovseg_ros.io import encode_float, encode_mono8
from ovseg_ros.msg import ObjectMatch, QueryAnswer
from ovseg_ros.node.background import Busy, Cancelled
from ovseg_ros.node.diagnostics import one_line
from ovseg_ros.node.heavy_work import HeavyWork
from ovseg_ros.node.messages import copy_header, image_msg
from ovseg_ros.node.outputs import Outputs
from ovseg_ros.node.service_lane import ServiceLane
from ovseg_ros.srv import EncodeText, Query

DEFAULT_THRESHOLD = 0.5
MAX_ENCODE = 256  # phrases per ~/encode_text call
MARKER_NS = "ovseg_query"


class QueriedNode(Protocol):
    """What the query services use of the node (SegmentNode)."""

    state: str
    outputs: Outputs | None
    heavy: HeavyWork

    def create_publisher(self, *args: Any, **kwargs: Any) -> Any: ...


class QueryServices:
    """~/query, ~/encode_text and the ~/query_markers publisher of one node."""

    def __init__(self, node: QueriedNode, lane: ServiceLane) -> None:
        self.node, self.lane = node, lane
        lane.create_service(Query, "~/query", self._srv_query)
        lane.create_service(EncodeText, "~/encode_text", self._srv_encode_text)
        self.markers = node.create_publisher(MarkerArray, "~/query_markers", 10)

    # ---- ~/query ----------------------------------------------------------------------------

    async def _srv_query(self, req: Query.Request, res: Query.Response) -> Query.Response:
        try:
            await self.answer(req, res)
            res.success, res.message = True, ""
        except (QueryError, Busy, Cancelled) as exc:
            res.success, res.message, res.answers = False, str(exc), []
        except Exception as exc:  # never into the executor: the client gets the reason
            res.success, res.answers = False, []
            res.message = f"query failed: {one_line(exc)}"
        return res

    def _camera(self, name: str):
        node = self.node
        if node.state != "active" or node.outputs is None:
            raise QueryError(f"the node is {node.state}: ~/query answers from the latest "
                             "frame of an active node (configure and activate it)")
        cameras = node.outputs.cameras
        if not name:
            return cameras[0]
        for cam in cameras:
            if cam.name == name:
                return cam
        known = ", ".join(repr(c.name) for c in cameras if c.name) or "none (one input)"
        raise QueryError(f"unknown camera {name!r}: the node's cameras are {known}")

    async def answer(self, req: Query.Request, res: Query.Response) -> None:
        threshold = float(req.threshold) or DEFAULT_THRESHOLD
        if not (math.isfinite(threshold) and 0.0 < threshold <= 1.0):
            raise QueryError(f"threshold {req.threshold} is outside (0, 1] (0 = "
                             f"{DEFAULT_THRESHOLD})")
        node = self.node
        cam = self._camera(req.camera)
        latest = cam.extras.latest() if cam.extras is not None else None
        if latest is None:
            raise QueryError(f"no frame processed yet on {cam.input_topic}: queries answer "
                             "from the latest processed frame")
        segmenter = node.outputs.pipeline.segmenter
        names = validate_phrases(list(req.phrases), segmenter.token_count)
        node.heavy.admit_query()
        known = {n.casefold() for n in latest.result.class_names}
        new = [n for n in names if n.casefold() not in known]
        job = node.heavy.encode_phrases(segmenter, new) if new else None
        if job is not None:
            await self.lane.wait_for(job)
        res.header, res.camera = copy_header(latest.header), latest.camera
        res.answers = await self.lane.wait_for(node.heavy.answer(
            lambda: self.build(segmenter, latest, names, threshold, res.header)))
        if latest.cloud is not None and self.markers.get_subscription_count() > 0:
            self.markers.publish(query_markers(res.answers, res.header))

    def build(self, segmenter: Any, latest: Any, names: list[str], threshold: float,
              header: Any) -> list[QueryAnswer]:
        """The answers (on the query worker): relevance maps, masks, 3D points, messages."""
        maps = relevance_maps(segmenter, latest.result, names)
        matches = object_matches(segmenter, latest, names)
        answers = []
        for pm in maps:
            mask = pm.mask(threshold)
            u, v = pm.peak
            point, count = ((math.nan,) * 3, 0)
            if latest.cloud is not None:
                point, count = mask_point(latest.cloud, mask)
            answers.append(QueryAnswer(
                phrase=pm.phrase, in_vocabulary=pm.class_id is not None,
                class_id=pm.class_id or 0,
                relevance=image_msg(encode_float(pm.relevance), header),
                mask=image_msg(encode_mono8(mask.astype(np.uint8) * 255), header),
                score=pm.score, u=u, v=v, point=Point(x=point[0], y=point[1], z=point[2]),
                point_count=count, objects=matches.get(pm.phrase, [])))
        return answers

    # ---- ~/encode_text ----------------------------------------------------------------------

    async def _srv_encode_text(self, req: EncodeText.Request, res: EncodeText.Response
                               ) -> EncodeText.Response:
        try:
            outputs = self.node.outputs
            if outputs is None:
                raise QueryError(f"the node is {self.node.state}: configure it first (the "
                                 "text encoder is loaded at configure)")
            seg = outputs.pipeline.segmenter
            if len(req.phrases) > MAX_ENCODE:
                raise QueryError(f"{len(req.phrases)} phrases: at most {MAX_ENCODE} per call")
            names = validate_phrases(list(req.phrases), seg.token_count, limit=MAX_ENCODE)
            job = self.node.heavy.encode_phrases(seg, names)
            if job is not None:  # new phrases: encoded on the text worker
                await self.lane.wait_for(job)
            with torch.inference_mode():  # all held now: a lookup
                emb = seg.text_cache.embed(names).float().cpu().numpy()
            res.dim = int(emb.shape[1])
            res.embeddings = emb.reshape(-1).astype(np.float32)
            res.logit_scale = LOGIT_SCALE
            space = outputs.cameras[0].extras.space
            res.model, res.weights_id, res.feature_version = (space.model, space.weights_id,
                                                              space.version)
            res.success, res.message = True, ""
        except Exception as exc:  # QueryError, or the text encoder failing
            res.success, res.embeddings, res.dim = False, np.zeros(0, np.float32), 0
            res.message = str(exc) if isinstance(exc, (QueryError, Busy, Cancelled)) else (
                f"encode_text failed: {one_line(exc)}")
        return res


def object_matches(segmenter: Any, latest: Any, names: list[str]) -> dict[str, list[Any]]:
    """{phrase: ObjectMatch list, best first} for the objects of the latest frame, from their
    CLIP vectors (objects/ranking.py); empty without objects (setting off, no features, or a
    frame whose objects were not made because nobody read them)."""
    objects = latest.objects
    feats = latest.result.features
    if objects is None or not objects.made or feats is None:
        return {}
    found, vectors = objects.found, objects.vectors
    if found is None or vectors is None or len(found) == 0:
        return {}
    from ovseg_ros.objects import rank_instances

    channel_of = {n.casefold(): c for c, n in enumerate(latest.result.class_names)}
    with torch.inference_mode():
        text = segmenter.text_cache.embed(names).float().cpu().numpy()
    vocab = feats.text.float().cpu().numpy()
    prior = None if feats.prior is None else feats.prior.float().cpu().numpy()
    instances = found.instances.instances
    out = {}
    for name, phrase in zip(names, text, strict=True):
        ranked = rank_instances(vectors, phrase, vocab, channel_of.get(name.casefold()), prior)
        matches = []
        for s in ranked:
            inst = instances[s.index - 1]
            x, y, w, h = (int(v) for v in inst.bbox_xywh)
            matches.append(ObjectMatch(
                instance_id=s.index, track_id=str(int(found.track_ids[s.index - 1])),
                class_name=inst.name, x=x, y=y, width=w, height=h, cosine=s.cosine,
                relevance=s.relevance))
        out[name] = matches
    return out


def query_markers(answers: list[QueryAnswer], header) -> MarkerArray:
    """DELETEALL, then a TEXT_VIEW_FACING marker "phrase (score)" at each answered 3D point."""
    out = [Marker(header=header, ns=MARKER_NS, action=Marker.DELETEALL)]
    for k, a in enumerate(answers):
        if a.point_count == 0:
            continue
        mk = Marker(header=header, ns=MARKER_NS, id=k, type=Marker.TEXT_VIEW_FACING,
                    action=Marker.ADD, text=f"{a.phrase} ({a.score:.2f})",
                    color=ColorRGBA(r=1.0, g=0.9, b=0.2, a=1.0))
        mk.pose.position = Point(x=a.point.x, y=a.point.y, z=a.point.z)
        mk.pose.orientation.w = 1.0
        mk.scale.z = 0.12
        out.append(mk)
    return MarkerArray(markers=out)
