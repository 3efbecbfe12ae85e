"""Serving and export: the OpenAI-compatible REST API, the standalone server bundle, ONNX export."""
