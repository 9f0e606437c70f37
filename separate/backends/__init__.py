"""Inference backends other than eager torch: :mod:`.onnx` (ONNX export, run with onnxruntime)."""
