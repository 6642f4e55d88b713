"""multilingual-e5-small fine-tuned with multi-task heads; encoder build, ONNX Runtime."""
