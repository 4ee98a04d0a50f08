"""llmsizer: what servers do I need to serve, fine-tune or pretrain model Y, how long, and at what cost?

Data flows one way: catalog -> specs -> workload -> memory -> compute -> planner -> render.
"""

__version__ = "0.1.0"
