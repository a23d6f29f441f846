"""Model file → answers: backends (torch, onnxruntime float and int8) and the `Recognizer`,
the one reading path that the CLI, the Python API, the HTTP API and the page all call.
"""
