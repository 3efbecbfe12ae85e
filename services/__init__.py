"""HF Playground services: everything that thinks (models, jobs, hub, ...), with no UI code.

The Gradio tabs and the `python -m services` CLI are two thin faces over these functions.
Modules here import torch/transformers lazily, inside functions, so the UI starts fast.
"""
