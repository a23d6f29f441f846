"""digitrec's models in other formats: ONNX export (float and int8) and TorchScript, and
the starting projects' Keras files imported as digitrec model files.
"""
