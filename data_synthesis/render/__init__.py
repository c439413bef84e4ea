"""Rendered homes: procedural apartments path-traced with Mitsuba 3 under day/night lighting
scenarios, with exact depth, camera poses and changed-object masks (`homeloc-synthesize render`).

Modules, bottom to top: config (RenderConfig), assets (textures, glTF furniture, photos),
furniture + home (procedural layout), changes (what differs between days), lighting (scenario
registry), trajectory (robot paths and poses), camera_model (linear radiance -> 8-bit sRGB),
engine (Mitsuba scene dicts and render passes), jobs (the resumable per-home writer), layout
(reading a rendered folder), products (3-D pairs, relative-pose list, loop sequences, places),
preview, bench and cli. Mitsuba is imported only inside engine.py.
"""
