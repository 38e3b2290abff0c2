"""The panel's operators.

Generate and Regenerate range run the engine in a child process. From the UI
(``INVOKE_DEFAULT``) they are modal: a timer polls the engine's JSON lines, the
panel shows the progress and Cancel ends the process. With ``EXEC_DEFAULT``,
and always under ``-b`` where timers never fire, they wait synchronously.
The scene changes only when the engine has finished, in one step, so Cancel
and errors leave it as it was and one Ctrl-Z removes a whole generation
(``bl_options = {'REGISTER', 'UNDO'}``: Blender pushes the undo step when the
operator finishes, modal or not).
"""

from __future__ import annotations

import bpy

from . import generation, markers, preferences
from .generation import GenerationError

_POLL_SECONDS = 0.1


def options_from(context, frame_range=None) -> generation.Options:
    """The panel settings and preferences as generation options."""
    s = context.scene.choreo
    prefs = preferences.get_prefs(context)
    if frame_range is None and not s.use_strip_range:
        frame_range = (s.frame_start, s.frame_end + 1)
    return generation.Options(
        style=s.style, seed=s.seed, variations=s.variations, energy=s.energy, validate=s.validate,
        repair=s.repair, preset=None if s.rig_preset in ("", "AUTO") else s.rig_preset, strip=s.strip,
        frame_range=frame_range, add_markers=s.add_markers, device=prefs.device,
        model=bpy.path.abspath(prefs.model_path) if prefs.model_path else "",
        python=bpy.path.abspath(prefs.engine_python) if prefs.engine_python else "",
        keep_warm=prefs.keep_warm, cache_dir=preferences.cache_dir(prefs))


def _redraw(context) -> None:
    screen = getattr(context, "screen", None)
    for area in screen.areas if screen else []:
        if area.type in {"VIEW_3D", "SEQUENCE_EDITOR", "DOPESHEET_EDITOR", "NLA_EDITOR"}:
            area.tag_redraw()


class _EngineOperator(bpy.types.Operator):
    """Shared modal/synchronous engine run; subclasses make the plan and apply it."""

    _run: generation.Run | None = None
    _timer = None

    def plan(self, context) -> generation.Plan:
        raise NotImplementedError

    def apply(self, context, plan: generation.Plan, result: dict) -> str:
        raise NotImplementedError

    @classmethod
    def poll(cls, context):
        return context.scene is not None and not context.window_manager.choreo_job.running

    def _start(self, context) -> bool:
        job = context.window_manager.choreo_job
        try:
            plan = self.plan(context)
            self._run = generation.Run(plan)
        except GenerationError as exc:
            self.report({"ERROR"}, str(exc))
            return False
        job.running, job.progress, job.cancel_requested = True, 0.0, False
        job.message = "starting the engine"
        return True

    def _finish(self, context, result: dict | None, error: str | None = None) -> set[str]:
        job = context.window_manager.choreo_job
        job.running, job.cancel_requested = False, False
        run = self._run
        self._run = None
        if error is not None or result is None or run is None:
            job.message = error or "failed"
            self.report({"ERROR"}, error or "The engine gave no result; try again")
            return {"CANCELLED"}
        try:
            summary = self.apply(context, run.plan, result)
        except GenerationError as exc:
            job.message = str(exc)
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        job.progress, job.message = 1.0, summary
        self.report({"INFO"}, summary)
        return {"FINISHED"}

    def execute(self, context):
        if not self._start(context):
            return {"CANCELLED"}
        assert self._run is not None
        try:
            result = self._run.wait()
        except GenerationError as exc:
            return self._finish(context, None, str(exc))
        return self._finish(context, result)

    def invoke(self, context, event):
        if bpy.app.background or context.window is None:
            return self.execute(context)
        if not self._start(context):
            return {"CANCELLED"}
        wm = context.window_manager
        self._timer = wm.event_timer_add(_POLL_SECONDS, window=context.window)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        job = context.window_manager.choreo_job
        run = self._run
        if run is None:
            return self._stop_timer(context, {"CANCELLED"})
        if job.cancel_requested:
            run.cancel()
            self._run = None
            job.running, job.cancel_requested, job.message = False, False, "cancelled"
            self.report({"WARNING"}, "Generation cancelled; the scene is unchanged")
            _redraw(context)
            return self._stop_timer(context, {"CANCELLED"})
        state = run.step()
        job.progress, job.message = run.progress, run.message
        _redraw(context)
        if state == "running":
            return {"RUNNING_MODAL"}
        run.close()
        if state == "done":
            return self._stop_timer(context, self._finish(context, run.job.result))
        return self._stop_timer(context, self._finish(context, None, run.job.error or "the engine stopped"))

    def _stop_timer(self, context, status: set[str]) -> set[str]:
        if self._timer is not None:
            context.window_manager.event_timer_remove(self._timer)
            self._timer = None
        _redraw(context)
        return status


def _targets(context):
    s = context.scene.choreo
    return generation.target_objects(context, s.armature, s.use_selected)


class CHOREO_OT_generate(_EngineOperator):
    """Generate a dance to the sound strip and key it onto the armature(s) as new Actions"""

    bl_idname = "choreo.generate"
    bl_label = "Generate Dance"
    bl_options = {"REGISTER", "UNDO"}

    def plan(self, context):
        return generation.plan_generation(context.scene, _targets(context), options_from(context))

    def apply(self, context, plan, result):
        actions = generation.apply_result(context.scene, plan, result)
        settings = context.scene.choreo
        settings.detected_rig = generation.describe_rigs(result)
        report = settings.report_summary or "not validated"
        return (f"Keyed {len(actions)} dance(s) from frame {plan.span.frame_start:g} "
                f"({result.get('tempo', 0):.0f} BPM); validation: {report}")


class CHOREO_OT_regenerate_range(_EngineOperator):
    """Generate the frame range again, keeping the dance outside it and blending the seams"""

    bl_idname = "choreo.regenerate_range"
    bl_label = "Regenerate Range"
    bl_options = {"REGISTER", "UNDO"}

    def plan(self, context):
        s = context.scene.choreo
        options = options_from(context)
        options.variations = 1
        return generation.plan_regeneration(context.scene, _targets(context), options,
                                            (s.regen_start, s.regen_end + 1))

    def apply(self, context, plan, result):
        actions = generation.apply_result(context.scene, plan, result)
        s = context.scene.choreo
        return f"Regenerated frames {s.regen_start}-{s.regen_end} on {len(actions)} armature(s)"


class CHOREO_OT_add_beat_markers(_EngineOperator):
    """Put a timeline marker on every beat of the sound strip"""

    bl_idname = "choreo.add_beat_markers"
    bl_label = "Add Beat Markers"
    bl_options = {"REGISTER", "UNDO"}

    def plan(self, context):
        return generation.plan_beats(context.scene, options_from(context))

    def apply(self, context, plan, result):
        count = generation.add_markers_from(context.scene, plan, result["beats"])
        context.scene.choreo.beats_file = result["beats"]
        return f"Added {count} beat markers ({result.get('tempo', 0):.0f} BPM)"


class CHOREO_OT_detect_rig(_EngineOperator):
    """Detect which rig preset the armature(s) match, from the bone names"""

    bl_idname = "choreo.detect_rig"
    bl_label = "Detect Rig"

    def plan(self, context):
        return generation.plan_detect(context.scene, _targets(context), options_from(context))

    def apply(self, context, plan, result):
        context.scene.choreo.detected_rig = generation.describe_rigs(result) or "not recognised"
        missing = [u for t in result.get("targets", []) for u in t.get("unmapped", [])]
        note = f"; unmapped: {', '.join(missing[:6])}" if missing else ""
        return f"Rig: {context.scene.choreo.detected_rig}{note}"


class CHOREO_OT_remove_beat_markers(bpy.types.Operator):
    """Remove the beat markers Choreo added (your own markers stay)"""

    bl_idname = "choreo.remove_beat_markers"
    bl_label = "Remove Beat Markers"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        count = markers.remove_beat_markers(context.scene)
        self.report({"INFO"}, f"Removed {count} beat markers")
        return {"FINISHED"}


class CHOREO_OT_cancel(bpy.types.Operator):
    """Stop the running generation; the scene stays as it was"""

    bl_idname = "choreo.cancel"
    bl_label = "Cancel"

    @classmethod
    def poll(cls, context):
        return context.window_manager.choreo_job.running

    def execute(self, context):
        context.window_manager.choreo_job.cancel_requested = True
        return {"FINISHED"}


class CHOREO_OT_jump_to_violation(bpy.types.Operator):
    """Go to the frame of this validation finding"""

    bl_idname = "choreo.jump_to_violation"
    bl_label = "Jump to Finding"

    index: bpy.props.IntProperty(default=-1)  # type: ignore[valid-type]
    kind: bpy.props.StringProperty(default="")  # type: ignore[valid-type]

    def execute(self, context):
        s = context.scene.choreo
        items = list(s.report)
        if self.kind:
            after = [v for v in items if v.kind == self.kind and v.frame_start > context.scene.frame_current]
            items = after or [v for v in items if v.kind == self.kind]
            index = 0
        else:
            index = self.index if self.index >= 0 else s.report_index
        if not items or not 0 <= index < len(items):
            self.report({"WARNING"}, "No finding to jump to: generate with Validate on")
            return {"CANCELLED"}
        item = items[index]
        context.scene.frame_set(item.frame_start)
        obj = bpy.data.objects.get(item.armature)
        if obj is not None and obj.name in context.view_layer.objects:
            context.view_layer.objects.active = obj
        self.report({"INFO"}, f"{item.kind} ({item.severity}) on {item.joint or 'the body'}, "
                              f"frames {item.frame_start}-{item.frame_end}: {item.message}")
        return {"FINISHED"}


CLASSES = (CHOREO_OT_generate, CHOREO_OT_regenerate_range, CHOREO_OT_add_beat_markers, CHOREO_OT_detect_rig,
           CHOREO_OT_remove_beat_markers, CHOREO_OT_cancel, CHOREO_OT_jump_to_violation)
