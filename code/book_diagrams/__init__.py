"""Diagrams of the course's ideas, drawn by code so they can be regenerated.

`draw` holds the primitives (a canvas measured in layout units, boxes, arrows, labelled grids) and the
colours every diagram shares; each chapter's pictures live in a module of their own. A chapter shows one
with a single call, e.g. `bigram.batch_windows(); plt.show()`.
"""
