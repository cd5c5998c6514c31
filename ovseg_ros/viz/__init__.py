"""Visualisation: label palette, colourised labels, overlay with legend."""

from ovseg_ros.viz.overlay import colorize, colour_for_id, draw_legend, overlay, palette

__all__ = ["colorize", "colour_for_id", "draw_legend", "overlay", "palette"]
