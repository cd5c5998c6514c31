"""The `ovseg` node: a managed (lifecycle) rclpy node, a thin layer over ovseg_ros.core.

States, as Nav2 and other managed perception nodes use them:
  unconfigured -> configure: parameters validated, weights loaded (CLIP, heads, CLIP-DIY),
                  vocabulary encoded, publishers created -> inactive
  inactive     -> activate: input subscribed, worker started, label map published -> active
  active       -> deactivate: input unsubscribed, frame in flight finished (bounded),
                  publishing stopped, CUDA cache emptied; the model stays loaded -> inactive
  inactive     -> cleanup: model unloaded and its memory freed, publishers gone -> unconfigured
  any          -> shutdown (also on SIGINT/SIGTERM) -> finalized
With `autostart` (the default) the node configures and activates itself at start.

Threads: subscription callbacks only hand messages to the worker's one-slot-per-camera buffer;
one worker thread decodes, segments and publishes (frames.FrameProcessor). Services and
parameters answer in every state, also during a transition or a frame: the lifecycle queries
and the parameter reads have callback groups of their own, and text encoding and query answers
run on worker threads (heavy_work.py) that the services await as coroutines, refusing at once
what would wait behind a full queue. Only the lifecycle transitions hold an executor thread.

Run: `ros2 run ovseg_ros segment_node --ros-args -p prompts:="['cup','table']"` or
`python -m ovseg_ros.node.segment_node --ros-args ...`.
"""

from __future__ import annotations

import sys
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.lifecycle import LifecycleNodeMixin, LifecycleState, TransitionCallbackReturn
from rclpy.node import Node
from rclpy.parameter import Parameter

from ovseg_ros.core.vocabulary import VocabularySnapshot
from ovseg_ros.node import params
from ovseg_ros.node.compat import (
    InvalidTransitionGuard,
    move_lifecycle_queries,
    move_parameter_queries,
)
from ovseg_ros.node.control_services import ControlServices, get_state
from ovseg_ros.node.diagnostics import (
    Throttle,
    diagnostic_array,
    lifecycle_report,
    node_status,
    one_line,
)
from ovseg_ros.node.frames import FrameProcessor, FrameReport, NodeSink
from ovseg_ros.node.health_report import camera_statuses
from ovseg_ros.node.heavy_work import HeavyWork
from ovseg_ros.node.inputs import InputSubscriptions
from ovseg_ros.node.outputs import Outputs
from ovseg_ros.node.pixel_info import PixelInfoService
from ovseg_ros.node.prompt_text import normalise_prompt_parameters
from ovseg_ros.node.query import QueryServices
from ovseg_ros.node.release import MemoryRelease
from ovseg_ros.node.runner import run_main
from ovseg_ros.node.service_lane import ServiceLane
from ovseg_ros.node.vocabulary_outputs import vocabulary_text
from ovseg_ros.node.worker import FrameWorker
from ovseg_ros.settings.parameters import build_all

SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE
DEACTIVATE_WAIT_S = 10.0  # how long deactivate waits for the frame in flight
# How long a `prompts` parameter change waits for its new names to be encoded before it is
# refused (the encoding goes on, so setting it again then succeeds): parameter callbacks are
# synchronous in rclpy, and a longer wait would hold an executor thread.
PARAMETER_ENCODE_WAIT_S = 1.0


class SegmentNode(InvalidTransitionGuard, LifecycleNodeMixin, Node):
    """Open-vocabulary segmentation of one camera stream, or of several (`cameras`)."""

    def __init__(self, node_name: str = "ovseg", **kwargs: Any) -> None:
        Node.__init__(self, node_name, **kwargs)
        # Lifecycle services in their own group: a configure that loads weights for seconds
        # must not hold up the parameter services (default group) or ours (reentrant).
        LifecycleNodeMixin.__init__(self, callback_group=MutuallyExclusiveCallbackGroup())
        # ... and the queries (get_state, available states/transitions) in a reentrant group of
        # their own, answered from `self.state`: rclpy puts them in the transitions' group, so
        # a configure that loads weights for seconds held every get_state until it ended.
        move_lifecycle_queries(self, ReentrantCallbackGroup(), lambda req, res: get_state(
            self.state, res))
        self.values = params.declare(self)  # current value of every parameter
        # Parameter reads in a reentrant group of their own: never behind a set_parameters.
        move_parameter_queries(self, ReentrantCallbackGroup())
        self.state = "unconfigured"  # lifecycle state, or the transition under way
        self.last_error: str | None = None  # why the last configure failed
        self.outputs: Outputs | None = None  # model + publishers: set while configured
        self.worker: FrameWorker | None = None  # set while active
        self.processor: FrameProcessor | None = None
        self.inputs: InputSubscriptions | None = None  # set while active
        self._ids = None  # the last configuration's Vocabulary: ids survive cleanup + configure
        # Called on the worker thread with a frames.FrameReport per published frame (stage
        # times); the benchmark reads the node's timings here.
        self.frame_listeners: list[Callable[[FrameReport], None]] = []
        # Called after the shutdown transition (finalized); the process entry ends the process.
        self.on_finalized: Callable[[], None] | None = None
        self._throttle = Throttle(5.0)
        self._quiet_failure = False  # autostart: start_failure() reports it instead
        self.still_running: list[str] = []  # what close() could not stop (see there)
        self._vocab_lock = threading.RLock()  # vocabulary + label map + parameter changes
        # Text encoding and query answers: worker threads, bounded queues, frames first.
        self.heavy = HeavyWork(self.values, lambda: None if (w := self.worker) is None
                               else w.activity())
        self._cb = ReentrantCallbackGroup()
        self.memory = MemoryRelease(self, self._cb)  # cleanup gives the model's memory back
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        # ~/query, ~/encode_text, ~/set_prompts: at most request_rate_hz taken per second, on
        # a thread of their own, so clients that never back off cost the frames little.
        self.lane = ServiceLane(self, lambda: self.values["request_rate_hz"])
        self.control = ControlServices(self, self._cb, self.lane)  # ~/set_prompts, ...
        self.queries = QueryServices(self, self.lane)  # ~/query, ~/encode_text, ...
        self.pixels = PixelInfoService(self, self.lane)  # ~/pixel_classes
        # One pre-set callback: rclpy gives each the original list and joins their outputs.
        self.add_pre_set_parameters_callback(
            lambda changes: normalise_prompt_parameters(params.integers_as_doubles(changes)))
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._diag_timer = self.create_timer(self.values["diagnostics_period"],
                                             self._on_diagnostics, callback_group=self._cb)
        if self.values["autostart"]:  # a failure is the process's one start-up error line
            self._quiet_failure = True
            self.trigger_configure()
            self._quiet_failure = False
            if self.state == "inactive":
                self.trigger_activate()
        else:
            self.get_logger().info("unconfigured: waiting for a lifecycle manager "
                                   "(~/change_state; autostart is false)")

    def start_failure(self) -> str | None:
        """Why autostart did not reach 'active' (for the process's exit code), else None."""
        if not self.values["autostart"] or self.state == "active":
            return None
        return self.last_error or f"autostart stopped in state {self.state}"

    # ---- convenience views -------------------------------------------------------------------

    @property
    def pipeline(self):
        return self.outputs.pipeline if self.outputs else None

    @property
    def segmenter(self):
        return self.outputs.pipeline.segmenter if self.outputs else None

    @property
    def cameras(self):
        return self.outputs.cameras if self.outputs else []

    @property
    def health(self):  # the first camera's (single-camera tools and tests)
        return self.cameras[0].health

    @property
    def input_topic(self) -> str:
        return self.cameras[0].input_topic

    @property
    def qos_desc(self) -> str:
        return self.cameras[0].qos_desc

    # ---- lifecycle -----------------------------------------------------------------------------

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.state = "configuring"
        used = dict(self.values)
        try:
            seg_cfg, kf_cfg, node_cfg, objects_cfg = build_all(used)
            outputs = Outputs.create(self, seg_cfg, kf_cfg, node_cfg, objects_cfg, self._ids)
        except Exception as exc:  # ConfigError, WeightsError, DeviceError, VocabularyError, ...
            self.last_error = one_line(exc)
            if not self.context.ok():  # SIGTERM meanwhile: "context is invalid" is no fault
                self.last_error = "the node is shutting down"
                self.get_logger().info("configure stopped: the node is shutting down")
            elif not self._quiet_failure:
                self.get_logger().error(f"configure failed: {self.last_error}")
            self.state = "unconfigured"
            return FAILURE
        with self._vocab_lock:
            self.outputs, self.last_error = outputs, None
            # Dynamic parameters set while the weights loaded were only stored: apply them.
            changed = {k: v for k, v in self.values.items() if v != used[k]}
            if changed and (why := outputs.settings.apply(changed)) is not None:
                self.get_logger().warning(f"a change made during configure was refused: {why}")
            self._mirror_prompts()
        if self._diag_timer.timer_period_ns != int(node_cfg.diagnostics_period * 1e9):
            self.destroy_timer(self._diag_timer)
            self._diag_timer = self.create_timer(node_cfg.diagnostics_period,
                                                 self._on_diagnostics, callback_group=self._cb)
        seg = outputs.pipeline.segmenter
        self.get_logger().info(f"configured: {seg_cfg.model} on {seg.runtime.describe()}, "
                               f"text {seg.text_choice.describe()}, "
                               f"{vocabulary_text(outputs.vocabulary.snapshot())}")
        self.state = "inactive"
        return SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.state = "activating"
        out = self.outputs
        sink = NodeSink(out.cameras, out.vocabulary_publishers, out.step.builder,
                        lambda: self.get_clock().now().nanoseconds * 1e-9,
                        lambda name: self.worker.dropped(name) if self.worker else 0,
                        self.frame_listeners, self.context.ok)
        self.processor = FrameProcessor(out.step, sink, out.frame_log)
        # One slot per camera; several full slots are segmented as one batch.
        self.worker = FrameWorker(self.processor, self.processor.on_error, batch=True)
        self.worker.start()
        self.inputs = InputSubscriptions(self, out.node_config.qos, out.node_config.qos_depth)
        compressed = out.node_config.input_transport == "compressed"
        for cam in out.cameras:
            self.inputs.add_camera(cam, compressed, self.worker)
        super().on_activate(state)  # enables the lifecycle publishers
        out.vocabulary.publish()
        inputs = ", ".join(f"{c.input_topic} [{c.qos_desc}]" for c in out.cameras)
        self.get_logger().info(f"ready: active, input {inputs}")
        self.state = "active"
        return SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.state = "deactivating"
        self._stop_input(DEACTIVATE_WAIT_S)
        super().on_deactivate(state)
        self.outputs.release_cache()
        self.state = "inactive"
        return SUCCESS

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.state = "cleaningup"
        self._unload()
        self.state = "unconfigured"
        return SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.state = "shuttingdown"
        self.close(timeout=1.0)
        self.state = "finalized"
        if self.on_finalized is not None:
            self.on_finalized()
        return SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.state = "errorprocessing"
        self.get_logger().error(f"error during a transition from {state.label}: unloading")
        self.close(timeout=1.0)
        self.state = "unconfigured"
        return SUCCESS

    def _stop_input(self, timeout: float) -> bool:
        """Unsubscribe and stop the worker; False when a frame was still in the model after
        `timeout` (it finishes on its own; nothing it produces is published)."""
        if self.inputs is not None:
            self.inputs.close()
            self.inputs = None
        worker, processor, self.worker = self.worker, self.processor, None
        if worker is None:
            return True
        joined = worker.stop(timeout)
        if not joined:
            processor.retire()
            if self.context.ok():  # at shutdown the runner says it: rosout is gone by then
                self.get_logger().warning(f"a frame was still in inference after "
                                          f"{timeout:.1f} s; its result is not published")
        return joined

    def _unload(self, wait_vocabulary: float | None = None) -> bool:
        """Drop publishers and model (cleanup). False when a vocabulary change still held the
        vocabulary lock after `wait_vocabulary` s (then the model is left to the process)."""
        self.heavy.cancel(f"the node is {self.state}: nothing changed; call again once it "
                          "is configured")
        if not self._vocab_lock.acquire(timeout=-1 if wait_vocabulary is None
                                        else wait_vocabulary):
            return False
        try:
            outputs, self.outputs = self.outputs, None
        finally:
            self._vocab_lock.release()
        if self.processor is not None:
            self.processor.retire()
            self.processor = None  # it holds the pipeline
        if outputs is not None:
            self._ids = outputs.pipeline.segmenter.vocabulary
            seg = outputs.pipeline.segmenter
            parts = [weakref.ref(seg), weakref.ref(seg.clip)]
            del seg
            device = outputs.destroy(self)
            del outputs  # the last reference, before the collection (release.py)
            self.memory.release(parts, device)
        return True

    def close(self, timeout: float = 1.5) -> bool:
        """Stop everything from any state (shutdown, SIGINT); False when a frame was still in
        the model after `timeout`, or a vocabulary change was still encoding text: what is
        listed in `still_running`. Neither can be interrupted safely."""
        self.still_running = []
        if not self._stop_input(timeout):
            self.still_running.append("a frame was still in inference")
        unloaded = self._unload(wait_vocabulary=0.3)
        if not self.heavy.stop(timeout=0.5) or not unloaded:
            self.still_running.append("a vocabulary change was still encoding text")
        return not self.still_running

    def destroy_node(self) -> None:
        self.lane.close(timeout=1.0)  # its thread and node first: they serve our services
        super().destroy_node()

    # ---- vocabulary -----------------------------------------------------------------------------

    def vocabulary(self) -> VocabularySnapshot:
        """The vocabulary in use; empty while no model is loaded."""
        out = self.outputs
        return (out.vocabulary.snapshot() if out else
                VocabularySnapshot((), (), bool(self.values["background"]), 0))

    async def set_prompts(self, prompts: Sequence[str]) -> tuple[bool, str]:
        """Swap the vocabulary and mirror it into the `prompts` parameter (a coroutine: new
        names are encoded on the text worker while no executor thread waits). (success,
        message): the reason when refused, else how long encoding new names took."""
        out = self.outputs
        if out is None:
            return False, (f"the node is {self.state}: configure it first (the prompts "
                           "parameter is read at configure)")
        try:
            job = self.heavy.encode_prompts(out.pipeline, prompts, self.heavy.admit_prompts)
            note = "" if job is None else await self.lane.wait_for(job)
        except Exception as exc:  # VocabularyError, Busy, Cancelled, the text encoder failing
            return False, str(exc)
        with self._vocab_lock:
            if self.outputs is not out:
                return False, f"the node was reconfigured meanwhile (now {self.state}): call again"
            try:
                self.outputs.vocabulary.set_prompts(prompts)  # cached text: no encoding here
            except Exception as exc:  # VocabularyError
                return False, str(exc)
            self._mirror_prompts()
            return True, note

    def _mirror_prompts(self) -> None:
        """The `prompts` parameter := the vocabulary's names (normalised), so the parameter,
        get_prompts, LabelMap and LabelInfo always agree. Call with _vocab_lock held."""
        names = list(self.vocabulary().names)
        if names and names != list(self.values["prompts"]):
            # Re-enters _on_set_parameters, which sees an unchanged vocabulary and accepts.
            self.set_parameters([Parameter("prompts", Parameter.Type.STRING_ARRAY, names)])

    # ---- parameters -----------------------------------------------------------------------------

    def _on_set_parameters(self, changes: list[Parameter]) -> SetParametersResult:
        prompts = next((p.value for p in changes if p.name == "prompts"), None)
        if prompts is not None and self.outputs is not None:
            why = self.heavy.encode_for_parameter(self.outputs.pipeline, list(prompts),
                                                  PARAMETER_ENCODE_WAIT_S)
            if why is not None:
                return SetParametersResult(successful=False, reason=why)
        with self._vocab_lock:
            refused = [r for p in changes
                       if (r := params.change_refused(p.name, p.value, self.state)) is not None]
            if refused:
                return SetParametersResult(successful=False, reason="; ".join(refused))
            new = {p.name: list(p.value) if isinstance(p.value, (list, tuple)) else p.value
                   for p in changes if p.name in self.values}
            if self.outputs is not None and (why := self.outputs.settings.apply(new)) is not None:
                return SetParametersResult(successful=False, reason=why)
            self.values.update(new)
            return SetParametersResult(successful=True)

    # ---- health -------------------------------------------------------------------------------

    def _on_diagnostics(self) -> None:
        """One status per camera (a dead camera shows even while the others work); one status
        for the node while no model is loaded."""
        stamp = self.get_clock().now().to_msg()
        base = f"{self.get_fully_qualified_name().lstrip('/')}: segmentation"
        out = self.outputs
        if out is None:
            arr = diagnostic_array(lifecycle_report(self.state, self.last_error), base, "", [],
                                   stamp)
        else:
            snap, worker = out.vocabulary.snapshot(), self.worker
            extra = node_status(out.pipeline, self.state, len(snap.names), snap.version,
                                out.step.frames_out_of_memory) + self.heavy.status() + [
                ("requests_taken", str(self.lane.taken))]
            arr = camera_statuses(out.cameras, base, self.state,
                                  out.pipeline.segmenter.runtime.describe(), extra,
                                  self.count_publishers,
                                  lambda cam: worker.dropped(cam) if worker else 0,
                                  self.get_logger(), self._throttle, stamp)
        self.pub_diag.publish(arr)


def main(args: list[str] | None = None, fast_exit: bool = True) -> int:
    """Entry point; exit code 1 when autostart's configure fails (one error line), else 0."""
    return run_main(SegmentNode, "ovseg", sys.argv if args is None else args, fast_exit=fast_exit)


if __name__ == "__main__":
    sys.exit(main())
