"""The sidebar panel: 3D Viewport > N panel > Choreo."""

from __future__ import annotations

import bpy

from . import compat, sound

HAS_PROGRESS = hasattr(bpy.types.UILayout, "progress")  # 4.0+


def _armature_hint(context) -> str:
    s = context.scene.choreo
    if s.use_selected:
        n = sum(1 for o in context.selected_objects if o.type == "ARMATURE")
        return f"{n} selected armature(s), seeds {s.seed}..{s.seed + max(n * s.variations - 1, 0)}"
    obj = s.armature or context.active_object
    if obj is None or obj.type != "ARMATURE":
        return "pick an armature (or make one active)"
    return f"target: {obj.name}"


class CHOREO_UL_report(bpy.types.UIList):
    """Validation findings; double-click jumps to the frame."""

    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index=0, flt_flag=0):
        row = layout.row(align=True)
        icon = "ERROR" if item.severity == "error" else "INFO" if item.severity == "info" else "QUESTION"
        row.label(text=f"{item.kind}  {item.joint}".strip(), icon=icon)
        op = row.operator("choreo.jump_to_violation", text=f"{item.frame_start}", emboss=False)
        op.index = index


class CHOREO_PT_panel(bpy.types.Panel):
    bl_idname = "CHOREO_PT_panel"
    bl_label = "Choreo"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Choreo"

    def draw(self, context):
        layout = self.layout
        scene = context.scene
        s = scene.choreo
        job = context.window_manager.choreo_job

        col = layout.column()
        col.prop(s, "strip", icon="SOUND")
        strip = sound.find_sound_strip(scene, s.strip)
        if strip is None:
            box = col.box()
            if compat.sound_strips(scene):
                box.label(text=f"No sound strip named '{s.strip}'", icon="ERROR")
            else:
                box.label(text="No sound strip in the Sequencer.", icon="ERROR")
                box.label(text="Add your music: Sequencer > Add > Sound")
        else:
            col.label(text=f"{strip.name}: frames {strip.frame_final_start}-{strip.frame_final_end - 1}")

        col = layout.column()
        col.prop(s, "armature")
        col.prop(s, "use_selected")
        col.label(text=_armature_hint(context))
        row = col.row(align=True)
        row.prop(s, "rig_preset")
        row.operator("choreo.detect_rig", text="", icon="VIEWZOOM")
        if s.detected_rig:
            col.label(text=f"detected: {s.detected_rig}")

        col = layout.column(align=True)
        col.prop(s, "style")
        col.prop(s, "seed")
        col.prop(s, "variations")
        col.prop(s, "energy", slider=True)
        col = layout.column(align=True)
        col.prop(s, "use_strip_range")
        if not s.use_strip_range:
            row = col.row(align=True)
            row.prop(s, "frame_start")
            row.prop(s, "frame_end")
        row = layout.row(align=True)
        row.prop(s, "validate", toggle=True)
        row.prop(s, "repair", toggle=True)
        row.prop(s, "add_markers", toggle=True)

        if job.running:
            if HAS_PROGRESS:
                layout.progress(factor=job.progress, type="BAR", text=job.message or "working")
            else:
                layout.label(text=f"{int(job.progress * 100)}%  {job.message}")
            layout.operator("choreo.cancel", icon="CANCEL")
        else:
            row = layout.row()
            row.scale_y = 1.4
            row.operator("choreo.generate", icon="PLAY")
            if job.message:
                layout.label(text=job.message)
        row = layout.row(align=True)
        row.operator("choreo.add_beat_markers", icon="MARKER_HLT")
        row.operator("choreo.remove_beat_markers", text="", icon="X")

        box = layout.box()
        box.label(text="Regenerate Range")
        row = box.row(align=True)
        row.prop(s, "regen_start")
        row.prop(s, "regen_end")
        box.operator("choreo.regenerate_range", icon="FILE_REFRESH")


class CHOREO_PT_report(bpy.types.Panel):
    bl_idname = "CHOREO_PT_report"
    bl_label = "Validation Report"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Choreo"
    bl_parent_id = "CHOREO_PT_panel"

    def draw(self, context):
        layout = self.layout
        s = context.scene.choreo
        if not s.report_summary:
            layout.label(text="Generate with Validate on to see a report")
            return
        layout.label(text=s.report_summary)
        for row_data in s.report_counts:
            row = layout.row(align=True)
            row.label(text=row_data.kind, icon="ERROR" if row_data.errors else "INFO")
            row.label(text=f"{row_data.count}" + (f" ({row_data.errors} errors)" if row_data.errors else ""))
            op = row.operator("choreo.jump_to_violation", text="", icon="FORWARD")
            op.kind = row_data.kind
        if len(s.report):
            layout.template_list("CHOREO_UL_report", "", s, "report", s, "report_index", rows=4)


CLASSES = (CHOREO_UL_report, CHOREO_PT_panel, CHOREO_PT_report)
